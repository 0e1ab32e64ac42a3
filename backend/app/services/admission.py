"""Admission control at the send: refuse work the key pool cannot start within
MAX_QUEUE_WAIT_SECONDS at its current capacity, instead of letting it wait ten minutes.

Capacity is what the workers publish (`P pool:capacity:<model>`, CONTRACTS.md); the backlog is
the larger of the workers' `waiting` and the open replies of that model in PostgreSQL. Both are
read at most once a second per process (the send path is hot); sends this process accepted
since then are added, so a burst inside that second is still counted."""

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.services.errors import RateLimited

if TYPE_CHECKING:
    from app.core.container import Container

CACHE_SECONDS = 1.0
# Capacity not refreshed for this long means no worker is running: nothing is known.
STALE_SECONDS = 30.0

_OPEN_REPLIES = text(
    # Served by the partial index uq_messages_one_open_reply (the same WHERE).
    "SELECT count(*) FROM messages WHERE role = 'assistant' "
    "AND status IN ('pending', 'retrying') AND model = :model"
)


@dataclass
class _Reading:
    at: float
    per_minute: float | None  # None: no worker has published a capacity
    next_free_at: float
    backlog: int
    accepted: int = 0


@dataclass
class Admission:
    readings: dict[str, _Reading] = field(default_factory=dict)

    async def admit(self, c: "Container", conn: AsyncConnection, model: str) -> None:
        """Raise RateLimited (429 with Retry-After) when the send would wait too long."""
        now = time.time()
        reading = self.readings.get(model)
        if reading is None or now - reading.at >= CACHE_SECONDS:
            reading = await _read(c, conn, model, now)
            self.readings[model] = reading
        if reading.per_minute is None:
            return  # no worker has said anything: accept
        if reading.per_minute <= 0 and reading.next_free_at <= now:
            return  # no usable key at all: the worker fails the reply at once, saying why
        position = reading.backlog + reading.accepted + 1
        wait = max(0.0, reading.next_free_at - now)
        if reading.per_minute > 0:
            wait += position * 60.0 / reading.per_minute
        limit = c.settings.MAX_QUEUE_WAIT_SECONDS
        if wait > limit:
            retry_after = max(1, math.ceil(wait - limit))
            raise RateLimited(
                f"the key pool is saturated: {position - 1} replies of {model} are waiting and "
                f"the keys serve about {reading.per_minute:g} per minute, so this one would "
                f"start in about {math.ceil(wait)} s (more than {limit:g} s); "
                f"try again in {retry_after} s",
                retry_after,
            )
        reading.accepted += 1


async def _read(c: "Container", conn: AsyncConnection, model: str, now: float) -> _Reading:
    try:
        fields = await c.redis.hgetall(c.keys.pool_capacity(model))
    except RedisError:
        fields = {}  # failing open, as the per-user limit does
    try:
        updated = float(fields.get("updated_at") or 0)
        per_minute = float(fields.get("per_minute") or 0)
        next_free = float(fields.get("next_free_at") or 0)
        waiting = int(float(fields.get("waiting") or 0))
    except ValueError:
        updated = per_minute = next_free = 0.0
        waiting = 0
    if not fields or now - updated > STALE_SECONDS:
        return _Reading(at=now, per_minute=None, next_free_at=0.0, backlog=0)
    open_replies = (await conn.execute(_OPEN_REPLIES, {"model": model})).scalar_one()
    # The worker's `waiting` lags by up to its refresh period; the database's count does not.
    return _Reading(
        at=now, per_minute=per_minute, next_free_at=next_free, backlog=max(waiting, open_replies)
    )
