import type { Logger, Pool } from '@pstream/platform';
import {
  gaveTrait,
  GIVEN_BY,
  PREDICTED_TRAITS,
  type PredictedTrait,
  type Prediction,
  type TraitFit,
} from '@pstream/traits-model';
import { inTransaction } from './tx';

/*
 * Predicted traits (docs/model.md §5.9, migration 030): the trained models, the training
 * population, the stored predictions and the one read that serves them.
 */

export type ModelRow = {
  trait: PredictedTrait;
  trainedAt: string | null;
  trainedOn: number;
  holdout: { size: number; accuracy: number | null; baseline: number | null };
  /** A training asked for and not yet done. */
  requestedAt: string | null;
  lastError: string | null;
};

export type Predicted = Partial<Record<PredictedTrait, Prediction>>;

/** Rows written per INSERT statement of a training run's predictions. */
const WRITE_BATCH = 5000;
const iso = (d: Date | null) => d?.toISOString() ?? null;

/**
 * The predictions served with a profile (§5.9): the stored rows of known traits the person has
 * not given (`traits`: their given traits as read with the profile).
 */
export function predictionsServed(
  rows: readonly { trait: string; value: string; confidence: number }[],
  traits: Record<string, unknown>,
): Predicted {
  const out: Predicted = {};
  for (const r of rows) {
    const trait = r.trait as PredictedTrait;
    if (PREDICTED_TRAITS.includes(trait) && !gaveTrait(trait, traits))
      out[trait] = { value: r.value, confidence: r.confidence };
  }
  return out;
}

export function createModelStore(pool: Pool, log: Logger) {
  return {
    async list(): Promise<ModelRow[]> {
      const { rows } = await pool.query<{
        trait: PredictedTrait;
        trained_at: Date | null;
        trained_on: number;
        holdout_size: number;
        holdout_accuracy: number | null;
        holdout_baseline: number | null;
        requested_at: Date | null;
        last_error: string | null;
      }>(
        'SELECT trait, trained_at, trained_on, holdout_size, holdout_accuracy, holdout_baseline, requested_at, last_error FROM trait_models',
      );
      const byTrait = new Map(rows.map((r) => [r.trait, r]));
      return PREDICTED_TRAITS.filter((t) => byTrait.has(t)).map((t) => {
        const r = byTrait.get(t)!;
        return {
          trait: t,
          trainedAt: iso(r.trained_at),
          trainedOn: r.trained_on,
          holdout: { size: r.holdout_size, accuracy: r.holdout_accuracy, baseline: r.holdout_baseline },
          requestedAt: iso(r.requested_at),
          lastError: r.last_error,
        };
      });
    },

    /** Asks for a training of `trait` (kept if one is already asked for); returns when it was asked. */
    async request(trait: PredictedTrait, nowMs: number): Promise<string> {
      const { rows } = await pool.query<{ requested_at: Date }>(
        'UPDATE trait_models SET requested_at = coalesce(requested_at, $2) WHERE trait = $1 RETURNING requested_at',
        [trait, new Date(nowMs).toISOString()],
      );
      return rows[0]!.requested_at.toISOString();
    },

    /**
     * The traits asked for, and those never trained or trained more than `everyMs` before `nowMs` unless a run
     * trained nothing for them less than `retryMs` before `nowMs` (failed).
     */
    async due(nowMs: number, everyMs: number, retryMs: number): Promise<PredictedTrait[]> {
      const { rows } = await pool.query<{ trait: PredictedTrait }>(
        `SELECT trait FROM trait_models
          WHERE requested_at IS NOT NULL
             OR ((trained_at IS NULL OR trained_at <= $1) AND (failed_at IS NULL OR failed_at <= $2))
          ORDER BY trait`,
        [new Date(nowMs - everyMs).toISOString(), new Date(nowMs - retryMs).toISOString()],
      );
      return rows.map((r) => r.trait).filter((t) => PREDICTED_TRAITS.includes(t));
    },

    /**
     * Runs `fn` only while holding the training lock of this schema (a session advisory lock):
     * several query-API instances side by side train one at a time. Returns undefined, without
     * running `fn`, when another instance holds it.
     */
    async exclusively<T>(schema: string, fn: () => Promise<T>): Promise<T | undefined> {
      const client = await pool.connect();
      const key = `pstream-train:${schema}`;
      try {
        const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [key]);
        if (!rows[0]!.ok) return undefined;
        try {
          return await fn();
        } finally {
          await client.query('SELECT pg_advisory_unlock(hashtext($1))', [key]);
        }
      } finally {
        client.release();
      }
    },

    /**
     * A page of the training population: people who allow personalization (§4.5; opted-out
     * people are neither trained on nor predicted, erased people have no row), in key order after `after`.
     */
    async population(after: string | null, limit: number): Promise<{ key: string; traits: Record<string, unknown> }[]> {
      const { rows } = await pool.query<{ profile_key: string; traits: Record<string, unknown> }>(
        `SELECT profile_key, traits FROM people WHERE personalization AND ($1::text IS NULL OR profile_key > $1) ORDER BY profile_key LIMIT $2`,
        [after, limit],
      );
      return rows.map((r) => ({ key: r.profile_key, traits: r.traits }));
    },

    /**
     * Stores a training run's result for one trait in ONE transaction: the model and its holdout
     * figures, and the predictions in place of the previous ones. A prediction is written only for
     * a person who still has a row, still allows personalization and still has not given the trait.
     * A request made after `startedMs` stays asked for. `predictions` is called once per attempt (a retried transaction
     * starts over).
     */
    async saveFit(
      fit: TraitFit,
      predictions: () => Iterable<{ key: string } & Prediction>,
      startedMs: number,
      nowMs: number,
    ): Promise<number> {
      return inTransaction(
        pool,
        async (client) => {
          await client.query(
            `UPDATE trait_models SET trained_at = $2, trained_on = $3, holdout_size = $4, holdout_accuracy = $5, holdout_baseline = $6,
               model = $7, last_error = NULL, failed_at = NULL, requested_at = CASE WHEN requested_at <= $8 THEN NULL ELSE requested_at END
             WHERE trait = $1`,
            [
              fit.trait,
              new Date(nowMs).toISOString(),
              fit.trainedOn,
              fit.holdout.size,
              fit.holdout.accuracy,
              fit.holdout.baseline,
              JSON.stringify(fit.model),
              new Date(startedMs).toISOString(),
            ],
          );
          await client.query('DELETE FROM predicted_traits WHERE trait = $1', [fit.trait]);
          let written = 0;
          const flush = async (batch: ({ key: string } & Prediction)[]) => {
            const { rowCount } = await client.query(
              `INSERT INTO predicted_traits (profile_key, trait, value, confidence)
               SELECT w.k, $1, w.v, w.c FROM unnest($2::text[], $3::text[], $4::real[]) AS w(k, v, c)
               JOIN people p ON p.profile_key = w.k
               WHERE p.personalization AND NOT (p.traits ?| $5::text[])`,
              [
                fit.trait,
                batch.map((b) => b.key),
                batch.map((b) => b.value),
                batch.map((b) => b.confidence),
                GIVEN_BY[fit.trait],
              ],
            );
            written += rowCount ?? 0;
          };
          let batch: ({ key: string } & Prediction)[] = [];
          for (const p of predictions()) {
            batch.push(p);
            if (batch.length === WRITE_BATCH) {
              await flush(batch);
              batch = [];
            }
          }
          if (batch.length > 0) await flush(batch);
          return written;
        },
        { log },
      );
    },

    /**
     * Records why a run trained nothing for `trait` (the request is done: asking again will not help until data
     * changes).
     */
    async failed(trait: PredictedTrait, reason: string, startedMs: number): Promise<void> {
      await pool.query(
        'UPDATE trait_models SET last_error = $2, failed_at = $3, requested_at = CASE WHEN requested_at <= $3 THEN NULL ELSE requested_at END WHERE trait = $1',
        [trait, reason, new Date(startedMs).toISOString()],
      );
    },

    /**
     * The stored predictions of a person (§5.9), for the traits they have not given (`traits`:
     * their given traits as read with the profile). One primary-key read; no model is run.
     */
    async predicted(profileKey: string, traits: Record<string, unknown>): Promise<Predicted> {
      const { rows } = await pool.query<{ trait: PredictedTrait; value: string; confidence: number }>({
        name: 'predicted-traits',
        text: 'SELECT trait, value, confidence FROM predicted_traits WHERE profile_key = $1',
        values: [profileKey],
      });
      return predictionsServed(rows, traits);
    },

    /**
     * Among `keys` (profile keys), how many are predicted as each value of each trait, counting
     * only people who have not given the trait: the "predicted" part of a follower mix (§5.5).
     */
    async predictedCounts(keys: readonly string[]): Promise<Record<PredictedTrait, Record<string, number>>> {
      const out = Object.fromEntries(PREDICTED_TRAITS.map((t) => [t, {}])) as Record<
        PredictedTrait,
        Record<string, number>
      >;
      if (keys.length === 0) return out;
      const { rows } = await pool.query<{ trait: PredictedTrait; value: string; n: number }>(
        `SELECT t.trait, t.value, count(*)::int AS n FROM predicted_traits t JOIN people p ON p.profile_key = t.profile_key
         WHERE t.profile_key = ANY($1::text[]) AND p.personalization
           AND NOT (p.traits ?| CASE t.trait WHEN 'gender' THEN $2::text[] ELSE $3::text[] END)
         GROUP BY t.trait, t.value`,
        [keys, GIVEN_BY.gender, GIVEN_BY.ageBand],
      );
      for (const r of rows) if (r.trait in out) out[r.trait][r.value] = r.n;
      return out;
    },
  };
}

export type ModelStore = ReturnType<typeof createModelStore>;
