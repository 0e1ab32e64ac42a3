"""The long-lived clients of one backend process, made in the lifespan and kept on app.state."""

import asyncio
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.redis_keys import RedisKeys
from app.services.admission import Admission
from app.services.broker import Broker
from app.services.event_hub import EventHub
from app.services.events import EventLog
from app.services.hashing import HashPool
from app.services.open_streams import OpenStreams
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
    hub: EventHub  # every open event stream of this process, read from Redis by one reader
    open_streams: OpenStreams
    broker: Broker
    passwords: HashPool
    # Set when the process is asked to stop: open event streams end then.
    stopping: asyncio.Event
    outbox: Outbox = field(default_factory=Outbox)
    admission: Admission = field(default_factory=Admission)
