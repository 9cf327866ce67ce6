import type { ScoringParams } from '@pstream/scoring';

/**
 * The Lua scripts that hold the interest model in Redis. Each runs on ONE person's keys (one
 * Cluster slot) and is atomic, so an event's dedupe record and its whole effect — visit state,
 * follow record, tag scores — are one step: applied completely or not at all.
 *
 * The visit / follow / purchase logic is `applyEvent` of packages/scoring, line for line (the
 * same arithmetic in the same order, so both give bit-identical doubles); the integration tests
 * hold the two against each other on random streams. The weights are baked into the script
 * text (numbers printed shortest-round-trip, which Lua reads back exactly), so a call only
 * carries the event.
 *
 * Packed records (tags never contain control characters, §3.2, so \n and \t are safe separators;
 * the implicit target tag is never stored in them, it is the hash field itself):
 * - visit:  `start|fstart|last|comments|likes|shares|favorites|dwellMs(-1 = none)` \n tags joined by \t
 * - follow: one line per follow part, `forwardIncrement` \t tags…
 */
export type StoreLimits = {
  /** Interest tags kept per person; beyond it the lowest stored scores are dropped. */
  maxTagsPerPerson: number;
  /** Idle time (wall clock) after which a person's open visits are forgotten. */
  visitTtlMs: number;
};

const num = (x: number) => {
  if (!Number.isFinite(x)) throw new Error(`not a finite number: ${x}`);
  return String(x);
};

function prelude(p: ScoringParams, limits: StoreLimits): string {
  const w = p.weights;
  return `
local W_BASE, W_COMMENT, W_LIKE, W_SHARE, W_FAVORITE = ${num(w.visitBase)}, ${num(w.comment)}, ${num(w.like)}, ${num(w.share)}, ${num(w.favorite)}
local W_FOLLOW, W_PURCHASE = ${num(w.follow)}, ${num(w.purchase)}
local D_SHORT, D_MID, D_LONG, D_SHORT_MS, D_LONG_MS = ${num(w.dwellShort)}, ${num(w.dwellMid)}, ${num(w.dwellLong)}, ${num(w.dwellShortMs)}, ${num(w.dwellLongMs)}
local GAP, MAX_VISITS, MAX_TAGS, VISIT_TTL = ${num(p.visitGapMs)}, ${num(p.maxOpenVisits)}, ${num(limits.maxTagsPerPerson)}, ${num(limits.visitTtlMs)}

local function fmt(x) return string.format('%.17g', x) end

local function split(s, sep)
  local out = {}
  if s == '' then return out end
  local i = 1
  while true do
    local j = string.find(s, sep, i, true)
    if not j then out[#out + 1] = string.sub(s, i); return out end
    out[#out + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end

local function decodeVisit(raw)
  local nl = string.find(raw, '\\n', 1, true)
  local h = split(string.sub(raw, 1, nl - 1), '|')
  return { start = tonumber(h[1]), fstart = tonumber(h[2]), last = tonumber(h[3]), comment = tonumber(h[4]),
    like = tonumber(h[5]), share = tonumber(h[6]), favorite = tonumber(h[7]), dwell = tonumber(h[8]),
    tags = split(string.sub(raw, nl + 1), '\\t') }
end

local function encodeVisit(v)
  return table.concat({ fmt(v.start), fmt(v.fstart), fmt(v.last), fmt(v.comment), fmt(v.like), fmt(v.share),
    fmt(v.favorite), fmt(v.dwell) }, '|') .. '\\n' .. table.concat(v.tags, '\\t')
end

local function lastOf(raw)
  local h = split(string.sub(raw, 1, string.find(raw, '\\n', 1, true) - 1), '|')
  return tonumber(h[3])
end

local function weight(v)
  local b = W_BASE + W_COMMENT * v.comment + W_LIKE * v.like + W_SHARE * v.share + W_FAVORITE * v.favorite
  local f
  if v.dwell < 0 then f = D_MID elseif v.dwell < D_SHORT_MS then f = D_SHORT elseif v.dwell <= D_LONG_MS then f = D_MID else f = D_LONG end
  return b * f
end

-- keeps at most MAX_VISITS open visits: those closed at t go first, then the least recent (ties by key)
local function prune(vk, t)
  if redis.call('HLEN', vk) <= MAX_VISITS then return end
  local all = redis.call('HGETALL', vk)
  local live = {}
  for i = 1, #all, 2 do
    local last = lastOf(all[i + 1])
    if t - last >= GAP then redis.call('HDEL', vk, all[i]) else live[#live + 1] = { all[i], last } end
  end
  if #live > MAX_VISITS then
    table.sort(live, function(a, b) if a[2] ~= b[2] then return a[2] < b[2] end return a[1] < b[1] end)
    for i = 1, #live - MAX_VISITS do redis.call('HDEL', vk, live[i][1]) end
  end
end

-- bounded memory: keep the MAX_TAGS highest stored (= highest decayed) scores; returns the tags dropped
local function trimTags(ik)
  local n = redis.call('ZCARD', ik)
  if n <= MAX_TAGS then return {} end
  local dropped = redis.call('ZRANGE', ik, 0, n - MAX_TAGS - 1)
  redis.call('ZREMRANGEBYRANK', ik, 0, n - MAX_TAGS - 1)
  return dropped
end
`;
}

/**
 * One person's events, applied in order. KEYS: seen, interests, visits, follows, alias, merged (one
 * person). ARGV: seenTtlMs, requireMerged ('' for none), event count, then per event
 * `member, legacyMember ('' for none), receivedMs, type, t, 2^((t−L)/H), targetKey, dwellMs, #tags,
 * tags…`. Returns {replies, changes}: one reply per event — 0 (duplicate), 1 (applied), {2, id}
 * (this profile was merged into id: apply there, nothing was recorded here) or {3, id} (apply only
 * after id's state was imported here) — and what the call changed in the person's interests, as
 * flat `tag, stored score ('' = gone)` pairs, for the per-tag index (tag-index.ts): every tag the
 * call wrote — a like re-weights its visit's tags, an unfollow removes the follow's tags, a trim
 * drops the lowest — with its score at the end of the call, so the index needs no round trip. Each event is the same atomic step it would be alone (its dedupe record written
 * last, after its effect); batching them saves the per-call overhead, the alias and merged checks,
 * the dedupe trim and the key expiries, which run once per call.
 */
export function applyScript(p: ScoringParams, limits: StoreLimits): string {
  return `${prelude(p, limits)}
local ik, vk, fk = KEYS[2], KEYS[3], KEYS[4]
local seenTtl, requireMerged, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local alias = redis.call('GET', KEYS[5])
local unmerged = requireMerged ~= '' and redis.call('SISMEMBER', KEYS[6], requireMerged) == 0

-- every tag whose stored score this call may have changed (its final score is read at the end)
local touched, touchedList = {}, {}
local function touch(tag)
  if not touched[tag] then touched[tag] = true; touchedList[#touchedList + 1] = tag end
end

local function add(tag, inc) redis.call('ZINCRBY', ik, fmt(inc), tag); touch(tag) end
local function addDelta(tag, d)
  if d ~= 0 and redis.call('ZSCORE', ik, tag) then redis.call('ZINCRBY', ik, fmt(d), tag); touch(tag) end
end
local function sub(tag, inc)
  local before = redis.call('ZSCORE', ik, tag)
  if not before then return end
  local after = tonumber(before) - inc
  if math.abs(after) <= 1e-9 * math.abs(inc) then redis.call('ZREM', ik, tag) else redis.call('ZADD', ik, fmt(after), tag) end
  touch(tag)
end

local function applyOne(kind, t, ft, key, dwell, tags)
  local function record(v)
    if kind == 'dwell' then
      if v.dwell < 0 then v.dwell = dwell else v.dwell = v.dwell + dwell end
    elseif kind ~= 'click' then
      v[kind] = v[kind] + 1
    end
  end
  if kind == 'purchase' then
    local inc = W_PURCHASE * ft
    for _, tag in ipairs(tags) do add(tag, inc) end
    add(key, inc)
  elseif kind == 'follow' then
    if redis.call('HEXISTS', fk, key) == 0 then
      local inc = W_FOLLOW * ft
      for _, tag in ipairs(tags) do add(tag, inc) end
      add(key, inc)
      local rec = fmt(inc)
      if #tags > 0 then rec = rec .. '\\t' .. table.concat(tags, '\\t') end
      redis.call('HSET', fk, key, rec)
    end
  elseif kind == 'unfollow' then
    local raw = redis.call('HGET', fk, key)
    if raw then
      for _, line in ipairs(split(raw, '\\n')) do
        local parts = split(line, '\\t')
        local inc = tonumber(parts[1])
        for i = 2, #parts do sub(parts[i], inc) end
        sub(key, inc)
      end
      redis.call('HDEL', fk, key)
    end
  else
    local raw = redis.call('HGET', vk, key)
    local open = raw and decodeVisit(raw)
    if kind ~= 'click' and open and t > open.start - GAP and t - open.last < GAP then
      local old = weight(open)
      record(open)
      if t > open.last then open.last = t end
      local new = weight(open)
      local d = (new - old) * open.fstart
      for _, tag in ipairs(open.tags) do addDelta(tag, d) end
      addDelta(key, d)
      local known = {}
      for _, tag in ipairs(open.tags) do known[tag] = true end
      for _, tag in ipairs(tags) do
        if not known[tag] then
          known[tag] = true
          open.tags[#open.tags + 1] = tag
          add(tag, new * open.fstart)
        end
      end
      redis.call('HSET', vk, key, encodeVisit(open))
    else
      local v = { start = t, fstart = ft, last = t, comment = 0, like = 0, share = 0, favorite = 0, dwell = -1, tags = tags }
      record(v)
      local inc = weight(v) * ft
      for _, tag in ipairs(tags) do add(tag, inc) end
      add(key, inc)
      if not open or t >= open.last then
        redis.call('HSET', vk, key, encodeVisit(v))
        prune(vk, t)
      end
    end
    return true
  end
  return false
end

local out, i, latest, visited = {}, 4, nil, false
for e = 1, n do
  local member, legacy, received, kind = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local t, ft, key, dwell, nt = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), ARGV[i + 6], tonumber(ARGV[i + 7]), tonumber(ARGV[i + 8])
  local tags = {}
  for j = 1, nt do tags[j] = ARGV[i + 8 + j] end
  i = i + 9 + nt
  if redis.call('ZSCORE', KEYS[1], member) or (legacy ~= '' and redis.call('ZSCORE', KEYS[1], legacy)) then
    out[e] = 0
  elseif alias then
    out[e] = { 2, alias }
  elseif unmerged then
    out[e] = { 3, requireMerged }
  else
    if applyOne(kind, t, ft, key, dwell, tags) then visited = true end
    -- The dedupe record last: Redis does not roll a script back, so an event that fails on bad
    -- data or state (a Lua error, WRONGTYPE) must not leave its record behind, or it would count
    -- as applied; every key's first touch above is a read or the write that fails, so a failure
    -- leaves nothing of that event (the events before it in this call stay applied and recorded,
    -- so a retry finds them duplicates) and the consumer can dead-letter it.
    redis.call('ZADD', KEYS[1], received, member)
    if not latest or received > latest then latest = received end
    for _, tag in ipairs(trimTags(ik)) do touch(tag) end
    out[e] = 1
  end
end
if visited then redis.call('PEXPIRE', vk, VISIT_TTL) end
if latest then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (latest - tonumber(seenTtl)))
  redis.call('PEXPIRE', KEYS[1], seenTtl)
end
local changes = {}
for from = 1, #touchedList, 1000 do -- bounded arguments per call (Lua's C stack)
  local upto = math.min(from + 999, #touchedList)
  local now = redis.call('ZMSCORE', ik, unpack(touchedList, from, upto))
  for j = from, upto do
    changes[#changes + 1] = touchedList[j]
    changes[#changes + 1] = now[j - from + 1] or ''
  end
end
return { out, changes }
`;
}

/**
 * Imports a merged person's frozen state (§4.4). KEYS: as applyScript, of the person merged INTO.
 * ARGV: source, #interests, #visits, #follows, #merged, then tag/score pairs, target/visit pairs,
 * target/follow pairs, merged ids. Returns 0 (already imported), 1 (imported) or {2, id} (this
 * person was itself merged into id: import there).
 */
export function importScript(p: ScoringParams, limits: StoreLimits): string {
  return `${prelude(p, limits)}
local src = ARGV[1]
if redis.call('SISMEMBER', KEYS[6], src) == 1 then return 0 end
local alias = redis.call('GET', KEYS[5])
if alias then return { 2, alias } end
local ik, vk, fk = KEYS[2], KEYS[3], KEYS[4]
local ni, nv, nf, nm = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local i = 6
for _ = 1, ni do redis.call('ZINCRBY', ik, ARGV[i + 1], ARGV[i]); i = i + 2 end
local latest = nil
for _ = 1, nv do
  local mine = redis.call('HGET', vk, ARGV[i])
  local last = lastOf(ARGV[i + 1])
  if not mine or last > lastOf(mine) then redis.call('HSET', vk, ARGV[i], ARGV[i + 1]) end
  if not latest or last > latest then latest = last end
  i = i + 2
end
for _ = 1, nf do
  local cur = redis.call('HGET', fk, ARGV[i])
  if cur then redis.call('HSET', fk, ARGV[i], cur .. '\\n' .. ARGV[i + 1]) else redis.call('HSET', fk, ARGV[i], ARGV[i + 1]) end
  i = i + 2
end
redis.call('SADD', KEYS[6], src)
for _ = 1, nm do redis.call('SADD', KEYS[6], ARGV[i]); i = i + 1 end
if latest then prune(vk, latest); redis.call('PEXPIRE', vk, VISIT_TTL) end
trimTags(ik)
return 1
`;
}

/** KEYS: alias. ARGV: target. Sets the alias unless one exists; returns the alias in force. */
export const FREEZE_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`;

/** KEYS: interests, visits, follows, merged. A person's mergeable state, read in one step. */
export const READ_STATE_SCRIPT = `
return { redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]), redis.call('SMEMBERS', KEYS[4]) }
`;
