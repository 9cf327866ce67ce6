import type { Pool } from '@pstream/platform';

/*
 * Reading a deployment's hot relations before the first request does (pg_prewarm, migration 210;
 * docs/operations.md "Prewarming"). /similar's Postgres read and a preview's `did … tag` leaf are
 * fast when their pages are cached and slow the first time they are read: BENCHMARKS.md "Previews
 * and similar people at 1 M: the first read of pages".
 */

/**
 * How pg_prewarm loads a relation: `buffer` into Postgres's shared_buffers (a cache hit for the
 * next reader), `read` into the operating system's page cache only (the next reader copies it
 * from there instead of reading the disk; for relations larger than a share of shared_buffers),
 * `prefetch` asks the OS to read it in the background (returns at once).
 */
export const PREWARM_MODES = ['buffer', 'read', 'prefetch'] as const;
export type PrewarmMode = (typeof PREWARM_MODES)[number];

/**
 * What one relation's prewarm did: its blocks (8 KB) read and how long it took; `missing` when the deployment's
 * schema has no such relation, `error` when reading it failed (the others are still read), `stopped` when the
 * caller stopped it part way (a shutdown).
 */
export type Prewarmed = {
  relation: string;
  mode: PrewarmMode;
  blocks: number;
  ms: number;
  missing?: true;
  error?: string;
  stopped?: true;
};

/**
 * Blocks read by one statement (16 MB): a statement holds its lock on the relation while it runs, so a
 * relation of gigabytes is read in short steps that DDL (a migration) and a shutdown can come between.
 */
export const PREWARM_STEP_BLOCKS = 2048;

/**
 * Loads each relation (a table or index name looked up in the deployment's own schema, `current_schema()`:
 * never another deployment's relation of the same name in `public`) in its mode, one after the other on
 * one connection at a time, `stepBlocks` a statement; stops between steps once `signal` is
 * aborted. Returns null when the pg_prewarm extension is not installed in the database (migration 210
 * could not create it), so the caller can say so and carry on: nothing is wrong, the first reads are
 * just slower.
 */
export async function prewarm(
  pool: Pool,
  relations: ReadonlyMap<string, PrewarmMode>,
  { signal, stepBlocks = PREWARM_STEP_BLOCKS }: { signal?: AbortSignal; stepBlocks?: number } = {},
): Promise<Prewarmed[] | null> {
  // the extension's functions live in whichever schema created it (public when the migration could)
  const { rows: ext } = await pool.query<{ ns: string }>(
    `SELECT quote_ident(n.nspname) AS ns FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_prewarm'`,
  );
  if (ext.length === 0) return null;
  const step = `SELECT ${ext[0]!.ns}.pg_prewarm($1::oid::regclass, $2, 'main', $3, $4) AS blocks`;
  const out: Prewarmed[] = [];
  for (const [relation, mode] of relations) {
    const started = performance.now();
    let blocks = 0;
    const done = (more: Partial<Prewarmed> = {}): void => {
      out.push({ relation, mode, blocks, ms: performance.now() - started, ...more });
    };
    try {
      const { rows } = await pool.query<{ oid: string | null; size: string | null }>(
        `SELECT r::oid AS oid, pg_relation_size(r) / current_setting('block_size')::int8 AS size
         FROM to_regclass(format('%I.%I', current_schema(), $1::text)) r`,
        [relation],
      );
      const { oid, size } = rows[0] ?? { oid: null, size: null };
      if (oid === null) {
        done({ missing: true });
        continue;
      }
      const last = Number(size) - 1;
      for (let first = 0; first <= last; first += stepBlocks) {
        if (signal?.aborted) break;
        const r = await pool.query<{ blocks: string }>(step, [
          oid,
          mode,
          first,
          Math.min(first + stepBlocks - 1, last),
        ]);
        blocks += Number(r.rows[0]!.blocks);
      }
      done(signal?.aborted && blocks <= last ? { stopped: true } : {});
    } catch (err) {
      done({ error: err instanceof Error ? err.message : String(err) });
    }
    if (signal?.aborted) break;
  }
  return out;
}

/**
 * What the query API prewarms by default (its PG_PREWARM): the relations whose first reads were the
 * query side's tails — /similar's (the covering indexes of migration 170, the opted-out index of
 * 140, the identities it resolves keys through), a preview's `did … tag` leaf (`activity`, one heap
 * page per row of the tag, and its tag index) and its per-person checks (`people`, `follows`) —
 * into the OS page cache (`read`): ~0.8 GB at 1 M people, more than the default 128 MB of
 * shared_buffers, which a `buffer` prewarm would fill and the write path's pages would then miss.
 * A page in the OS cache is a copy away (~5 µs here) where one on disk was ~47 µs
 * (BENCHMARKS.md "Previews and similar people at 1 M: the first read of pages").
 */
export const QUERY_PREWARM: ReadonlyMap<string, PrewarmMode> = new Map<string, PrewarmMode>(
  [
    'purchases_spend',
    'activity_social',
    'people_opted_out',
    'identities_pkey',
    'activity',
    'activity_by_tag',
    'people',
    'people_pkey',
    'follows_pkey',
  ].map((relation) => [relation, 'read']),
);
