"""Dependency checks for GET /api/health, each bounded by HEALTH_TIMEOUT_SECONDS."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text

from app.core.container import Container

log = logging.getLogger(__name__)


async def _check(name: str, probe: Callable[[], Awaitable[object]], seconds: float) -> str:
    try:
        async with asyncio.timeout(seconds):
            await probe()
        return "ok"
    except TimeoutError:
        return "unavailable: no answer in time"
    except Exception as error:
        log.info("health: %s unavailable: %r", name, error)
        return f"unavailable: {error.__class__.__name__}"


async def checks(c: Container) -> dict[str, str]:
    async def database() -> None:
        async with c.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    timeout = c.settings.HEALTH_TIMEOUT_SECONDS
    results = await asyncio.gather(
        _check("database", database, timeout),
        _check("redis", c.redis.ping, timeout),
        _check("rabbitmq", c.broker.ping, timeout),
    )
    return dict(zip(("database", "redis", "rabbitmq"), results, strict=True))
