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

/** What one relation's prewarm did: its blocks (8 KB) and how long it took; `missing` when no such relation exists. */
export type Prewarmed = { relation: string; mode: PrewarmMode; blocks: number; ms: number; missing?: true };

/**
 * Loads each relation (a table or index name of the deployment's schema, resolved through the
 * pool's search_path) in its mode, one after the other on one connection. Returns null when the
 * pg_prewarm extension is not installed in the database (migration 210 could not create it), so
 * the caller can say so and carry on: nothing is wrong, the first reads are just slower.
 */
export async function prewarm(pool: Pool, relations: ReadonlyMap<string, PrewarmMode>): Promise<Prewarmed[] | null> {
  // the extension's functions live in whichever schema created it (public when the migration could)
  const { rows: ext } = await pool.query<{ ns: string }>(
    `SELECT quote_ident(n.nspname) AS ns FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_prewarm'`,
  );
  if (ext.length === 0) return null;
  const out: Prewarmed[] = [];
  for (const [relation, mode] of relations) {
    const started = performance.now();
    const { rows } = await pool.query<{ blocks: string | null }>(
      `SELECT CASE WHEN to_regclass($1) IS NULL THEN NULL ELSE ${ext[0]!.ns}.pg_prewarm(to_regclass($1), $2) END AS blocks`,
      [relation, mode],
    );
    const blocks = rows[0]?.blocks;
    const ms = performance.now() - started;
    out.push(
      blocks == null
        ? { relation, mode, blocks: 0, ms, missing: true }
        : { relation, mode, blocks: Number(blocks), ms },
    );
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
