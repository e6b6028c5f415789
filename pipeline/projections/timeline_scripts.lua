-- The timeline read model's writes and its feed read, as Redis Lua scripts.
--
-- Why Lua: a chirp's fan-out reads the author's followers, a follow's backfill reads the
-- followee's chirps. Run from two runner processes (chirps.events and follows.events are
-- separate topics, so their partitions go to different consumers), a read-then-write
-- from Python lets a follow and a chirp of the same pair miss each other. Redis runs a
-- script atomically, so every interleaving is one of the serial orders, and each script
-- below is written to be correct after any other (the proof is the stateful test,
-- tests/integration/test_timeline_model.py).
--
-- Every script takes the key prefix of the version being written as ARGV[1] ("" when
-- live, "v<N>:" while a version is rebuilt); the keys, as readers name them:
--   tl:chirp:<id>       hash  a=author id, t=text, s=ms since epoch, v=version, d=1 deleted
--   tl:own:<user>       zset  the user's chirps, score = ms
--   tl:home:<user>      zset  the materialised home timeline (regular authors), capped
--   tl:followers:<user> set   tl:following:<user> set
--   tl:fv:<user>        hash  followee -> version of the follow pair last applied
--   tl:celebrities      set   authors whose chirps are pulled at read time, not fanned out
--   tl:profile:<user>   hash  n=username, d=display name, v=version
-- Keys are built inside the scripts: the projection is for one Redis node, not a
-- Redis Cluster (the scripts do not declare their keys).
--
-- Sections are split on "--! name" lines by pipeline/projections/timelines.py.

--! post
-- ARGV: prefix, chirp id, author, text, ms, version, cap, live (0/1), live maxlen, stream
local p, id, author = ARGV[1], ARGV[2], ARGV[3]
local ck = p .. 'tl:chirp:' .. id
if tonumber(redis.call('HGET', ck, 'v') or '0') >= tonumber(ARGV[6]) then return -1 end
redis.call('HSET', ck, 'a', author, 't', ARGV[4], 's', ARGV[5], 'v', ARGV[6])
redis.call('ZADD', p .. 'tl:own:' .. author, ARGV[5], id)
local fanned = 0
if redis.call('SISMEMBER', p .. 'tl:celebrities', author) == 0 then
  local cap = tonumber(ARGV[7])
  for _, f in ipairs(redis.call('SMEMBERS', p .. 'tl:followers:' .. author)) do
    local home = p .. 'tl:home:' .. f
    redis.call('ZADD', home, ARGV[5], id)
    redis.call('ZREMRANGEBYRANK', home, 0, -cap - 1)
    fanned = fanned + 1
  end
end
if ARGV[8] == '1' then
  redis.call('XADD', ARGV[10], 'MAXLEN', '~', ARGV[9], '*', 'chirp', id, 'author', author)
end
return fanned

--! delete
-- ARGV: prefix, chirp id, author, version
local p, id, author = ARGV[1], ARGV[2], ARGV[3]
local ck = p .. 'tl:chirp:' .. id
if tonumber(redis.call('HGET', ck, 'v') or '0') >= tonumber(ARGV[4]) then return -1 end
redis.call('HSET', ck, 'a', author, 'd', '1', 'v', ARGV[4])
redis.call('HDEL', ck, 't')
redis.call('ZREM', p .. 'tl:own:' .. author, id)
-- a celebrity's chirp may sit in homes from before the author crossed the line
local removed = 0
for _, f in ipairs(redis.call('SMEMBERS', p .. 'tl:followers:' .. author)) do
  removed = removed + redis.call('ZREM', p .. 'tl:home:' .. f, id)
end
return removed

--! follow
-- ARGV: prefix, follower, followee, version, backfill, cap, promote at (followers)
local p, follower, followee = ARGV[1], ARGV[2], ARGV[3]
local fv = p .. 'tl:fv:' .. follower
if tonumber(redis.call('HGET', fv, followee) or '0') >= tonumber(ARGV[4]) then return -1 end
redis.call('HSET', fv, followee, ARGV[4])
local followers = p .. 'tl:followers:' .. followee
redis.call('SADD', followers, follower)
redis.call('SADD', p .. 'tl:following:' .. follower, followee)
local celebrities = p .. 'tl:celebrities'
if redis.call('SISMEMBER', celebrities, followee) == 1 then return 0 end
if redis.call('SCARD', followers) >= tonumber(ARGV[7]) then
  -- from now on readers pull this author; what was fanned out stays (reads deduplicate)
  redis.call('SADD', celebrities, followee)
  return 0
end
local recent = redis.call('ZRANGE', p .. 'tl:own:' .. followee, 0, tonumber(ARGV[5]) - 1,
  'REV', 'WITHSCORES')
if #recent == 0 then return 0 end
local pairs_ = {}
for i = 1, #recent, 2 do
  pairs_[#pairs_ + 1] = recent[i + 1]
  pairs_[#pairs_ + 1] = recent[i]
end
local home = p .. 'tl:home:' .. follower
redis.call('ZADD', home, unpack(pairs_))
redis.call('ZREMRANGEBYRANK', home, 0, -tonumber(ARGV[6]) - 1)
return #recent / 2

--! unfollow
-- ARGV: prefix, follower, followee, version, backfill, cap, demote below (followers)
local p, follower, followee = ARGV[1], ARGV[2], ARGV[3]
local fv = p .. 'tl:fv:' .. follower
if tonumber(redis.call('HGET', fv, followee) or '0') >= tonumber(ARGV[4]) then return -1 end
redis.call('HSET', fv, followee, ARGV[4])
local followers = p .. 'tl:followers:' .. followee
redis.call('SREM', followers, follower)
redis.call('SREM', p .. 'tl:following:' .. follower, followee)
local cap = tonumber(ARGV[6])
local own = p .. 'tl:own:' .. followee
-- a home holds at most cap chirps, so at most the followee's newest cap
local ids = redis.call('ZRANGE', own, 0, cap - 1, 'REV')
if #ids > 0 then redis.call('ZREM', p .. 'tl:home:' .. follower, unpack(ids)) end
local celebrities = p .. 'tl:celebrities'
if redis.call('SISMEMBER', celebrities, followee) == 0 then return 0 end
if redis.call('SCARD', followers) >= tonumber(ARGV[7]) then return 0 end
-- below the lower line: a regular author again. What readers pulled must now be in the
-- homes: backfill the newest chirps into every follower's timeline, once.
redis.call('SREM', celebrities, followee)
local recent = redis.call('ZRANGE', own, 0, tonumber(ARGV[5]) - 1, 'REV', 'WITHSCORES')
if #recent == 0 then return 0 end
local pairs_ = {}
for i = 1, #recent, 2 do
  pairs_[#pairs_ + 1] = recent[i + 1]
  pairs_[#pairs_ + 1] = recent[i]
end
for _, f in ipairs(redis.call('SMEMBERS', followers)) do
  local home = p .. 'tl:home:' .. f
  redis.call('ZADD', home, unpack(pairs_))
  redis.call('ZREMRANGEBYRANK', home, 0, -cap - 1)
end
return 1

--! profile
-- ARGV: prefix, user, version, username ("" = unchanged), display name ("" = unchanged)
local k = ARGV[1] .. 'tl:profile:' .. ARGV[2]
if tonumber(redis.call('HGET', k, 'v') or '0') >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', k, 'v', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', k, 'n', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', k, 'd', ARGV[5]) end
return 1

--! feed
-- ARGV: prefix, user, limit, cursor ms ("" = from the newest), cursor chirp id
-- Returns {next ms or "", next id or "", then per item: id, author, username, display,
-- text, ms}. Newest first, ties by id descending; deduplicated; deleted chirps and
-- chirps of authors the user no longer follows left out.
--
-- A lazy k-way merge of the home timeline and the followed celebrities' own sets: each
-- source is read a few entries at a time and only when its head is taken, so a reader
-- who follows 100 celebrities costs about 100 short ZRANGEs, not 100 pages and a sort.
local p, user, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cs, cid = ARGV[4], ARGV[5]
local CHUNK = 8
local following = p .. 'tl:following:' .. user
local keys = { p .. 'tl:home:' .. user }
for _, c in ipairs(redis.call('SINTER', following, p .. 'tl:celebrities')) do
  keys[#keys + 1] = p .. 'tl:own:' .. c
end

local function before(a_s, a_id, b_s, b_id)  -- a comes first in feed order
  if a_s ~= b_s then return a_s > b_s end
  return a_id > b_id
end

-- a source: {key, ids, scores, at (next index), offset (entries read past the ties), done}
local function refill(src)
  local max = (cs == '') and '+inf' or ('(' .. cs)
  local got = redis.call('ZRANGE', src.key, max, '-inf', 'BYSCORE', 'REV', 'LIMIT',
    src.offset, CHUNK, 'WITHSCORES')
  src.ids, src.scores, src.at = {}, {}, 1
  for i = 1, #got, 2 do
    src.ids[#src.ids + 1] = got[i]
    src.scores[#src.scores + 1] = tonumber(got[i + 1])
  end
  src.offset = src.offset + #src.ids
  src.done = #got < 2 * CHUNK
end

local sources = {}
for _, key in ipairs(keys) do
  local src = { key = key, ids = {}, scores = {}, at = 1, offset = 0, done = false }
  if cs ~= '' then  -- entries at the cursor's own ms that sort after it come first
    for _, id in ipairs(redis.call('ZRANGE', key, cs, cs, 'BYSCORE', 'REV')) do
      if id < cid then
        src.ids[#src.ids + 1] = id
        src.scores[#src.scores + 1] = tonumber(cs)
      end
    end
  end
  if #src.ids == 0 then refill(src) end
  sources[#sources + 1] = src
end

local out, seen = {}, {}
while #out < 6 * limit do
  local best = nil
  for _, src in ipairs(sources) do
    if src.at > #src.ids and not src.done then refill(src) end
    if src.at <= #src.ids then
      if best == nil or before(src.scores[src.at], src.ids[src.at],
                               best.scores[best.at], best.ids[best.at]) then
        best = src
      end
    end
  end
  if best == nil then break end
  local id, score = best.ids[best.at], best.scores[best.at]
  best.at = best.at + 1
  if not seen[id] then
    seen[id] = true
    local h = redis.call('HMGET', p .. 'tl:chirp:' .. id, 'a', 't', 'd')
    if h[1] and not h[3] and redis.call('SISMEMBER', following, h[1]) == 1 then
      local who = redis.call('HMGET', p .. 'tl:profile:' .. h[1], 'n', 'd')
      out[#out + 1] = id
      out[#out + 1] = h[1]
      out[#out + 1] = who[1] or ''
      out[#out + 1] = who[2] or ''
      out[#out + 1] = h[2] or ''
      out[#out + 1] = string.format('%d', score)
    end
  end
end
local result = { '', '' }
if #out >= 6 * limit then
  result[1] = out[#out]
  result[2] = out[#out - 5]
end
for _, x in ipairs(out) do result[#result + 1] = x end
return result
