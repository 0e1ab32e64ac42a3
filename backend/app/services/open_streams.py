"""The per-user cap on open event streams, and the login session of each open stream checked
again while it stays open.

Each open stream holds a slot in `P streams:<user_id>` (a sorted set scored by expiry, Redis
clock), shared by every backend process; the process that holds it renews it at every check,
so the slots of a process that died free themselves within SLOT_TTL_CHECKS checks."""

import asyncio
import logging
import uuid
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.redis_keys import RedisKeys
from app.db.models import LoginSession
from app.services.errors import RateLimited
from app.services.event_hub import EventHub

log = logging.getLogger(__name__)

SLOT_TTL_CHECKS = 3
CAP_RETRY_AFTER_SECONDS = 10

# KEYS[1] the user's slots; ARGV cap, ttl seconds, slot. 1 if taken, 0 if the user is at the cap.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""
# KEYS[1] the user's slots; ARGV ttl seconds, then the slots to renew.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])))
return 1
"""


class OpenStreams:
    def __init__(
        self, redis: Redis, keys: RedisKeys, cap: int, check_seconds: float, hub: EventHub
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._cap = cap
        self._check_seconds = check_seconds
        self._ttl = check_seconds * SLOT_TTL_CHECKS
        self._hub = hub
        self._take = redis.register_script(_TAKE)
        self._renew = redis.register_script(_RENEW)
        self._slots: dict[str, UUID] = {}  # this process's slots and their users

    async def take(self, user_id: UUID) -> str:
        """A slot for one more open stream of this user; 429 at the cap."""
        slot = uuid.uuid4().hex
        taken = await self._take(
            keys=[self._keys.open_streams(user_id)], args=[self._cap, self._ttl, slot]
        )
        if not taken:
            raise RateLimited(
                f"too many open event streams for this account (at most {self._cap}); "
                "close other tabs or try again shortly",
                CAP_RETRY_AFTER_SECONDS,
            )
        self._slots[slot] = user_id
        return slot

    async def give_back(self, slot: str) -> None:
        user_id = self._slots.pop(slot, None)
        if user_id is None:
            return
        try:
            await self._redis.zrem(self._keys.open_streams(user_id), slot)
        except RedisError as error:
            log.warning("could not free an event stream slot (it expires): %s", error)

    async def check_forever(self, engine: AsyncEngine) -> None:
        while True:
            await asyncio.sleep(self._check_seconds)
            await self._renew_slots()
            await self._end_revoked(engine)

    async def _renew_slots(self) -> None:
        by_user: dict[UUID, list[str]] = {}
        for slot, user_id in self._slots.items():
            by_user.setdefault(user_id, []).append(slot)
        if not by_user:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id, slots in by_user.items():
                    await self._renew(
                        keys=[self._keys.open_streams(user_id)],
                        args=[self._ttl, *slots],
                        client=pipe,
                    )
                await pipe.execute()
        except RedisError as error:
            log.warning("could not renew the event stream slots: %s", error)

    async def _end_revoked(self, engine: AsyncEngine) -> None:
        """One query for every open stream of this process; a stream whose login session is
        gone (logged out, expired) ends, and its reconnect answers 401."""
        subscriptions = self._hub.subscriptions()
        digests = {sub.owner for sub in subscriptions}
        if not digests:
            return
        query = select(LoginSession.token_hash).where(
            LoginSession.token_hash.in_(digests), LoginSession.expires_at > func.now()
        )
        try:
            async with engine.connect() as conn:
                alive = set((await conn.execute(query)).scalars())
        except SQLAlchemyError as error:
            # The database being away is no reason to cut streams: checked again next time.
            log.warning(
                "could not recheck the sessions of open streams: %s", error.__class__.__name__
            )
            return
        for sub in subscriptions:
            if sub.owner not in alive:
                sub.end("the login session has ended")
