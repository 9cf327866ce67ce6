import type { Pool } from '@pstream/platform';
import { createLeafReader, type LeafReaderOptions } from './audience-leaves';
import { createAudienceWatch } from './audience-watch';
import { createSavedAudiences } from './saved-audiences';
import { createSimilarityFacts } from './similarity-facts';

export type { FactLeaf } from './audience-sql';
export type { SimilarityInputs } from './similarity-facts';
export { MIN_PART, type LeafReaderOptions } from './audience-leaves';
export type { AudienceRow } from './saved-audiences';

/**
 * The Postgres side of audiences (docs/api.md §5.4) and similar people (§5.3), one object for its
 * callers. Services hold no SQL: query-api's routes and the segmenter's audience sweep go through
 * this. Each part has one job and one file: the leaf SQL compiler (audience-sql.ts) and the reads
 * it compiles (audience-leaves.ts), saved audiences (saved-audiences.ts), the watch bookkeeping
 * (audience-watch.ts), the similarity facts (similarity-facts.ts).
 */
export function createAudienceStore(pool: Pool, options: LeafReaderOptions = {}) {
  return {
    ...createLeafReader(pool, options),
    ...createSavedAudiences(pool),
    ...createAudienceWatch(pool),
    ...createSimilarityFacts(pool),
  };
}

export type AudienceStore = ReturnType<typeof createAudienceStore>;
