import { createSimilarFinder, DEFAULT_SIMILAR } from '@pstream/audiences';
import { keys } from '@pstream/interest-store';
import { gauge, type Logger, type Pool, type Redis, type Registry } from '@pstream/platform';
import { createAudienceStore, createModelStore, type ModelRow, type ModelStore } from '@pstream/profile-store';
import { decayParams } from '@pstream/scoring';
import { createPopulation, type PredictedTrait, type TrainOptions } from '@pstream/traits-model';
import type { QueryConfig } from '../config';

export type TrainerOptions = {
  store: ModelStore;
  /** The §5.3 vectors of a page of people (the similar finder's, so both use one definition). */
  vectors: ReturnType<typeof createSimilarFinder>['vectors'];
  log: Logger;
  /** The schema whose people are trained on (names the training lock). */
  schema: string;
  retrainEveryMs: number;
  /** After a run that trained nothing for a trait, how long before it is tried again unasked. */
  retryMs: number;
  pollMs: number;
  holdoutFraction: number;
  metrics?: Registry;
  train?: Partial<TrainOptions>;
  now?: () => number;
};

/** People read per page of the population (one Postgres page, one Redis pipeline, one facts query). */
const PAGE = 2000;
/** A turn for the event loop: training runs in the query API's process beside its requests. */
const yieldLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Trains the predicted-trait models (docs/api.md §5.9) when one is asked for
 * (`POST /v1/models/{trait}/train`) or overdue (older than the retrain interval): reads every
 * person who allows personalization once, trains each due trait on those who gave it minus the
 * held-out part, and stores the model with its predictions for everyone else. One run at a time
 * across instances (an advisory lock); training yields to the event loop now and then.
 */
export class ModelTrainer {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<unknown> | undefined;
  private stopped = false;
  private models: ModelRow[] = [];
  private readonly now: () => number;

  constructor(private readonly o: TrainerOptions) {
    this.now = o.now ?? Date.now;
    if (o.metrics) this.registerMetrics(o.metrics);
  }

  start(): void {
    const tick = () => {
      this.current = this.runDue()
        .catch((err: unknown) => this.o.log.warn({ err }, 'model training failed, will retry next poll'))
        .finally(() => {
          this.current = undefined;
          if (!this.stopped) this.timer = setTimeout(tick, this.o.pollMs);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.current;
  }

  /** Trains every due trait now (when no other instance is training); returns the traits trained. */
  async runDue(): Promise<PredictedTrait[]> {
    this.models = await this.o.store.list();
    const due = await this.o.store.due(this.now(), this.o.retrainEveryMs, this.o.retryMs);
    if (due.length === 0) return [];
    const done = await this.o.store.exclusively(this.o.schema, () => this.train(due));
    this.models = await this.o.store.list();
    return done ?? [];
  }

  private async train(traits: PredictedTrait[]): Promise<PredictedTrait[]> {
    const started = this.now();
    const population = createPopulation(started);
    for (let after: string | null = null; ;) {
      const page = await this.o.store.population(after, PAGE);
      if (page.length === 0) break;
      const vectors = await this.o.vectors(
        page.map((p) => p.key),
        started,
      );
      for (const p of page) population.add(p.key, p.traits, vectors.get(p.key)!);
      after = page[page.length - 1]!.key;
      await yieldLoop();
    }
    const trained: PredictedTrait[] = [];
    for (const trait of traits) {
      const fit = await population.fit(trait, { ...this.o.train, holdoutFraction: this.o.holdoutFraction }, yieldLoop);
      if (!fit) {
        await this.o.store.failed(trait, 'fewer than two classes given by people who allow personalization', started);
        this.o.log.warn({ trait, people: population.keys.length }, 'model not trained: fewer than two classes given');
        continue;
      }
      const written = await this.o.store.saveFit(
        fit,
        () => population.predictions(trait, fit.model),
        started,
        this.now(),
      );
      this.o.log.info(
        { trait, trainedOn: fit.trainedOn, holdout: fit.holdout, predicted: written, ms: this.now() - started },
        'model trained',
      );
      trained.push(trait);
    }
    return trained;
  }

  /** Accuracy, baseline and age per trait, from the rows read at the last poll. */
  private registerMetrics(registry: Registry): void {
    const models = () => this.models.filter((m) => m.trainedAt !== null);
    gauge(registry, {
      name: 'model_holdout_accuracy',
      help: 'Accuracy of the predicted-trait model on its held-out people (0-1)',
      labelNames: ['trait'],
      collect() {
        this.reset();
        for (const m of models()) this.set({ trait: m.trait }, m.holdout.accuracy ?? 0);
      },
    });
    gauge(registry, {
      name: 'model_holdout_baseline',
      help: 'Accuracy of always answering the most common class on the same held-out people (0-1)',
      labelNames: ['trait'],
      collect() {
        this.reset();
        for (const m of models()) this.set({ trait: m.trait }, m.holdout.baseline ?? 0);
      },
    });
    const now = this.now;
    gauge(registry, {
      name: 'model_trained_timestamp_seconds',
      help: 'When the predicted-trait model was last trained (Unix seconds)',
      labelNames: ['trait'],
      collect() {
        this.reset();
        for (const m of models()) this.set({ trait: m.trait }, Date.parse(m.trainedAt!) / 1000);
      },
    });
    gauge(registry, {
      name: 'model_age_seconds',
      help: 'Seconds since the predicted-trait model was last trained',
      labelNames: ['trait'],
      collect() {
        this.reset();
        for (const m of models()) this.set({ trait: m.trait }, (now() - Date.parse(m.trainedAt!)) / 1000);
      },
    });
    const every = this.o.retrainEveryMs / 1000;
    gauge(registry, {
      name: 'model_retrain_interval_seconds',
      help: 'The configured retraining interval (MODEL_RETRAIN_INTERVAL_MS) in seconds; the ModelStale alert compares the age with twice it',
      collect() {
        this.set(every);
      },
    });
  }
}

/** The trainer of a query-API instance, on its stores and config (main.ts starts it; tests too). */
export function createModelTrainer(
  config: QueryConfig,
  deps: {
    pool: Pool;
    redis: Redis;
    log: Logger;
    metrics?: Registry;
    now?: () => number;
    train?: Partial<TrainOptions>;
  },
): ModelTrainer {
  const decay = decayParams(config.DECAY_LANDMARK, config.DECAY_HALF_LIFE_DAYS);
  const finder = createSimilarFinder(deps.redis, keys(config.REDIS_PREFIX), createAudienceStore(deps.pool), {
    decay,
    valueScale: config.INTEREST_VALUE_SCALE,
    ...DEFAULT_SIMILAR,
  });
  return new ModelTrainer({
    store: createModelStore(deps.pool, deps.log),
    vectors: finder.vectors,
    log: deps.log.child({ component: 'trainer' }),
    schema: config.PG_SCHEMA,
    retrainEveryMs: config.MODEL_RETRAIN_INTERVAL_MS,
    retryMs: config.MODEL_RETRY_INTERVAL_MS,
    pollMs: config.MODEL_POLL_INTERVAL_MS,
    holdoutFraction: config.MODEL_HOLDOUT_FRACTION,
    metrics: deps.metrics,
    now: deps.now,
    train: deps.train,
  });
}
