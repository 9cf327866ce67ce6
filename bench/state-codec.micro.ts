/* Microbench (not a pnpm script): packed vs JSON state encode/decode on the cost bench's people. */
import {
  encodeJsonState,
  encodeState,
  decodeState,
  digestOf,
  emptyStateParts,
  type Seen,
  type StateParts,
} from '@pstream/interest-store';
import { addEvents, emptyState, replay, type PersonState } from '@pstream/scoring';
import { loadConfig, storeOptions } from '@pstream/scorer/config';
import { prepareEvent } from '@pstream/scorer/score';
import { loadDefaultEnv } from '@pstream/testkit';
import { benchStream } from './scorer-throughput';

loadDefaultEnv();
const o = storeOptions(loadConfig({ ...process.env, LOG_LEVEL: 'silent' }));
const params = { ...o.scoring, latenessMs: o.latenessMs, maxTags: o.maxTagsPerPerson };
const perPerson = Number(process.env.PER_PERSON ?? 24);
const { messages } = benchStream(7, 2000 * perPerson, perPerson);
const people = new Map<string, { s: PersonState; seen: Seen }>();
for (const m of messages) {
  const e = prepareEvent(m, new Map());
  let p = people.get(e.profileKey);
  if (!p) people.set(e.profileKey, (p = { s: emptyState(), seen: new Map() }));
  p.seen.set(digestOf(e.member), Math.floor(e.receivedMs / 1000) * 1000);
  addEvents(
    p.s,
    [
      {
        type: e.type as never,
        key: e.targetKey,
        tags: e.tags,
        t: e.occurredMs,
        ...(e.dwellMs !== undefined && { dwellMs: e.dwellMs }),
      },
    ],
    params,
  );
}
const list = [...people.values()];
let packed = 0;
let json = 0;
for (const p of list) {
  packed += encodeState('abcdefghij', p.s, p.seen).length;
  json += Buffer.byteLength(encodeJsonState('abcdefghij', p.s, p.seen));
}
const parts: StateParts = emptyStateParts();
for (const p of list) encodeState('abcdefghij', p.s, p.seen, { parts, scores: replay(p.s, params) });
const kept = list.reduce((n, p) => n + p.s.events.length, 0) / list.length;
const tags = list.reduce((n, p) => n + p.s.base.interests.size, 0) / list.length;
console.log(
  `by part, bytes a person: ${Object.entries(parts)
    .map(([k, v]) => `${k} ${Math.round(v / list.length)}`)
    .join(
      ', ',
    )}; ${kept.toFixed(1)} kept events, ${tags.toFixed(1)} base tags, ${(list.reduce((n, p) => n + p.seen.size, 0) / list.length).toFixed(1)} dedupe records`,
);
console.log(
  `${list.length} people: packed ${Math.round(packed / list.length)} B, JSON ${Math.round(json / list.length)} B`,
);
const time = (name: string, f: () => void) => {
  f();
  const t0 = process.cpuUsage();
  for (let r = 0; r < 10; r++) f();
  const u = process.cpuUsage(t0);
  console.log(`${name}: ${((u.user + u.system) / 10 / list.length).toFixed(2)} µs CPU/person`);
};
time('encode packed', () => list.forEach((p) => encodeState('abcdefghij', p.s, p.seen)));
time('encode JSON', () => list.forEach((p) => encodeJsonState('abcdefghij', p.s, p.seen)));
const rawP = list.map((p) => encodeState('abcdefghij', p.s, p.seen));
const rawJ = list.map((p) => Buffer.from(encodeJsonState('abcdefghij', p.s, p.seen)));
time('decode packed', () => rawP.forEach((r) => decodeState(r, o.scoring.decay)));
time('decode JSON', () => rawJ.forEach((r) => decodeState(r, o.scoring.decay)));
