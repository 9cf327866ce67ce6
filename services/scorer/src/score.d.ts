import { type ProfileEvent } from '@pstream/events';
import type { PreparedEvent } from '@pstream/interest-store';
import { type DecayParams, type ScoringEvent } from '@pstream/scoring';
/**
 * Turns a validated event into what the apply script needs: its dedupe member, the forward
 * factor of its time, its target key and its explicit tags — the event's own, or the catalog's
 * when it has none (§5.6). Pure; the catalog lookup happens before, in one round trip per batch.
 */
export declare function prepareEvent(event: ProfileEvent, decay: DecayParams, catalog: ReadonlyMap<string, string[]>): PreparedEvent;
/** The same event as the pure model sees it (for tests and tools that replay through packages/scoring). */
export declare function toScoringEvent(event: ProfileEvent, catalog?: ReadonlyMap<string, string[]>): ScoringEvent;
