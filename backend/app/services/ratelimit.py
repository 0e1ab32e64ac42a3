"""Per-user sliding one-minute window of sent messages (Redis sorted set, one Lua script)."""

import logging
import math
import uuid

from redis.exceptions import RedisError

from app.core.container import Container
from app.services.errors import RateLimited

log = logging.getLogger(__name__)

WINDOW_MS = 60_000

# Returns 0 when the use was recorded, else the milliseconds until the oldest use leaves the window.
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
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""


async def take(c: Container, user_id: uuid.UUID) -> None:
    limit = c.settings.USER_MESSAGES_PER_MINUTE
    if limit <= 0:
        return
    try:
        wait_ms = await c.redis.eval(
            _SCRIPT, 1, c.keys.ratelimit(user_id), WINDOW_MS, limit, uuid.uuid4().hex
        )
    except RedisError as error:
        # Failing open: a Redis outage must not stop people from chatting.
        log.warning("rate limit not checked, Redis unavailable: %s", error)
        return
    if wait_ms:
        retry_after = max(1, math.ceil(int(wait_ms) / 1000))
        raise RateLimited(
            f"too many messages: at most {limit} per minute; try again in {retry_after}s",
            retry_after,
        )
