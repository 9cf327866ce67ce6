import { createDataset, inHoldout, type Dataset, type Features } from './dataset';
import { gaveTrait, givenLabel, PREDICTED_TRAITS, type PredictedTrait } from './labels';
import {
  compile,
  evaluate,
  trainSoftmax,
  type Holdout,
  type Prediction,
  type SoftmaxModel,
  type TrainOptions,
} from './softmax';

/** At most this many classes per trait, the most common (a free-text gender must not make thousands). */
const MAX_CLASSES = 16;

export type FitOptions = Partial<TrainOptions> & {
  /** Share of the people who gave a trait held out for evaluation (by a hash of their key). */
  holdoutFraction: number;
};

/** One trained trait: what `GET /v1/models` shows, and the model. */
export type TraitFit = { trait: PredictedTrait; trainedOn: number; holdout: Holdout; model: SoftmaxModel };

/**
 * The people of one training run, each with their §5.3 vector and traits, added once and
 * shared by every trait trained in the run (one read of the stores for both models).
 */
export function createPopulation(nowMs: number) {
  const data: Dataset = createDataset();
  const keys: string[] = [];
  const labels = new Map<PredictedTrait, (string | undefined)[]>(PREDICTED_TRAITS.map((t) => [t, []]));
  const given = new Map<PredictedTrait, boolean[]>(PREDICTED_TRAITS.map((t) => [t, []]));
  return {
    data,
    keys,
    /** Adds a person who allows personalization (the caller never adds anyone else). */
    add(key: string, traits: Record<string, unknown>, features: Features): void {
      data.add(features);
      keys.push(key);
      for (const t of PREDICTED_TRAITS) {
        labels.get(t)!.push(givenLabel(t, traits, nowMs));
        given.get(t)!.push(gaveTrait(t, traits));
      }
    },

    /**
     * Trains `trait` on the people who gave it, minus the held-out part, and evaluates on that
     * part. `pause` is awaited now and then (see trainSoftmax).
     */
    async fit(trait: PredictedTrait, options: FitOptions, pause?: () => Promise<void>): Promise<TraitFit | undefined> {
      const raw = labels.get(trait)!;
      const counts = new Map<string, number>();
      for (const l of raw) if (l !== undefined) counts.set(l, (counts.get(l) ?? 0) + 1);
      const classes = [...counts]
        .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))
        .slice(0, MAX_CLASSES)
        .map(([c]) => c);
      // one class (or none) leaves nothing to learn
      if (classes.length < 2) return undefined;
      const index = new Map(classes.map((c, i) => [c, i]));
      const y = new Int32Array(raw.length).fill(-1);
      const train: number[] = [];
      const held: number[] = [];
      raw.forEach((l, r) => {
        const c = l === undefined ? undefined : index.get(l);
        if (c === undefined) return;
        y[r] = c;
        (inHoldout(keys[r]!, options.holdoutFraction) ? held : train).push(r);
      });
      const trainRows = Uint32Array.from(train);
      const model = await trainSoftmax(data, trainRows, y, classes, options, pause);
      return {
        trait,
        trainedOn: train.length,
        holdout: evaluate(model, data, y, Uint32Array.from(held), trainRows),
        model,
      };
    },

    /** Predictions of `model` for every person who did not give `trait`, by profile key. */
    *predictions(trait: PredictedTrait, model: SoftmaxModel): Generator<{ key: string } & Prediction> {
      const predictor = compile(model);
      const gave = given.get(trait)!;
      for (let r = 0; r < keys.length; r++)
        if (!gave[r]) yield { key: keys[r]!, ...predictor.predict(data.features(r)) };
    },
  };
}

export type Population = ReturnType<typeof createPopulation>;
