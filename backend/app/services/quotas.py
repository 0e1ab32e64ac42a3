"""Per-user daily quotas: messages and tokens (prompt + reply, from Gemini's usageMetadata) per
UTC day, beside the per-minute window (docs/CONTRACTS.md, "Quotas and usage").

Limits: USER_MESSAGES_PER_DAY / USER_TOKENS_PER_DAY, or the user's own override
(users.messages_per_day / users.tokens_per_day, set by an admin): NULL takes the setting, and 0,
in either place, means no limit. Days are UTC; a spent quota answers 429 with Retry-After until
the next 00:00 UTC.

The counts are kept twice. PostgreSQL's `usage_daily` is the durable ledger: a question is
counted by the send's own INSERT statement, the reply's tokens by the statement that stores the
reply, so neither adds a round trip. Redis's `P quota:<user_id>:<day>` hash decides a send: one
script checks both daily counts and the per-minute window and counts the send, atomically, so
concurrent sends on any number of backend processes never pass a limit. When that hash is
missing (first send of the day under a limit, or Redis lost its data) the send reads the day's
count from `usage_daily` and the script seeds the hash with it, only if no one else did first.
A Redis outage fails open, as the per-minute limit always has."""

import functools
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, literal, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import get_settings
from app.core.container import Container
from app.db.models import Chat, UsageDaily
from app.services.errors import Invalid, RateLimited
from app.services.ratelimit import MESSAGE_WINDOW_S

log = logging.getLogger(__name__)

# The day hash outlives its day by an hour: a send just before midnight still finds it.
DAY_KEY_GRACE_SECONDS = 3600
# Column widths of users.messages_per_day (integer) and users.tokens_per_day (bigint).
MAX_MESSAGES_PER_DAY = 2**31 - 1
MAX_TOKENS_PER_DAY = 2**63 - 1

# KEYS[1] the per-minute window (sorted set), KEYS[2] the user's day (hash messages, tokens).
# ARGV: [1] window ms, [2] per-minute limit, [3] member, [4] messages per day, [5] tokens per
# day (limits: 0 = none), [6] day hash TTL s, [7] messages and [8] tokens so far by PostgreSQL
# ('' when not read). Returns {0, 0} counted; {-1, 0} the day hash is missing, read PostgreSQL
# and call again; {1, ms} per-minute window full; {2, used} messages spent; {3, used} tokens.
_TAKE = """
local daily = tonumber(ARGV[4]) > 0 or tonumber(ARGV[5]) > 0
local have = redis.call('EXISTS', KEYS[2]) == 1
if daily and not have then
  if ARGV[7] == '' then return {-1, 0} end
  redis.call('HSET', KEYS[2], 'messages', ARGV[7], 'tokens', ARGV[8])
  redis.call('EXPIRE', KEYS[2], ARGV[6])
  have = true
end
if have then
  local used = redis.call('HMGET', KEYS[2], 'messages', 'tokens')
  local messages = tonumber(used[1]) or 0
  local tokens = tonumber(used[2]) or 0
  if tonumber(ARGV[4]) > 0 and messages >= tonumber(ARGV[4]) then return {2, messages} end
  if tonumber(ARGV[5]) > 0 and tokens >= tonumber(ARGV[5]) then return {3, tokens} end
end
local limit = tonumber(ARGV[2])
if limit > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local window = tonumber(ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  if redis.call('ZCARD', KEYS[1]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {1, math.max(1, tonumber(oldest[2]) + window - now)}
  end
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
end
if have then redis.call('HINCRBY', KEYS[2], 'messages', 1) end
return {0, 0}
"""

# Adds to a day hash only if it exists: a missing one is seeded from PostgreSQL, which already
# holds what is added here. KEYS[1] the hash, ARGV[1] the field, ARGV[2] the amount.
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
end
return 0
"""


@functools.cache
def _scripts(redis: Redis) -> tuple[Any, Any]:
    # EVALSHA, loaded once per Redis client (redis-py sends EVAL after a NOSCRIPT).
    return redis.register_script(_TAKE), redis.register_script(_ADD)


def today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(UTC).date()


def next_reset(now: datetime | None = None) -> datetime:
    """The next 00:00 UTC, when every daily count starts again."""
    day = today(now)
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)


def seconds_to_reset(now: datetime | None = None) -> int:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return max(1, math.ceil((next_reset(now) - now).total_seconds()))


def _effective(override: int | None, default: int) -> int | None:
    value = default if override is None else override
    return value if value > 0 else None


def effective_limits(messages_override: int | None, tokens_override: int | None) -> dict:
    settings = get_settings()
    return {
        "messages_per_day": _effective(messages_override, settings.USER_MESSAGES_PER_DAY),
        "tokens_per_day": _effective(tokens_override, settings.USER_TOKENS_PER_DAY),
    }


def limits_of(user: Any) -> dict[str, int | None]:
    """The daily limits that apply to `user` (a users row): None means no limit."""
    return effective_limits(user.messages_per_day, user.tokens_per_day)


def overrides_of(user: Any) -> dict[str, int | None]:
    """The user's own overrides as stored: None takes the setting, 0 is no limit."""
    return {"messages_per_day": user.messages_per_day, "tokens_per_day": user.tokens_per_day}


async def set_limits(session: AsyncSession, user: Any, limits: dict) -> None:
    """Change the overrides named in `limits` (the caller commits): an integer ≥ 0 is the
    user's limit (0: no limit), None gives the user the setting's default again. A send reads
    the user's limits in its own first statement, so the change holds from the next send."""
    bounds = {"messages_per_day": MAX_MESSAGES_PER_DAY, "tokens_per_day": MAX_TOKENS_PER_DAY}
    unknown = set(limits) - set(bounds)
    if unknown:
        raise Invalid(f"limits: unknown field(s) {', '.join(sorted(unknown))}")
    for name, value in limits.items():
        valid = value is None or (
            isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= bounds[name]
        )
        if not valid:
            raise Invalid(f"limits.{name}: must be null (the default) or an integer from 0")
    for name, value in limits.items():
        setattr(user, name, value)
    await session.flush()


async def usage_today(
    session: AsyncSession | AsyncConnection, user_ids: Any
) -> dict[uuid.UUID, dict[str, int]]:
    """Each user's messages and tokens (prompt + reply) of the current UTC day."""
    ids = list(user_ids)
    found = {user_id: {"messages": 0, "tokens": 0} for user_id in ids}
    if not ids:
        return found
    query = (
        select(
            UsageDaily.user_id,
            func.sum(UsageDaily.messages),
            func.sum(UsageDaily.prompt_tokens + UsageDaily.completion_tokens),
        )
        .where(UsageDaily.day == today(), UsageDaily.user_id.in_(ids))
        .group_by(UsageDaily.user_id)
    )
    for user_id, messages, tokens in (await session.execute(query)).all():
        found[user_id] = {"messages": int(messages), "tokens": int(tokens)}
    return found


def _day_key(c: Container, user_id: uuid.UUID, day: date) -> str:
    return c.keys.quota(user_id, day.isoformat())


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{max(1, math.ceil(rest / 60))} min"


@dataclass(frozen=True)
class Taken:
    """A send counted in Redis: given back if its write then fails."""

    key: str | None


async def take(
    c: Container,
    conn: AsyncConnection | AsyncSession,
    user_id: uuid.UUID,
    messages_override: int | None,
    tokens_override: int | None,
) -> Taken:
    """Count one message of `user_id`, or raise RateLimited (429) past a daily limit or the
    per-minute one. One EVALSHA; the first send of a day under a limit (and any after Redis
    lost the day's count) also reads `usage_daily` once and runs the script again."""
    limits = effective_limits(messages_override, tokens_override)
    per_minute = c.settings.USER_MESSAGES_PER_MINUTE
    messages_limit = limits["messages_per_day"] or 0
    tokens_limit = limits["tokens_per_day"] or 0
    if not (per_minute or messages_limit or tokens_limit):
        return Taken(None)
    now = datetime.now(UTC)
    day = today(now)
    key = _day_key(c, user_id, day)
    script, _ = _scripts(c.redis)
    ttl = seconds_to_reset(now) + DAY_KEY_GRACE_SECONDS
    args: list[Any] = [
        MESSAGE_WINDOW_S * 1000,
        per_minute,
        uuid.uuid4().hex,
        messages_limit,
        tokens_limit,
        ttl,
        "",
        "",
    ]
    keys = [c.keys.ratelimit(user_id), key]
    try:
        code, value = await script(keys=keys, args=args)
        if code == -1:
            used = (await usage_today(conn, [user_id]))[user_id]
            args[6:8] = [used["messages"], used["tokens"]]
            code, value = await script(keys=keys, args=args)
    except RedisError as error:
        log.warning("quota not checked, Redis unavailable: %s", error)
        return Taken(None)
    code, value = int(code), int(value)
    if code == 0:
        return Taken(key)
    if code == 1:
        retry_after = max(1, math.ceil(value / 1000))
        raise RateLimited(
            f"too many messages: at most {per_minute} per minute; try again in {retry_after}s",
            retry_after,
        )
    reset = seconds_to_reset()
    if code == 2:
        what = f"daily message limit reached: {value} of {messages_limit} messages used today"
    else:
        what = f"daily token limit reached: {value} of {tokens_limit} tokens used today"
    raise RateLimited(
        f"{what}; it resets at 00:00 UTC, in {_duration(reset)}; try again in {reset}s", reset
    )


async def give_back(c: Container, taken: Taken) -> None:
    """The send was counted but not stored (409, chat deleted): uncount it."""
    if taken.key is None:
        return
    _, add = _scripts(c.redis)
    try:
        await add(keys=[taken.key], args=["messages", -1])
    except RedisError as error:
        log.warning("quota use not given back, Redis unavailable: %s", error)


async def add_tokens(c: Container, user_id: uuid.UUID, day: date, tokens: int) -> None:
    """A completed reply's tokens into the Redis day count (PostgreSQL has them already)."""
    if tokens <= 0:
        return
    _, add = _scripts(c.redis)
    try:
        await add(keys=[_day_key(c, user_id, day)], args=["tokens", tokens])
    except RedisError as error:
        log.warning("reply tokens not counted in Redis, Redis unavailable: %s", error)


_COUNT_MESSAGE_SQL = """
    INSERT INTO usage_daily AS u
        (day, user_id, model, key_id, messages, replies, prompt_tokens, completion_tokens)
    VALUES (:usage_day, :user_id, :model, '', 1, 0, 0, 0)
    ON CONFLICT (day, user_id, model, key_id) DO UPDATE SET messages = u.messages + 1
"""
# The send's own INSERT statement counts the question with this CTE (no extra round trip).
COUNT_MESSAGE_CTE = f"counted AS ({_COUNT_MESSAGE_SQL})"
_COUNT_MESSAGE = text(_COUNT_MESSAGE_SQL)


async def count_message(db: AsyncSession, user_id: uuid.UUID, model: str) -> None:
    """A retry or regenerate is a message too: counted in the caller's transaction."""
    await db.execute(_COUNT_MESSAGE, {"usage_day": today(), "user_id": user_id, "model": model})


def with_reply_usage(update_returning: Any, key_id: str | None, prompt: int, completion: int):
    """The reply's UPDATE … RETURNING, extended to add its tokens to `usage_daily` in the same
    statement. Rows carry the message's columns plus `usage_user_id` and `usage_day` (None
    when the UPDATE changed nothing, so a redelivered response counts nothing twice)."""
    day = today()
    updated = update_returning.cte("updated")
    source = select(
        literal(day),
        Chat.user_id,
        updated.c.model,
        literal((key_id or "")[:16]),
        literal(0),
        literal(1),
        literal(prompt),
        literal(completion),
    ).join_from(updated, Chat, Chat.id == updated.c.chat_id)
    columns = [
        "day",
        "user_id",
        "model",
        "key_id",
        "messages",
        "replies",
        "prompt_tokens",
        "completion_tokens",
    ]
    upsert = insert(UsageDaily).from_select(columns, source)
    upsert = upsert.on_conflict_do_update(
        index_elements=["day", "user_id", "model", "key_id"],
        set_={
            "replies": UsageDaily.replies + upsert.excluded.replies,
            "prompt_tokens": UsageDaily.prompt_tokens + upsert.excluded.prompt_tokens,
            "completion_tokens": UsageDaily.completion_tokens + upsert.excluded.completion_tokens,
        },
    ).returning(UsageDaily.user_id, UsageDaily.day)
    counted = upsert.cte("counted")
    return select(
        updated, counted.c.user_id.label("usage_user_id"), counted.c.day.label("usage_day")
    ).outerjoin_from(updated, counted, literal(True))
