"""The API-key pool, shared through Redis by every worker replica.

Per key (`P` = REDIS_KEY_PREFIX, id = first 8 hex of sha256(key); key text is never stored):
`P keys:index` hash id → label, `P keys:<id>` hash (disabled, cooldown_until, failures,
requests_total, last_error) and `P keys:<id>:window`, a sorted set with one member per call of the
last 60 s. A key is picked and its use recorded by one Lua script, so replicas never overshoot.

The pool records a use when it hands out the key, but Google counts the call when it arrives, a
few ms later (more under load). So a use stays in the pool's window for 60 s plus a margin
(KEYS_WINDOW_MARGIN_SECONDS): a slot the pool frees is then already free upstream too.
"""

import asyncio
import hashlib
import random
import time
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

WINDOW_MS = 60_000

# Time is Redis's own clock, so replicas on hosts whose clocks disagree still share one window.
# KEYS: hash1, window1, hash2, window2, ...[, unless flag]
# ARGV: limit, nonce, first index (0-based), window length in ms (60 s + margin).
# Returns {i, 0} with the 1-based position of the chosen key, {0, ms} when every usable key is
# busy (ms until the earliest frees up), {0, -1} when every key is disabled, or {0, -2} when the
# unless flag exists (nothing recorded).
_ACQUIRE = """
local n = math.floor(#KEYS / 2)
if #KEYS > 2 * n and redis.call('EXISTS', KEYS[#KEYS]) == 1 then return {0, -2} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local first = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local best, best_used, earliest = nil, nil, nil
for step = 0, n - 1 do
  local i = (first + step) % n
  local h, w = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local state = redis.call('HMGET', h, 'disabled', 'cooldown_until')
  if state[1] ~= '1' then
    local cool_ms = (tonumber(state[2]) or 0) * 1000
    redis.call('ZREMRANGEBYSCORE', w, '-inf', now - window)
    local free_at = nil
    if cool_ms > now then
      free_at = cool_ms
    else
      local used = redis.call('ZCARD', w)
      if used < limit then
        if best == nil or used < best_used then best, best_used = i, used end
      else
        local oldest = redis.call('ZRANGE', w, 0, 0, 'WITHSCORES')
        free_at = tonumber(oldest[2]) + window
      end
    end
    if free_at and (earliest == nil or free_at < earliest) then earliest = free_at end
  end
end
if best ~= nil then
  local h, w = KEYS[2 * best + 1], KEYS[2 * best + 2]
  redis.call('ZADD', w, now, now .. '-' .. ARGV[2])
  redis.call('PEXPIRE', w, window + 1000)
  redis.call('HINCRBY', h, 'requests_total', 1)
  return {best + 1, 0}
end
if earliest == nil then return {0, -1} end
return {0, math.max(1, math.ceil(earliest - now))}
"""

# KEYS: hash. ARGV: seconds, last_error. Never shortens a running cooldown.
_COOL = """
local t = redis.call('TIME')
local until_s = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'cooldown_until')) or 0
if until_s > current then
  redis.call('HSET', KEYS[1], 'cooldown_until', string.format('%.3f', until_s))
end
redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[2])
return 1
"""


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def key_label(key: str) -> str:
    return "…" + key[-4:] if len(key) >= 12 else "…"


class AllKeysDisabled(Exception):
    """Every configured key is disabled: no call can succeed until the keys are changed."""


class FlagSet(Exception):
    """The `unless` key of an acquire exists: the caller no longer wants a key."""


@dataclass(frozen=True)
class Lease:
    key_id: str
    waited_s: float


class KeyPool:
    def __init__(
        self, redis: Redis, prefix: str, keys: list[str], max_per_minute: int,
        window_margin_s: float,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self.keys = {key_id(k): k for k in keys}
        self._labels = {key_id(k): key_label(k) for k in keys}
        self._ids = list(self.keys)
        self._max_per_minute = max_per_minute
        self._window_ms = WINDOW_MS + round(window_margin_s * 1000)
        self._acquire = redis.register_script(_ACQUIRE)
        self._cool = redis.register_script(_COOL)

    def _hash(self, kid: str) -> str:
        return f"{self._prefix}keys:{kid}"

    def _window(self, kid: str) -> str:
        return f"{self._prefix}keys:{kid}:window"

    async def register(self) -> None:
        """Publishes the configured keys; a key's state (disabled, cooldown) survives restarts."""
        index = f"{self._prefix}keys:index"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(index)
            pipe.hset(index, mapping=self._labels)
            for kid in self._ids:
                for name, default in (
                    ("disabled", 0), ("cooldown_until", 0), ("failures", 0),
                    ("requests_total", 0), ("last_error", ""),
                ):
                    pipe.hsetnx(self._hash(kid), name, default)
            await pipe.execute()

    async def try_acquire(self, unless: str | None = None) -> tuple[str | None, int]:
        """(key id, 0) with the use recorded, or (None, ms until one frees up). Raises FlagSet,
        recording nothing, when the Redis key `unless` exists: checking a flag (a cancel) in
        the same script saves a round trip per request."""
        keys = [name for kid in self._ids for name in (self._hash(kid), self._window(kid))]
        if unless is not None:
            keys.append(unless)
        position, wait_ms = await self._acquire(
            keys=keys,
            args=[
                self._max_per_minute, uuid.uuid4().hex[:12], random.randrange(len(self._ids)),
                self._window_ms,
            ],
        )
        if position:
            return self._ids[position - 1], 0
        if wait_ms == -2:
            raise FlagSet
        if wait_ms < 0:
            raise AllKeysDisabled
        return None, int(wait_ms)

    async def acquire(self, max_wait_s: float, unless: str | None = None) -> Lease | None:
        """A key to call with now, waiting up to `max_wait_s` for one; None if none frees up.
        Raises FlagSet once the Redis key `unless` exists (see try_acquire)."""
        start = time.monotonic()
        deadline = start + max_wait_s
        while True:
            kid, wait_ms = await self.try_acquire(unless)
            if kid is not None:
                return Lease(kid, time.monotonic() - start)
            wait_s = wait_ms / 1000
            if time.monotonic() + wait_s > deadline:
                return None
            # A little jitter so replicas waiting for the same slot do not all wake at once.
            await asyncio.sleep(wait_s + random.uniform(0.005, 0.05))

    async def cool_down(self, kid: str, seconds: float, reason: str) -> None:
        await self._cool(keys=[self._hash(kid)], args=[f"{seconds:.3f}", reason])

    async def disable(self, kid: str, reason: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._hash(kid), mapping={"disabled": 1, "last_error": reason})
            pipe.hincrby(self._hash(kid), "failures", 1)
            await pipe.execute()
