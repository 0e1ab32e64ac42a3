"""The process's shared event reader against real Redis: a chat whose stream is left and opened
again while a read is under way loses nothing."""

import asyncio
import secrets
import uuid

from redis.asyncio import Redis

from app.core.redis_keys import RedisKeys
from app.services.event_hub import EventHub
from tests.support import REDIS_URL


async def _take(sub, n: int) -> list[str]:
    got: list[str] = []
    batches = sub.batches(idle_seconds=5)
    while len(got) < n:
        batch = await asyncio.wait_for(anext(batches), 10)
        assert batch, "no entry within 5 s"
        got += [event.id for event in batch]
    return got


def test_a_stream_reopened_from_an_earlier_event_during_a_read_misses_nothing() -> None:
    async def scenario() -> None:
        keys = RedisKeys(f"hubtest:{secrets.token_hex(4)}:")
        redis = Redis.from_url(REDIS_URL, decode_responses=True)
        hub = EventHub(REDIS_URL, redis, keys, 5_000, asyncio.Event())
        chat = uuid.uuid4()
        key = keys.events(chat)
        try:
            ids = [await redis.xadd(key, {"event": "e", "data": str(i)}) for i in range(6)]
            first = await hub.subscribe(chat, ids[1], "owner")
            # The reader's read, sent from where the first stream was, returns after that tab
            # went away and another opened the chat from an earlier event.
            first.close()
            second = await hub.subscribe(chat, ids[0], "owner")
            hub._dispatch(key, ids[1], [(i, {"event": "e", "data": ""}) for i in ids[2:]])
            hub.start()
            late = await redis.xadd(key, {"event": "e", "data": "6"})
            assert await _take(second, 6) == [*ids[1:], late]
        finally:
            async with asyncio.timeout(5):  # closing never hangs on a read in flight
                await hub.close()
            await redis.delete(key)
            await redis.aclose()

    asyncio.run(scenario())
