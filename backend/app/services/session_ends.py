"""Ended login sessions close their open event streams at once, in every backend process.

The process that ends sessions publishes their digests on `P sessions:ended`; each process
listens and ends its streams of those sessions. A process that missed a message (Redis was
away) still ends them at its next session check (services/open_streams.py), so the channel
only makes the end prompt, never decides it."""

import asyncio
import logging
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 0.5


async def announce(c: "Container", digests: list[str]) -> None:
    try:
        await c.redis.publish(c.keys.sessions_ended, " ".join(digests))
    except RedisError as error:
        log.warning("could not announce ended sessions (streams end at the next check): %s", error)


async def listen_forever(c: "Container") -> None:
    # A connection of its own: a subscribed connection can serve nothing else.
    client = Redis.from_url(c.settings.REDIS_URL, decode_responses=True, socket_connect_timeout=2)
    try:
        while True:
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(c.keys.sessions_ended)
                    async for message in pubsub.listen():
                        ended = set(message["data"].split())
                        for sub in c.hub.subscriptions():
                            if sub.owner in ended:
                                sub.end("the login session has ended")
            except (RedisError, OSError) as error:
                log.warning("ended-session listener: Redis unavailable: %s", error)
                await asyncio.sleep(RECONNECT_SECONDS)
    finally:
        await client.aclose()
