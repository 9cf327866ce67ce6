import { scanKeys, type Redis } from '@pstream/platform';
import type { Result } from 'ioredis';
import type { Keys } from './keys';

/*
 * The per-tag index in buckets by SCORE RANGE (the default layout, TAG_INDEX_LAYOUT=range): a tag's
 * entries (person → stored score) are cut into sorted sets `{p}:tag:{tag}:r<id>` of at most
 * RANGE_SPLIT_AT entries each, every one a listpack (≈ 38 B an entry instead of the ≈ 105 B of one
 * skiplist), and a directory `{p}:tag:{tag}:rd` (sorted set: bucket id → the lowest score the bucket
 * holds; the first bucket's is -inf) says which bucket holds a score: the one with the greatest bound
 * ≤ it. A hash `{p}:tag:{tag}:rc` keeps each bucket's count, and the meta hash the tag's (`c`). Buckets never share a score: a split cuts
 * between two different scores (a bucket whose entries all have one score cannot split, and grows —
 * a skiplist past 128, same answers), so the buckets read in directory order give exactly one sorted
 * set's order, equal scores (ordered by member) included. So the questions asked in score order read
 * the directory and one or a few buckets: a count above a bound is a ZCOUNT of the bound's bucket plus
 * the counts of the buckets above it (or the tag's count less those below, when fewer); the nearest n on each side read the bound's bucket and its
 * neighbours until n are found; holders above a bound, the buckets from the bound's up.
 *
 * A write moves an entry from the bucket of its OLD score (the writer knows it: the person's state it
 * read carries the scores, store.ts) to the bucket of its new one; when both scores fall in one bucket, its
 * score changes in place there (one ZADD: no removal, no count or merge). When the entry is not where the old
 * score says — a zombie writer's index write landing after a newer one, a settle, a lost write — the
 * script looks for it in every bucket of the tag and removes it wherever it is; a writer that does not
 * know the old score (the settle's rewrite, tests, tools) passes `?` and the script does the same. A
 * writer that knows the person did not hold the tag passes '' and the entry is added where its score
 * says (if an entry the writer did not know of were left elsewhere — a scorer killed between its state
 * write and its index write that removed the tag, and the tag coming back later — it would stay beside
 * the new one until the settle or a rebuild rewrites it; every other layout leaves that stale entry too).
 * The settle (store.ts) rewrites every person another writer changed in between with `?`, so what
 * stays is the newest writer's scores, as in the other layouts.
 *
 * A bucket keeps its scores multiplied by a power of two, 2^e, named in its directory member
 * (`<id>k<e>`; the bucket's key is `:r<id>k<e>`): e puts the bucket's lowest score at 2^52 or just
 * above (a new tag's first bucket: 2^54, room for lower scores), where every double is a whole
 * number. A listpack keeps a whole number under 1e17 (2^56.5, Redis 7.0 as measured) as an integer and
 * every other score as text, which each insert parses (strtod) for every entry it walks past: ≈ 7.6 µs
 * for a ZADD into 120 fractional scores, ≈ 1.5 into integers (BENCHMARKS.md "Scaled score-range
 * buckets"). Multiplying by a power of two is exact (no score reaches 2^900), so every reader's
 * answer is what the unscaled scores give: a bound is scaled by the bucket's factor before a ZCOUNT
 * or a ZRANGEBYSCORE in it, and a score read back is divided by it (printed with %.17g, which parses
 * back to the same double). Scores more than ≈ 11× a bucket's lowest (the top bucket, a new tag's
 * first) stay text: right, only slower. A bucket named `<id>` (versions before) keeps its scores as
 * they are and is read and written so; splits name the new half scaled, and
 * `pnpm scorer:tag-index-move` rewrites the rest (`RANGE_RESCALE`).
 *
 * Splits (a bucket past RANGE_SPLIT_AT in two halves) and merges (a bucket under RANGE_MERGE_BELOW
 * after a removal into a neighbour, when both fit under RANGE_MERGE_MAX) happen inside the write
 * script, atomic: all of a tag's keys share the tag's hash tag (one Cluster slot), and every reader is
 * one script call too, so no reader sees a split half done.
 */

/** A bucket past this many entries splits in two (under Redis's zset-max-listpack-entries, 128). */
export const RANGE_SPLIT_AT = 120;
/** A bucket left under this many entries by a removal merges into a neighbour … */
export const RANGE_MERGE_BELOW = 30;
/** … when the two hold at most this many together. */
export const RANGE_MERGE_MAX = 90;
/** Entries a bucket gets when a whole tag is moved into score-range buckets (`moveTagIndex`). */
export const RANGE_FILL = 90;

/** Shared by the scripts: KEYS[1] is the tag's meta hash `{p}:tag:{tag}:m`, KEYS[2] its directory. */
const COMMON = `
local meta, dir = KEYS[1], KEYS[2]
local base = string.sub(meta, 1, -3)
local function key(id) return base .. ':r' .. id end
local function holder(score) return redis.call('ZREVRANGEBYSCORE', dir, score, '-inf', 'LIMIT', 0, 1)[1] end
-- a bucket named \`<id>k<e>\` keeps its scores multiplied by 2^e (exact: a power of two), a bucket named \`<id>\` as they are
local scales = {}
local function scale(id)
  local f = scales[id]
  if not f then
    local at = string.find(id, 'k', 1, true)
    f = at and 2 ^ tonumber(string.sub(id, at + 1)) or 1
    scales[id] = f
  end
  return f
end
-- a score as a bucket keeps it, and back (%.17g: every double prints and parses back exactly)
local function scaled(id, score)
  local f = scale(id)
  if f == 1 then return score end
  return string.format('%.17g', tonumber(score) * f)
end
-- the directory member of a new bucket \`id\` whose scores start at \`low\`: scaled so that \`low\` lands in
-- [2^(top-1), 2^top) (a listpack keeps a whole number under 1e17 as an integer, so it parses no text), or as it is
local function named(id, low, top)
  if low > 0 and low < math.huge then
    local _, e = math.frexp(low)
    return id .. 'k' .. math.max(0, math.min(120, top - e))
  end
  return tostring(id)
end
local function unscaled(id, stored)
  local f = scale(id)
  if f == 1 or not stored then return stored end
  return string.format('%.17g', tonumber(stored) / f)
end
`;

/**
 * KEYS: meta, directory, counts, the tag's one set (layout before buckets). ARGV: RANGE_SPLIT_AT,
 * RANGE_MERGE_BELOW, RANGE_MERGE_MAX, then `person old new` triples in order: `old` the score the
 * writer believes the entry has ('' none, '?' unknown), `new` its score ('' removes it). Returns -1
 * when the tag is in another layout (nothing written: the caller writes it there), else 1. A tag with
 * no index yet starts in score-range buckets.
 */
export const RANGE_WRITE =
  COMMON +
  `
local counts, legacy = KEYS[3], KEYS[4]
local m = redis.call('HMGET', meta, 'r', 'n')
if not m[1] then
  if m[2] or redis.call('EXISTS', legacy) == 1 then return -1 end
  redis.call('HSET', meta, 'r', 1, 'i', 1)
  -- the first bucket's scale from the first score written, with room below it (scores under 2^52 stay fractions)
  local first = '0'
  for i = 6, #ARGV, 3 do
    if ARGV[i] ~= '' then first = named(0, tonumber(ARGV[i]), 55); break end
  end
  redis.call('ZADD', dir, '-inf', first)
end
local splitAt, mergeBelow, mergeMax = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local floor = math.floor
-- each bucket's key, made once a call
local keyOf = {}
local function bucket(id)
  local k = keyOf[id]
  if not k then k = key(id); keyOf[id] = k end
  return k
end
-- bucket counts: read at a call's first use of a bucket, kept here and written once at its end (one HSET of
-- those changed): the values an HINCRBY a change would leave, without a write command a change (each costs
-- the script a call and its propagation bookkeeping); a split writes its two counts itself, as before
local cnt, dirty = {}, {}
local function count(id)
  local c = cnt[id]
  if not c then
    c = tonumber(redis.call('HGET', counts, id)) or 0
    cnt[id] = c
  end
  return c
end
local function bump(id, by)
  local c = count(id) + by
  cnt[id], dirty[id] = c, true
  return c
end
-- A call of several changes reads the directory once (while it has at most 4 buckets a change) and finds
-- each score's bucket in it, as \`holder\` would (the last bound <= the score); a split or a merge drops it.
local changes = (#ARGV - 3) / 3
local useDir = changes >= 2 and redis.call('ZCARD', dir) <= 4 * changes
local bounds, ids
-- \`s\`: the score as a number
local function find(score, s)
  if not useDir then return holder(score) end
  if not bounds then
    local flat = redis.call('ZRANGE', dir, 0, -1, 'WITHSCORES')
    bounds, ids = {}, {}
    for j = 1, #flat, 2 do
      ids[#ids + 1] = flat[j]
      bounds[#bounds + 1] = tonumber(flat[j + 1])
    end
  end
  local lo, hi = 1, #bounds
  while lo < hi do
    local mid = floor((lo + hi + 1) / 2)
    if bounds[mid] <= s then lo = mid else hi = mid - 1 end
  end
  return ids[lo]
end
local touched, total = {}, 0
local function remove(id, person)
  local r = redis.call('ZREM', bucket(id), person)
  if r == 1 then
    bump(id, -1)
    touched[id] = true
    total = total - 1
  end
  return r
end
-- from every bucket but \`except\` (nil: every one)
local function removeAnywhere(person, except)
  for _, id in ipairs(redis.call('ZRANGE', dir, 0, -1)) do
    if id ~= except then remove(id, person) end
  end
end
-- ZADD of the pairs from..to of a ZRANGE WITHSCORES reply, highest score first: a listpack insert scans
-- from the lowest entry to its place (a score parsed at each step), so into an empty bucket each pair
-- stops at the first entry instead of passing every one added before it
local function put(k, flat, from, to, f)
  local args = {}
  for j = to, from, -1 do
    -- a rescaled score as a Lua number: Redis prints it exactly (%.17g, or 7.2's shortest round trip), the same double as the text would give
    args[#args + 1] = f == 1 and flat[2 * j] or tonumber(flat[2 * j]) * f
    args[#args + 1] = flat[2 * j - 1]
    if #args >= 400 then redis.call('ZADD', k, unpack(args)); args = {} end
  end
  if #args > 0 then redis.call('ZADD', k, unpack(args)) end
end
local function split(id)
  -- a bucket whose entries all have one score cannot split (the cut below finds no two scores): told by its
  -- first and last score, not by reading it whole — such a bucket grows past splitAt, and every entry added to it
  -- would read all of it again (the quadratic seeding of bench:audiences, whose home tags share ~20 scores)
  local ends = redis.call('ZRANGE', key(id), 0, 0, 'WITHSCORES')
  if ends[2] == redis.call('ZRANGE', key(id), -1, -1, 'WITHSCORES')[2] then return end
  local all = redis.call('ZRANGE', key(id), 0, -1, 'WITHSCORES')
  local c = #all / 2
  local function s(j) return tonumber(all[2 * j]) end
  -- the cut: the first entry of the upper half whose score differs from the one before it
  local j = math.floor(c / 2) + 1
  while j <= c and s(j) == s(j - 1) do j = j + 1 end
  if j > c then
    j = math.floor(c / 2)
    while j > 1 and s(j) == s(j - 1) do j = j - 1 end
    if j <= 1 then return end
  end
  local low = tonumber(all[2 * j]) / scale(id)
  local new = named(redis.call('HINCRBY', meta, 'i', 1) - 1, low, 53)
  put(key(new), all, j, c, scale(new) / scale(id))
  redis.call('ZREMRANGEBYRANK', key(id), j - 1, -1)
  redis.call('ZADD', dir, string.format('%.17g', low), new)
  bounds = nil
  redis.call('HSET', counts, id, j - 1, new, c - j + 1)
  cnt[id], cnt[new], dirty[id] = j - 1, c - j + 1, nil
end
local function absorb(into, from)
  local all = redis.call('ZRANGE', key(from), 0, -1, 'WITHSCORES')
  put(key(into), all, 1, #all / 2, scale(into) / scale(from))
  redis.call('DEL', key(from))
  redis.call('ZREM', dir, from)
  bounds = nil
  redis.call('HDEL', counts, from)
  cnt[from], dirty[from] = nil, nil
  bump(into, #all / 2)
end
local function merge(id)
  local bound = redis.call('ZSCORE', dir, id)
  if not bound then return end
  local c = count(id)
  if c >= mergeBelow then return end
  local nxt = redis.call('ZRANGEBYSCORE', dir, '(' .. bound, '+inf', 'LIMIT', 0, 1)[1]
  if nxt and c + count(nxt) <= mergeMax then return absorb(id, nxt) end
  local prev = redis.call('ZREVRANGEBYSCORE', dir, '(' .. bound, '-inf', 'LIMIT', 0, 1)[1]
  if prev and c + count(prev) <= mergeMax then absorb(prev, id) end
end
-- \`elsewhere\`: the entry was not in bucket \`id\`: wherever else it is goes first (before a split moves entries)
-- \`s\` is \`score\` as a number: a scaled score goes to ZADD as a Lua number (Redis prints it exactly, %.17g or 7.2's shortest round trip, as \`scaled\`
-- would: the same double stored), an unscaled one as the writer's text
local function add(id, person, score, s, elsewhere)
  local f = scale(id)
  if redis.call('ZADD', bucket(id), f == 1 and score or s * f, person) == 1 then
    if elsewhere then removeAnywhere(person, id) end
    total = total + 1
    if bump(id, 1) > splitAt then split(id) end
  end
end
for i = 4, #ARGV, 3 do
  local person, old, new = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local s = tonumber(new)
  local id = new ~= '' and find(new, s) or nil
  if old ~= '' and old ~= '?' and id and find(old, tonumber(old)) == id then
    -- the old and the new score in one bucket: the entry's score changes in place (no count, no merge)
    add(id, person, new, s, true)
  else
    if old == '?' then removeAnywhere(person)
    elseif old ~= '' then
      if remove(find(old, tonumber(old)), person) == 0 then removeAnywhere(person) end
    end
    if id then add(id, person, new, s, false) end
  end
end
for id in pairs(touched) do merge(id) end
local changed = {}
for id in pairs(dirty) do
  changed[#changed + 1] = id
  changed[#changed + 1] = cnt[id]
end
if #changed > 0 then redis.call('HSET', counts, unpack(changed)) end
if total ~= 0 then redis.call('HINCRBY', meta, 'c', total) end
return 1
`;

/** The start of every reader: nil unless the tag is in score-range buckets. */
const IS_RANGE = `if not redis.call('HGET', meta, 'r') then return false end
`;

/**
 * KEYS: meta, directory, counts, the tag's one set. ARGV: a bound. How many entries have a stored
 * score ≥ the bound. In score-range buckets: a ZCOUNT of the bound's bucket plus the counts of the
 * buckets above it. In the layouts before: a ZCOUNT of the one set and of every hash bucket. Atomic,
 * one round trip, whatever the layout.
 */
export const RANGE_COUNT =
  COMMON +
  `
local m = redis.call('HMGET', meta, 'r', 'n', 'l')
if m[1] then
  local function sum(ids)
    local n = 0
    for c = 1, #ids, 1000 do
      local got = redis.call('HMGET', KEYS[3], unpack(ids, c, math.min(#ids, c + 999)))
      for _, v in ipairs(got) do n = n + (tonumber(v) or 0) end
    end
    return n
  end
  local first = holder(ARGV[1])
  local bound = scaled(first, ARGV[1])
  -- the counts of the buckets above the bound's, or (fewer to read) all less those below it
  if redis.call('ZCOUNT', dir, '(' .. ARGV[1], '+inf') <= redis.call('ZCOUNT', dir, '-inf', ARGV[1]) then
    return redis.call('ZCOUNT', key(first), bound, '+inf') + sum(redis.call('ZRANGEBYSCORE', dir, '(' .. ARGV[1], '+inf'))
  end
  local below = redis.call('ZRANGEBYSCORE', dir, '-inf', '(' .. redis.call('ZSCORE', dir, first))
  local all = tonumber(redis.call('HGET', meta, 'c')) or 0
  return all - sum(below) - redis.call('ZCOUNT', key(first), '-inf', '(' .. bound)
end
local total = 0
if not m[2] or m[3] ~= '0' then total = redis.call('ZCOUNT', KEYS[4], ARGV[1], '+inf') end
for i = 0, (tonumber(m[2]) or 0) - 1 do total = total + redis.call('ZCOUNT', base .. ':' .. i, ARGV[1], '+inf') end
return total
`;

/** KEYS: meta, directory. ARGV: a bound. The people with a stored score ≥ it, in ZRANGEBYSCORE's order. nil: not in this layout. */
export const RANGE_MEMBERS =
  COMMON +
  IS_RANGE +
  `
local first = holder(ARGV[1])
local out = redis.call('ZRANGEBYSCORE', key(first), scaled(first, ARGV[1]), '+inf')
for _, id in ipairs(redis.call('ZRANGEBYSCORE', dir, '(' .. ARGV[1], '+inf')) do
  for _, p in ipairs(redis.call('ZRANGE', key(id), 0, -1)) do out[#out + 1] = p end
end
return out
`;

/**
 * KEYS: meta, directory. ARGV: a score, n. The n people next above the score (≥, ascending) and the n
 * next below it (<, descending), as ZRANGEBYSCORE/ZREVRANGEBYSCORE … LIMIT 0 n of one set give them:
 * the score's bucket, then its neighbours until n are found. nil: not in this layout.
 */
export const RANGE_NEAREST =
  COMMON +
  IS_RANGE +
  `
local s, n = ARGV[1], tonumber(ARGV[2])
local first = holder(s)
local ups = redis.call('ZRANGEBYSCORE', key(first), scaled(first, s), '+inf', 'LIMIT', 0, n)
local cursor = s
while #ups < n do
  local nxt = redis.call('ZRANGEBYSCORE', dir, '(' .. cursor, '+inf', 'WITHSCORES', 'LIMIT', 0, 8)
  if #nxt == 0 then break end
  for j = 1, #nxt, 2 do
    if #ups >= n then break end
    for _, p in ipairs(redis.call('ZRANGE', key(nxt[j]), 0, n - #ups - 1)) do ups[#ups + 1] = p end
    cursor = nxt[j + 1]
  end
end
local downs = redis.call('ZREVRANGEBYSCORE', key(first), '(' .. scaled(first, s), '-inf', 'LIMIT', 0, n)
cursor = redis.call('ZSCORE', dir, first)
while #downs < n do
  local prev = redis.call('ZREVRANGEBYSCORE', dir, '(' .. cursor, '-inf', 'WITHSCORES', 'LIMIT', 0, 8)
  if #prev == 0 then break end
  for j = 1, #prev, 2 do
    if #downs >= n then break end
    for _, p in ipairs(redis.call('ZREVRANGE', key(prev[j]), 0, n - #downs - 1)) do downs[#downs + 1] = p end
    cursor = prev[j + 1]
  end
end
return { ups, downs }
`;

/**
 * KEYS: meta, directory. ARGV: `person hint` pairs, the hint the score the person's state carries in the
 * tag ('' none, '?' unknown). Each person's stored score in the index (nil: none): looked for in the
 * bucket of the hint; a person not there, or with no hint, in every bucket. nil: not in this layout.
 */
export const RANGE_SCORES =
  COMMON +
  IS_RANGE +
  `
local out, lost = {}, {}
for i = 1, #ARGV, 2 do
  local j = (i + 1) / 2
  out[j] = false
  local hint = ARGV[i + 1]
  if hint == '?' then lost[#lost + 1] = j
  elseif hint ~= '' then
    local h = holder(hint)
    local sc = redis.call('ZSCORE', key(h), ARGV[i])
    if sc then out[j] = unscaled(h, sc) else lost[#lost + 1] = j end
  end
end
if #lost > 0 then
  for _, id in ipairs(redis.call('ZRANGE', dir, 0, -1)) do
    for c = 1, #lost, 500 do
      local args = {}
      for q = c, math.min(#lost, c + 499) do args[#args + 1] = ARGV[2 * lost[q] - 1] end
      local got = redis.call('ZMSCORE', key(id), unpack(args))
      for q = 1, #args do if got[q] then out[lost[c + q - 1]] = unscaled(id, got[q]) end end
    end
  end
end
return out
`;

/** KEYS: meta, directory. Every entry, `person score` pairs in score order. nil: not in this layout. */
export const RANGE_ALL =
  COMMON +
  IS_RANGE +
  `
local out = {}
for _, id in ipairs(redis.call('ZRANGE', dir, 0, -1)) do
  local flat = redis.call('ZRANGE', key(id), 0, -1, 'WITHSCORES')
  for j = 1, #flat, 2 do
    out[#out + 1] = flat[j]
    out[#out + 1] = unscaled(id, flat[j + 1])
  end
end
return out
`;

/**
 * KEYS: meta, directory, counts, the tag's one set, the scratch key. ARGV: RANGE_FILL. Moves a tag's
 * whole index from the earlier layouts (its one set and its hash buckets `:0` … `:n−1`; an entry is in
 * exactly one of them) into score-range buckets of RANGE_FILL entries, in one atomic step: readers see
 * the tag whole in one layout or the other. Returns the entries moved (0: nothing to move, or done).
 */
export const RANGE_MOVE =
  COMMON +
  `
local counts, legacy, tmp = KEYS[3], KEYS[4], KEYS[5]
local m = redis.call('HMGET', meta, 'r', 'n')
if m[1] then return 0 end
local from = { legacy }
for i = 0, (tonumber(m[2]) or 0) - 1 do from[#from + 1] = base .. ':' .. i end
-- one set alone is read as it is; with hash buckets, all of them (disjoint) merged in score order first
local src = legacy
if #from > 1 then
  redis.call('ZUNIONSTORE', tmp, #from, unpack(from))
  src = tmp
end
local total = redis.call('ZCARD', src)
redis.call('HDEL', meta, 'n', 'c', 'l')
local fill = tonumber(ARGV[1])
-- \`name\`: bucket \`id\`'s directory member, scaled from its lowest score (\`named\`) when its first entry comes
local id, inBucket, last, args, name = 0, 0, nil, {}, nil
local bounds = {}
local function flush()
  if #args > 0 then redis.call('ZADD', key(name), unpack(args)); args = {} end
end
for at = 0, total - 1, 1000 do
  local chunk = redis.call('ZRANGE', src, at, at + 999, 'WITHSCORES')
  for j = 1, #chunk, 2 do
    local s = tonumber(chunk[j + 1])
    if inBucket >= fill and s ~= last then
      flush()
      redis.call('HSET', counts, name, inBucket)
      id, inBucket, name = id + 1, 0, nil
    end
    if not name then
      name = named(id, s, 53)
      bounds[#bounds + 1] = id == 0 and '-inf' or chunk[j + 1]
      bounds[#bounds + 1] = name
    end
    args[#args + 1] = scaled(name, chunk[j + 1])
    args[#args + 1] = chunk[j]
    inBucket, last = inBucket + 1, s
    if #args >= 400 then flush() end
  end
end
if not name then
  name = '0'
  bounds = { '-inf', name }
end
flush()
redis.call('HSET', counts, name, inBucket)
for c = 1, #bounds, 400 do redis.call('ZADD', dir, unpack(bounds, c, math.min(#bounds, c + 399))) end
redis.call('DEL', tmp, unpack(from))
redis.call('HSET', meta, 'r', 1, 'i', id + 1, 'c', total)
return total
`;

/**
 * KEYS: meta, directory, counts. Rewrites each bucket of a tag in score-range buckets that keeps its
 * scores as they are (named \`<id>\`: written by versions before scaled buckets) into a new bucket
 * \`<id>k<e>\` scaled from its lowest score, in one atomic step (readers see one bucket or the other).
 * Returns the entries rewritten; -1: the tag is not in score-range buckets.
 */
export const RANGE_RESCALE =
  COMMON +
  `
local counts = KEYS[3]
if not redis.call('HGET', meta, 'r') then return -1 end
local moved = 0
local flat = redis.call('ZRANGE', dir, 0, -1, 'WITHSCORES')
for j = 1, #flat, 2 do
  local id, bound = flat[j], flat[j + 1]
  local all = string.find(id, 'k', 1, true) == nil and redis.call('ZRANGE', key(id), 0, -1, 'WITHSCORES') or {}
  local low = tonumber(all[2])
  if low and low > 0 then
    local new = named(redis.call('HINCRBY', meta, 'i', 1) - 1, low, 53)
    -- highest score first: each insert into the new listpack stops at its first entry
    local args = {}
    for q = #all - 1, 1, -2 do
      args[#args + 1] = scaled(new, all[q + 1])
      args[#args + 1] = all[q]
      if #args >= 400 or q == 1 then redis.call('ZADD', key(new), unpack(args)); args = {} end
    end
    redis.call('DEL', key(id))
    redis.call('ZREM', dir, id)
    redis.call('ZADD', dir, bound, new)
    redis.call('HDEL', counts, id)
    redis.call('HSET', counts, new, #all / 2)
    moved = moved + #all / 2
  end
end
return moved
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    pstreamRangeWrite(
      meta: string,
      dir: string,
      counts: string,
      legacy: string,
      ...args: (string | number)[]
    ): Result<number, Context>;
    pstreamRangeCount(meta: string, dir: string, counts: string, legacy: string, min: string): Result<number, Context>;
    pstreamRangeMembers(meta: string, dir: string, min: string): Result<string[] | null, Context>;
    pstreamRangeNearest(
      meta: string,
      dir: string,
      score: string,
      n: number,
    ): Result<[string[], string[]] | null, Context>;
    pstreamRangeScores(meta: string, dir: string, ...pairs: string[]): Result<(string | null)[] | null, Context>;
    pstreamRangeAll(meta: string, dir: string): Result<string[] | null, Context>;
    pstreamRangeRescale(meta: string, dir: string, counts: string): Result<number, Context>;
    pstreamRangeMove(
      meta: string,
      dir: string,
      counts: string,
      legacy: string,
      tmp: string,
      fill: number,
    ): Result<number, Context>;
  }
}

/** Defines the score-range scripts on a client once. */
export function withRangeScripts(redis: Redis): Redis {
  if (typeof (redis as Partial<Redis>).pstreamRangeWrite !== 'function') {
    redis.defineCommand('pstreamRangeWrite', { numberOfKeys: 4, lua: RANGE_WRITE });
    redis.defineCommand('pstreamRangeCount', { numberOfKeys: 4, lua: RANGE_COUNT });
    redis.defineCommand('pstreamRangeMembers', { numberOfKeys: 2, lua: RANGE_MEMBERS });
    redis.defineCommand('pstreamRangeNearest', { numberOfKeys: 2, lua: RANGE_NEAREST });
    redis.defineCommand('pstreamRangeScores', { numberOfKeys: 2, lua: RANGE_SCORES });
    redis.defineCommand('pstreamRangeAll', { numberOfKeys: 2, lua: RANGE_ALL });
    redis.defineCommand('pstreamRangeMove', { numberOfKeys: 5, lua: RANGE_MOVE });
    redis.defineCommand('pstreamRangeRescale', { numberOfKeys: 3, lua: RANGE_RESCALE });
  }
  return redis;
}

/**
 * Moves one tag's index from the layouts before score-range buckets (its one set, or hash buckets)
 * into score-range buckets, in one script call (atomic; it holds Redis for the tag's size: see
 * docs/operations.md). A tag already in score-range buckets is left as it is. Returns the entries moved.
 */
export async function moveTagIndex(redis: Redis, k: Keys, tag: string): Promise<number> {
  return withRangeScripts(redis).pstreamRangeMove(
    k.tagMeta(tag),
    k.tagDirectory(tag),
    k.tagCounts(tag),
    k.legacyTag(tag),
    k.tagMoving(tag),
    RANGE_FILL,
  );
}

/**
 * Rewrites one tag's score-range buckets that keep their scores as they are (versions before scaled
 * buckets) into scaled ones, in one script call (atomic; it holds Redis for the tag's size, as the
 * move). Returns the entries rewritten (0: none left; -1: the tag is not in score-range buckets).
 */
export async function rescaleTagIndex(redis: Redis, k: Keys, tag: string): Promise<number> {
  return withRangeScripts(redis).pstreamRangeRescale(k.tagMeta(tag), k.tagDirectory(tag), k.tagCounts(tag));
}

/**
 * `pnpm scorer:tag-index-move`: moves every tag of a prefix not in score-range buckets yet into them,
 * and rewrites the buckets of versions before scaled buckets into scaled ones, one tag (one atomic
 * script call) at a time; safe to run while scorers write and to run again. Calls `onTag` after each
 * tag moved or rewritten. Returns the tags and entries moved or rewritten.
 */
export async function moveTagIndexes(
  redis: Redis,
  k: Keys,
  onTag: (tag: string, entries: number) => void = () => {},
): Promise<{ tags: number; entries: number }> {
  const head = k.legacyTag('').slice(0, -1); // `{prefix}:tag:{`
  const tags = new Set<string>();
  for await (const batch of scanKeys(redis, k.tagPattern))
    for (const key of batch) if (key.startsWith(head)) tags.add(key.slice(head.length, key.lastIndexOf('}')));
  let moved = 0;
  let entries = 0;
  for (const tag of [...tags].sort()) {
    const n = (await moveTagIndex(redis, k, tag)) || Math.max(0, await rescaleTagIndex(redis, k, tag));
    if (n === 0) continue;
    moved++;
    entries += n;
    onTag(tag, n);
  }
  return { tags: moved, entries };
}
