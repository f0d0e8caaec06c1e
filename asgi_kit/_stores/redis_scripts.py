"""The Lua scripts of ``RedisSessionDatabase``.

Each runs atomically, so a session's keys and index entries change together. ARGV[1] is
always the key prefix. User ids are opaque (any length, any characters: ``:``, braces,
unicode), so every compound value puts its fixed-length part first and the user id last,
after one separator: an id key holds "<digest>:<user id>" (64 hex characters, then the
id from byte 66) and a deadlines member is "<session id>:<user id>" (36, then from 38).
Lua's string.sub counts bytes; the fixed-length parts are ASCII, so the offsets hold.

Every script is given at least one of the keys it touches in KEYS: Redis Cluster sends a
script to the node that serves the slot of its KEYS. The keys it derives (``p .. ...``)
share that slot because the prefix ``p`` holds the hash tag (the store checks it).
"""

from __future__ import annotations

LIBRARY = """
local p = ARGV[1]
local function session_key(ref) return p .. 's2:' .. string.sub(ref, 1, 64) end
local function forget(uid, sid)
  redis.call('ZREM', p .. 'u:' .. uid, sid)
  redis.call('ZREM', p .. 'deadlines', sid .. ':' .. uid)
end
local function take(sid, uid)
  local idkey = p .. 'id:' .. sid
  local ref = redis.call('GET', idkey)
  if not ref or (uid and string.sub(ref, 66) ~= uid) then return false end
  local skey = session_key(ref)
  local value = redis.call('GET', skey)
  redis.call('DEL', skey, idkey)
  forget(string.sub(ref, 66), sid)
  return value
end
-- The value to write, with the stored value's authenticated_at (if any) in it: only
-- record_authentication moves it, and a touch or rotation read the session before.
local function keep_authenticated(stored, value)
  local at = stored and string.match(stored, '"authenticated_at":"[^"]*"')
  if not at then return value end
  return (string.gsub(value, '"authenticated_at":"[^"]*"', function() return at end, 1))
end
local function save(skey, idkey, value, ref, pxat, deadline, member)
  if pxat == '' then
    redis.call('SET', skey, value)
    return redis.call('SET', idkey, ref)
  end
  redis.call('SET', skey, value, 'PXAT', pxat)
  redis.call('SET', idkey, ref, 'PXAT', pxat)
  redis.call('ZADD', p .. 'deadlines', deadline, member)
end
"""
SCRIPTS = {
    # KEYS: session, id, user. ARGV: p, value, ref, pxat, deadline, member, sid, created.
    "create": """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
save(KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[8], ARGV[7])
return 1""",
    # KEYS: session, id. ARGV: p, value, ref, pxat, deadline, member.
    "touch": """
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
save(KEYS[1], KEYS[2], keep_authenticated(stored, ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6])
return 1""",
    # KEYS: session, id, next session. ARGV: p, value, ref, pxat, deadline, member, the
    # ref and refresh digest ("" for none) read. 0: rotated since read (or gone); -1: next
    # key taken.
    "rotate": """
local stored = redis.call('GET', KEYS[1])
if redis.call('GET', KEYS[2]) ~= ARGV[7] or not stored then return 0 end
local digest = cjson.decode(stored)['refresh_digest']
if (digest == cjson.null and '' or digest) ~= ARGV[8] then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
redis.call('DEL', KEYS[1])
save(KEYS[3], KEYS[2], keep_authenticated(stored, ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6])
return 1""",
    # KEYS: id. ARGV: p, the field '"authenticated_at":"<iso>"', sid, now (microseconds).
    # Returns the new value; nothing for a session past its deadline (kept for the grace).
    "record_authentication": """
local ref = redis.call('GET', KEYS[1])
local skey = ref and session_key(ref)
local value = skey and redis.call('GET', skey)
if not value then return false end
local due = redis.call('ZSCORE', p .. 'deadlines', ARGV[3] .. ':' .. string.sub(ref, 66))
if due and tonumber(due) <= tonumber(ARGV[4]) then return false end
local new, n = string.gsub(value, '"authenticated_at":"[^"]*"', function() return ARGV[2] end, 1)
if n == 0 then new = string.sub(value, 1, -2) .. ',' .. ARGV[2] .. '}' end
redis.call('SET', skey, new, 'KEEPTTL')
return new""",
    # KEYS: id. ARGV: p.
    "get": """
local ref = redis.call('GET', KEYS[1])
return ref and redis.call('GET', session_key(ref))""",
    # KEYS: user. ARGV: p, uid. Drops the entries of sessions gone by TTL.
    "list": """
local out = {}
for _, sid in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  local ref = redis.call('GET', p .. 'id:' .. sid)
  local value = ref and redis.call('GET', session_key(ref))
  if value then out[#out + 1] = value else take(sid, ARGV[2]); forget(ARGV[2], sid) end
end
return out""",
    # KEYS: id (unused by the body: it names the slot, so RedisCluster can route the call).
    # ARGV: p, sid.
    "delete": "return take(ARGV[2], false)",
    # KEYS: user. ARGV: p, uid, ids to keep...
    "delete_for_user": """
local keep, out = {}, {}
for i = 3, #ARGV do keep[ARGV[i]] = true end
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if not keep[sid] then
    out[#out + 1] = take(sid, ARGV[2]) or nil
    forget(ARGV[2], sid)
  elseif redis.call('EXISTS', p .. 'id:' .. sid) == 0 then
    forget(ARGV[2], sid)
  end
end
return out""",
    # KEYS: deadlines. ARGV: p, now (microseconds), how many. Returns how many entries it
    # looked at, then the sessions it took; entries whose data TTL removed are only dropped.
    "pop_expired": """
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
local out = {#members}
for _, m in ipairs(members) do
  local sid, uid = string.sub(m, 1, 36), string.sub(m, 38)
  out[#out + 1] = take(sid, uid) or nil
  forget(uid, sid)
end
return out""",
    # KEYS: deadlines. ARGV: p, now (microseconds), batch size.
    "purge": """
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
for _, m in ipairs(members) do
  local sid, uid = string.sub(m, 1, 36), string.sub(m, 38)
  take(sid, uid)
  forget(uid, sid)
end
return #members""",
}
