"""Sliding windows in Redis (one sorted set each, one Lua script per check), shared by every
backend process: messages per user (counted by app.services.quotas, whose script checks the
daily quotas too), failed logins per account and per address, sign-ups per
address. A Redis outage fails open: it must not stop people from chatting or signing in."""

import logging
import math
import uuid

from redis.exceptions import RedisError

from app.core.container import Container
from app.services.errors import RateLimited

log = logging.getLogger(__name__)

MESSAGE_WINDOW_S = 60

# KEYS[1] the window, ARGV window ms, limit, member (empty: only check, record nothing).
# Returns 0 when under the limit (the use recorded if a member was given), else the
# milliseconds until the oldest use leaves the window.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
end
return 0
"""

# Records one use whatever the count (a failed login is a fact, not a request to allow).
_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
"""


async def within(
    c: Container, key: str, window_s: float, limit: int, what: str, *, use: bool = True
) -> None:
    """429 saying `what` when the window `key` holds `limit` uses; else records one (`use`)."""
    if limit <= 0:
        return
    member = uuid.uuid4().hex if use else ""
    try:
        wait_ms = int(await c.redis.eval(_SCRIPT, 1, key, int(window_s * 1000), limit, member))
    except RedisError as error:
        log.warning("rate limit not checked, Redis unavailable: %s", error)
        return
    if wait_ms:
        retry_after = max(1, math.ceil(wait_ms / 1000))
        raise RateLimited(f"{what}; try again in {retry_after}s", retry_after)


async def record(c: Container, key: str, window_s: float) -> None:
    try:
        await c.redis.eval(_RECORD, 1, key, int(window_s * 1000), uuid.uuid4().hex)
    except RedisError as error:
        log.warning("rate limit use not recorded, Redis unavailable: %s", error)


async def clear(c: Container, key: str) -> None:
    try:
        await c.redis.delete(key)
    except RedisError as error:
        log.warning("rate limit window not cleared, Redis unavailable: %s", error)
