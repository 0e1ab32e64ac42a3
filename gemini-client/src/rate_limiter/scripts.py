"""The key pool's Lua scripts: each runs atomically in Redis, so replicas never overshoot a quota.

Time is Redis's own clock, so replicas on hosts whose clocks disagree still share one window.
Names are docs/CONTRACTS.md's ("Key pool v2").
"""

# KEYS: 1 throttled_until, 2 removed set, 3 line (zset ticket -> tag), 4 heartbeats (zset ticket
#   -> ms), 5 fair-queue state (hash: _v virtual time, _seq, u:<user> last tag), 6 capacity hash,
#   7 unless flag, 8 a stream to append to when a key is granted; then per key: hash, model hash,
#   window, tokens, day counter, series.
# ARGV: 1 mode ('take' or 'peek'), 2 rpm, 3 rpd (0: none), 4 tpm (0: none), 5 estimated tokens,
#   6 nonce, 7 first key index (0-based), 8 window ms, 9 epoch ms of the next Pacific midnight,
#   10 ticket, 11 user, 12 '1' to honour the unless flag, 13 key index to avoid (-1: none),
#   14 model, 15.. key ids; then the stream's max length and TTL s, and the entries appended to
#   it on a grant, each as an event type and its JSON data (the caller's first events of a call,
#   a reply's `streaming`: they cost no round trip of their own).
# Returns {key position (1-based) or 0, wait ms (-1: no usable key, -2: unless flag set),
#   position in line (1-based, 0 when granted), requests waiting, calls per minute usable keys
#   allow now}.
#
# A request takes a key only when fewer requests stand before it in line than there are free
# slots now, so requests leave in line order across every replica. The line is start-time fair
# queueing: a request's tag is max(virtual time, its user's last tag) + 1 and the virtual time is
# the tag of the last request served, so a user with 50 waiting requests takes turns with one
# who sends one, instead of going first with all 50. A line score is tag * 1e6 + arrival number,
# so arrival order decides among equal tags. A waiting request asks again at least every 2 s; one
# silent for 15 s (its worker died) leaves the line.
ACQUIRE = """
local F = 8
local n = math.floor((#KEYS - F) / 6)
local mode, ticket = ARGV[1], ARGV[10]
if ARGV[12] == '1' and redis.call('EXISTS', KEYS[7]) == 1 then
  redis.call('ZREM', KEYS[3], ticket)
  redis.call('ZREM', KEYS[4], ticket)
  return {0, -2, 0, 0, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, rpd, tpm = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local est, first, window = tonumber(ARGV[5]), tonumber(ARGV[7]), tonumber(ARGV[8])
local day_reset, avoid = tonumber(ARGV[9]), tonumber(ARGV[13])

local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - 15000)
for _, gone in ipairs(stale) do
  redis.call('ZREM', KEYS[3], gone)
  redis.call('ZREM', KEYS[4], gone)
end
local rank, tag = 0, 0
if mode == 'take' then
  local score = redis.call('ZSCORE', KEYS[3], ticket)
  if score then
    tag = math.floor(tonumber(score) / 1000000)
  else
    local v = tonumber(redis.call('HGET', KEYS[5], '_v')) or 0
    local user = 'u:' .. ARGV[11]
    tag = math.max(v, tonumber(redis.call('HGET', KEYS[5], user)) or 0) + 1
    local seq = redis.call('HINCRBY', KEYS[5], '_seq', 1) % 1000000
    redis.call('HSET', KEYS[5], user, tag)
    redis.call('ZADD', KEYS[3], tag * 1000000 + seq, ticket)
  end
  redis.call('ZADD', KEYS[4], now, ticket)
  for k = 3, 5 do redis.call('PEXPIRE', KEYS[k], 3600000) end
  rank = redis.call('ZRANK', KEYS[3], ticket)
end

local free, per_minute, usable = 0, 0, 0
local best, best_score, earliest = nil, nil, nil
for step = 0, n - 1 do
  local i = (first + step) % n
  local b = F + 6 * i
  local state = redis.call('HMGET', KEYS[b + 1], 'disabled', 'admin_disabled')
  if state[1] ~= '1' and state[2] ~= '1'
      and redis.call('SISMEMBER', KEYS[2], ARGV[15 + i]) == 0 then
    usable = usable + 1
    local cool_ms = (tonumber(redis.call('HGET', KEYS[b + 2], 'cooldown_until')) or 0) * 1000
    local w = KEYS[b + 3]
    redis.call('ZREMRANGEBYSCORE', w, '-inf', now - window)
    local free_at, cap, blocked = nil, 0, false
    if cool_ms > now then
      free_at, blocked = cool_ms, true
    else
      local used = redis.call('ZCARD', w)
      local day_used = tonumber(redis.call('GET', KEYS[b + 5])) or 0
      if rpd > 0 and day_used >= rpd then
        free_at, blocked = day_reset, true
      elseif used >= rpm then
        free_at = tonumber(redis.call('ZRANGE', w, 0, 0, 'WITHSCORES')[2]) + window
      else
        cap = rpm - used
        if rpd > 0 then cap = math.min(cap, rpd - day_used) end
        redis.call('ZREMRANGEBYSCORE', KEYS[b + 4], '-inf', now - window)
        if tpm > 0 then
          local spent = 0
          for _, m in ipairs(redis.call('ZRANGE', KEYS[b + 4], 0, -1)) do
            spent = spent + (tonumber(string.match(m, ':(%d+)$')) or 0)
          end
          if spent > 0 and spent + est > tpm then
            cap = 0
            free_at = tonumber(redis.call('ZRANGE', KEYS[b + 4], 0, 0, 'WITHSCORES')[2]) + window
          end
        end
        if cap > 0 then
          local score = used
          if i == avoid then score = score + 1000000 end
          if best == nil or score < best_score then best, best_score = i, score end
        end
      end
    end
    if not blocked then per_minute = per_minute + rpm end
    free = free + cap
    if free_at and (earliest == nil or free_at < earliest) then earliest = free_at end
  end
end

local throttled = (tonumber(redis.call('GET', KEYS[1])) or 0) * 1000
local waiting = redis.call('ZCARD', KEYS[3])
local next_free = now
if free == 0 then next_free = earliest or now end
if throttled > next_free then next_free = throttled end
redis.call('HSET', KEYS[6], 'per_minute', per_minute, 'waiting', waiting,
  'next_free_at', string.format('%.3f', next_free / 1000),
  'updated_at', string.format('%.3f', now / 1000))
redis.call('EXPIRE', KEYS[6], 60)
if mode ~= 'take' then return {0, 0, 0, waiting, per_minute} end
if usable == 0 then
  redis.call('ZREM', KEYS[3], ticket)
  redis.call('ZREM', KEYS[4], ticket)
  return {0, -1, 0, waiting - 1, 0}
end
if throttled > now then return {0, throttled - now, rank + 1, waiting, per_minute} end
if best ~= nil and rank < free then
  local b = F + 6 * best
  redis.call('ZADD', KEYS[b + 3], now, now .. '-' .. ARGV[6])
  redis.call('PEXPIRE', KEYS[b + 3], window + 1000)
  redis.call('ZADD', KEYS[b + 4], now, ARGV[6] .. ':' .. est)
  redis.call('PEXPIRE', KEYS[b + 4], window + 1000)
  redis.call('INCR', KEYS[b + 5])
  redis.call('EXPIRE', KEYS[b + 5], 172800)
  redis.call('HINCRBY', KEYS[b + 1], 'requests_total', 1)
  redis.call('HINCRBY', KEYS[b + 2], 'requests_total', 1)
  redis.call('HINCRBY', KEYS[b + 6], math.floor(now / 60000) .. ':' .. ARGV[14] .. ':calls', 1)
  redis.call('EXPIRE', KEYS[b + 6], 172800)
  redis.call('ZREM', KEYS[3], ticket)
  redis.call('ZREM', KEYS[4], ticket)
  if tag > (tonumber(redis.call('HGET', KEYS[5], '_v')) or 0) then
    redis.call('HSET', KEYS[5], '_v', tag)
  end
  local e = 15 + n
  for j = e + 2, #ARGV, 2 do
    redis.call('XADD', KEYS[8], 'MAXLEN', '~', ARGV[e], '*', 'event', ARGV[j], 'data', ARGV[j + 1])
  end
  if #ARGV > e + 1 then redis.call('EXPIRE', KEYS[8], ARGV[e + 1]) end
  return {best + 1, 0, 0, waiting - 1, per_minute}
end
local wait = 50  -- slots are free now, for the requests ahead in line
if free == 0 then wait = math.max(1, (earliest or (now + 1000)) - now) end
return {0, wait, rank + 1, waiting, per_minute}
"""

# KEYS: line, heartbeats. ARGV: ticket. A request that stops waiting leaves the line.
LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

# What a failed call tells about its key.
# KEYS: key hash, model hash, errors list, series.
# ARGV: 1 kind ('cool', 'disable', 'error'), 2 seconds (cool: from now; disable: until the probe),
#   3 reason (cool: rpm/rpd/tpm/429; disable: disabled_reason), 4 error JSON, 5 model,
#   6 series counter (rate_limited or errors), 7 '1' when the failure counts against the key.
# A running cooldown is never shortened.
RECORD = """
local t = redis.call('TIME')
local now_s = tonumber(t[1]) + tonumber(t[2]) / 1000000
local kind, seconds = ARGV[1], tonumber(ARGV[2])
if kind == 'cool' then
  local until_s = now_s + seconds
  local current = tonumber(redis.call('HGET', KEYS[2], 'cooldown_until')) or 0
  if until_s > current then
    redis.call('HSET', KEYS[2], 'cooldown_until', string.format('%.3f', until_s),
      'cooldown_reason', ARGV[3])
  end
elseif kind == 'disable' then
  redis.call('HSET', KEYS[1], 'disabled', 1, 'disabled_reason', ARGV[3],
    'disabled_at', string.format('%.3f', now_s),
    'recheck_at', string.format('%.3f', now_s + seconds))
end
local err = cjson.decode(ARGV[4])
if ARGV[7] == '1' then redis.call('HINCRBY', KEYS[1], 'failures', 1) end
redis.call('HSET', KEYS[1], 'last_error', err['message'])
redis.call('LPUSH', KEYS[3], ARGV[4])
redis.call('LTRIM', KEYS[3], 0, 49)
redis.call('HINCRBY', KEYS[4], math.floor(now_s / 60) .. ':' .. ARGV[5] .. ':' .. ARGV[6], 1)
redis.call('EXPIRE', KEYS[4], 172800)
return 1
"""

# A call that succeeded: its token estimate replaced by what Gemini counted, the failure count
# reset. KEYS: key hash, tokens. ARGV: estimate's member, counted member.
FINISH = """
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if score then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[2], score, ARGV[2])
end
if redis.call('HGET', KEYS[1], 'failures') ~= '0' then
  redis.call('HSET', KEYS[1], 'failures', 0)
end
return 1
"""

# A 429 that names no quota: when every usable key answered one within the window, Google is
# throttling the IP or project and the pool backs off as a whole.
# KEYS: recent 429s (zset key id -> ms), throttled_until, removed, then each key's hash.
# ARGV: key id of this 429, window ms, back-off seconds, then every key id (same order).
# Returns the back-off's end (epoch s) when the pool is throttled now, else 0.
THROTTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
local usable, hit = 0, 0
for i = 4, #KEYS do
  local kid = ARGV[i]
  local state = redis.call('HMGET', KEYS[i], 'disabled', 'admin_disabled')
  if state[1] ~= '1' and state[2] ~= '1' and redis.call('SISMEMBER', KEYS[3], kid) == 0 then
    usable = usable + 1
    if redis.call('ZSCORE', KEYS[1], kid) then hit = hit + 1 end
  end
end
if usable < 2 or hit < usable then return '0' end
local until_s = now / 1000 + tonumber(ARGV[3])
local current = tonumber(redis.call('GET', KEYS[2])) or 0
if until_s > current then
  redis.call('SET', KEYS[2], string.format('%.3f', until_s), 'PX',
    math.ceil(tonumber(ARGV[3]) * 1000) + 1000)
  return string.format('%.3f', until_s)
end
return string.format('%.3f', current)
"""
