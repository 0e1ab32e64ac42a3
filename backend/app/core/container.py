"""The long-lived clients of one backend process, made in the lifespan and kept on app.state."""

import asyncio
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.redis_keys import RedisKeys
from app.services.admission import Admission
from app.services.broker import Broker
from app.services.events import EventLog
from app.services.outbox import Outbox


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    # The same pool in autocommit mode: a statement that stands alone needs no BEGIN/COMMIT.
    autocommit: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    keys: RedisKeys
    events: EventLog
    broker: Broker
    outbox: Outbox = field(default_factory=Outbox)
    admission: Admission = field(default_factory=Admission)
    # Set when the process is asked to stop: open event streams end then.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
