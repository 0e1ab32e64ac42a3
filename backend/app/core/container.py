"""The long-lived clients of one backend process, made in the lifespan and kept on app.state."""

import asyncio
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.redis_keys import RedisKeys
from app.services.broker import Broker
from app.services.events import EventLog


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    keys: RedisKeys
    events: EventLog
    broker: Broker
    # Set when the process is asked to stop: open event streams end then.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
