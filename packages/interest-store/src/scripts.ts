/**
 * The guards' common start (GUARDED_WRITE, LEAN_WRITE): refuses a person merged away (`aliasKey` holds
 * where to), then reads the stored version (`current`, from the state's first 32 bytes); `append`: the
 * write appends a tail (`appendUnder`, the argument naming the new version, is not ''), through
 * `appendTail(version, tail)`.
 *
 * A tail under a new version of the stored one's length (store.ts writes versions of one length) is
 * appended in place: SETRANGE of the version, APPEND of the tail, then COPY to a scratch key of the
 * person (its hash tag, so one slot) and RENAME back. APPEND leaves the value in a buffer grown for more
 * (up to twice its bytes, as MEMORY USAGE shows); the copy is allocated at its size, as a SET of the whole
 * value is. The same bytes as that SET, without taking the whole state into Lua and building it again
 * there: ≈ 6 µs a call instead of ≈ 17 µs for a 3 KB state (BENCHMARKS.md "percost"). A version of
 * another length (written before versions had one length) is replaced that way: one SET of the
 * joined string.
 */
function guard(aliasKey: string, appendUnder: string): string {
  return `
local alias = redis.call('GET', ${aliasKey})
if alias then return { 2, alias } end
local append = ${appendUnder} ~= ''
local current = string.match(redis.call('GETRANGE', KEYS[1], 0, 31), '^([^|]*)|') or ''
local function appendTail(version, tail)
  if #version == #current then
    redis.call('SETRANGE', KEYS[1], 0, version)
    redis.call('APPEND', KEYS[1], tail)
    local copy = KEYS[1] .. '~'
    redis.call('COPY', KEYS[1], copy, 'REPLACE')
    redis.call('RENAME', copy, KEYS[1])
  else
    redis.call('SET', KEYS[1], version .. string.sub(redis.call('GET', KEYS[1]), #current + 1) .. tail)
  end
end`;
}

/**
 * The only Lua left: guards (and a read that skips an unchanged state). §4.1 runs in TypeScript (packages/scoring);
 * Redis keeps each
 * person's state and dedupe record in one string (state.ts) that the scorer reads, computes on,
 * and writes back through GUARDED_WRITE, which applies the whole change — new state and dedupe
 * record, interest scores, merged ids — only while the state still carries the version the
 * scorer read and the person has not been merged away. Another writer in between (a zombie
 * scorer after a rebalance, a merge) makes the write fail whole, and the scorer reads again.
 * Every key is one person's (one slot).
 *
 * KEYS: state, interests, alias, merged, and the layout before event time: visits, follows, seen.
 * ARGV: expected version ('' = no state yet), new state, merge source ('' = none), #zadd, #zrem,
 * #merged, 'legacy' or '', the new version to append under ('' = none: ARGV[2] is the whole new
 * state; else ARGV[2] is a tail, state.ts encodeTail, appended after the stored state with the
 * version replaced — the value stored at its size, see `guard`), then
 * interest `score tag` pairs, tags to remove, merged ids. The store writes no interest pairs: a
 * whole state carries the current scores (state.ts, format 0x03), and a whole write without pairs
 * removes the `:int` sorted set that versions before kept beside the state (a state written whole
 * from one without scores is the person's move to the layout without `:int`; tails are appended
 * only to a state with its scores).
 * Returns 1 (written), 0 (the version changed: read again), {2, alias} (merged into alias:
 * nothing written), 3 (the merge source was already imported: nothing written) or 4 (no state
 * yet but keys of the layout before it: read them first, LEGACY_READ_SCRIPT; nothing written).
 */

export const GUARDED_WRITE = `${guard('KEYS[3]', 'ARGV[8]')}
if current ~= ARGV[1] then return 0 end
if current == '' then
  if append then return redis.error_reply('PSTREAM_NO_STATE a tail needs a stored state') end
  if ARGV[1] == '' and redis.call('EXISTS', KEYS[2], KEYS[5], KEYS[6], KEYS[7]) > 0 and ARGV[7] ~= 'legacy' then return 4 end
  redis.call('DEL', KEYS[5], KEYS[6], KEYS[7])
end
local source = ARGV[3]
if source ~= '' and redis.call('SISMEMBER', KEYS[4], source) == 1 then return 3 end
local nAdd, nRem, nMerged = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local i = 9
-- bounded arguments per command (Lua's C stack)
local function batched(cmd, key, count, width)
  local stop = i + count * width
  local from = i
  while from < stop do
    local upto = math.min(from + 500 * width, stop)
    redis.call(cmd, key, unpack(ARGV, from, upto - 1))
    from = upto
  end
  i = stop
end
batched('ZADD', KEYS[2], nAdd, 2)
batched('ZREM', KEYS[2], nRem, 1)
if source ~= '' then redis.call('SADD', KEYS[4], source) end
batched('SADD', KEYS[4], nMerged, 1)
if append then appendTail(ARGV[8], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2])
  if nAdd == 0 and nRem == 0 then redis.call('UNLINK', KEYS[2]) end
end
return 1
`;

/**
 * GUARDED_WRITE for its common case, with 2 keys and 3 arguments instead of 7 and 7: a person's own
 * events written over a state that exists and carries its scores (format 0x03) — no merge source, no
 * merged ids, no layout before event time to read or delete (those keys are only deleted while no state
 * exists), no `:int` to remove (every write of a state with scores removed it in the same step, and a
 * writer of a state without them changes the version, so this check fails and the caller reads again).
 * The same guard: the alias, then the version; the same write (a SET of the whole value).
 * KEYS: state, alias. ARGV: expected version (never ''), new value, the new version to append under
 * ('' = none: ARGV[2] is the whole new state; else ARGV[2] is a tail, as GUARDED_WRITE's ARGV[8]).
 * Returns 1 (written), 0 (the version changed: read again) or {2, alias} (merged into alias).
 */
export const LEAN_WRITE = `${guard('KEYS[2]', 'ARGV[3]')}
if current == '' or current ~= ARGV[1] then return 0 end
if append then appendTail(ARGV[3], ARGV[2])
else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
`;

/**
 * KEYS: state. ARGV: the version of the state the caller holds. Returns 1 while that version is
 * still stored, else the stored state (or nil): a read that sends nothing when nothing changed.
 */
export const READ_IF_CHANGED = `
local head = redis.call('GETRANGE', KEYS[1], 0, 31)
if string.match(head, '^([^|]*)|') == ARGV[1] then return 1 end
return redis.call('GET', KEYS[1])
`;

/**
 * KEYS: states (any number, on one server: keys of many slots). ARGV: the version each was written under, in the
 * same order. Returns `index, version` (flat, 1-based) of each state whose version is now another, non-empty one:
 * the per-tag index's settle (store.ts) in one command for a whole call instead of a GETRANGE a person.
 */
export const VERSIONS_CHANGED = `
local out = {}
for i = 1, #KEYS do
  local v = string.match(redis.call('GETRANGE', KEYS[i], 0, 31), '^([^|]*)|') or ''
  if v ~= '' and v ~= ARGV[i] then
    out[#out + 1] = i
    out[#out + 1] = v
  end
end
return out
`;

/** KEYS: alias. ARGV: target. Sets the alias unless one exists; returns the alias in force. */
export const FREEZE_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`;

/**
 * KEYS: interests, visits, follows, seen of a person in the layout before event time. Their
 * state in one step, read when the guarded write answers 4 (state.ts legacyState); a key of the
 * wrong type fails here, tagged as a script error, so the consumer dead-letters that person's events.
 */
export const LEGACY_READ_SCRIPT = `
return { redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]),
  redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES') }
`;
