"""Async engine and session factory (psycopg 3)."""

import time

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings

# A pooled connection idle longer than this is pinged before use: a PostgreSQL restart leaves
# dead ones behind. One used a moment ago is not (pool_pre_ping pinged every checkout, 2.5
# round trips per reply, docs/BENCHMARKS.md); if the server went away in between, the
# statement's disconnect error invalidates the whole pool, as it would after a ping.
PING_AFTER_IDLE_SECONDS = 1.0


def make_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        pool_timeout=settings.DB_POOL_TIMEOUT_SECONDS,
        connect_args={"connect_timeout": 3},
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _returned(dbapi_connection, record) -> None:
        if dbapi_connection is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _check(dbapi_connection, record, proxy) -> None:
        returned = record.info.get("returned_at")  # none yet: a new connection
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)  # what pool_pre_ping sends
        except Exception as error:
            # The pool gets a new connection for this checkout, and drops every older one.
            raise exc.InvalidatePoolError() from error


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
