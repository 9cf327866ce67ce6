/**
 * The only Lua left: guards. §4.1 runs in TypeScript (packages/scoring); Redis keeps each
 * person's state (state.ts) and the scorer reads it, computes, and writes it back through
 * GUARDED_WRITE, which applies the whole change — new state, interest scores, dedupe records,
 * merged ids — only while the state still carries the version the scorer read and the person has
 * not been merged away. Another writer in between (a zombie scorer after a rebalance, a merge)
 * makes the write fail whole, and the scorer reads again. Every key is one person's (one slot).
 *
 * KEYS: state, interests, seen, alias, merged, legacy visits, legacy follows.
 * ARGV: expected version ('' = no state yet), new state, dedupe window (ms), merge source ('' =
 * none), #seen, #zadd, #zrem, #merged, then seen `receivedMs member` pairs, interest
 * `score tag` pairs, tags to remove, merged ids.
 * Returns 1 (written), 0 (the version changed: read again), {2, alias} (merged into alias:
 * nothing written) or 3 (the merge source was already imported: nothing written).
 */
export const GUARDED_WRITE = `
local alias = redis.call('GET', KEYS[4])
if alias then return { 2, alias } end
local head = redis.call('GETRANGE', KEYS[1], 0, 31)
local current = string.match(head, '^([^|]*)|') or ''
if current ~= ARGV[1] then return 0 end
local source = ARGV[4]
if source ~= '' and redis.call('SISMEMBER', KEYS[5], source) == 1 then return 3 end
local nSeen, nAdd, nRem, nMerged = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local i = 9
-- bounded arguments per command (Lua's C stack)
local function batched(cmd, key, count, width)
  local from = i
  local stop = i + count * width
  while from < stop do
    local upto = math.min(from + 500 * width, stop)
    redis.call(cmd, key, unpack(ARGV, from, upto - 1))
    from = upto
  end
  i = stop
end
local latest = nil
for j = i, i + 2 * nSeen - 1, 2 do
  local r = tonumber(ARGV[j])
  if not latest or r > latest then latest = r end
end
batched('ZADD', KEYS[3], nSeen, 2)
batched('ZADD', KEYS[2], nAdd, 2)
batched('ZREM', KEYS[2], nRem, 1)
if source ~= '' then redis.call('SADD', KEYS[5], source) end
batched('SADD', KEYS[5], nMerged, 1)
redis.call('SET', KEYS[1], ARGV[2])
if current == '' then redis.call('DEL', KEYS[6], KEYS[7]) end
if latest then
  local ttl = tonumber(ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (latest - ttl))
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return 1
`;

/** KEYS: alias. ARGV: target. Sets the alias unless one exists; returns the alias in force. */
export const FREEZE_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`;

/**
 * KEYS: interests, visits, follows of a person in the layout before event time. Their state in
 * one step, read once when the scorer first meets them (state.ts legacyState); a key of the wrong
 * type fails here, tagged as a script error, so the consumer dead-letters that person's events.
 */
export const LEGACY_READ_SCRIPT = `
return { redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]) }
`;
