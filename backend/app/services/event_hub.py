"""One Redis reader per backend process for every open event stream.

A single `XREAD BLOCK` covers the streams of all chats that have a subscriber; what it reads is
handed to each subscriber of that chat. When a chat joins, the blocked read is cut short with
`CLIENT UNBLOCK` and re-armed with the new set, so a new stream is live at once. Open streams
thus cost no Redis connection each (redis-py's pool of 100 ran out at ~100 open tabs)."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from uuid import UUID

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.core.redis_keys import RedisKeys
from app.services.events import Event

log = logging.getLogger(__name__)

READ_COUNT = 200  # entries per chat per read
QUEUE_LIMIT = 10_000  # a subscriber this far behind is ended; it resumes with Last-Event-ID
RECONNECT_SECONDS = 0.5


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Subscription:
    def __init__(self, hub: "EventHub", key: str, after: str, owner: str) -> None:
        self.key = key
        self.owner = owner  # the login session's digest, rechecked while the stream is open
        self._hub = hub
        self._after = _order(after)
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._backlog: list[Event] = []
        self._ended: str | None = None

    def _deliver(self, event: Event) -> None:
        if self._ended is not None or _order(event.id) <= self._after:
            return
        if self._queue.qsize() >= QUEUE_LIMIT:
            self.end("the client reads too slowly")
            return
        self._after = _order(event.id)
        self._queue.put_nowait(event)

    def end(self, reason: str) -> None:
        if self._ended is None:
            self._ended = reason
            self._queue.put_nowait(None)

    async def batches(self, idle_seconds: float) -> AsyncIterator[list[Event]]:
        """The catch-up entries, then live ones, as many at a time as are waiting (so a burst
        of deltas leaves in one write); an empty batch after `idle_seconds` without any.
        Ends when the hub ends the subscription."""
        if self._backlog:
            yield self._backlog
        self._backlog = []
        queue = self._queue
        while True:
            try:
                async with asyncio.timeout(idle_seconds):
                    event = await queue.get()
            except TimeoutError:
                yield []
                continue
            batch = []
            while event is not None:
                batch.append(event)
                if queue.empty():
                    break
                event = queue.get_nowait()
            if batch:
                yield batch
            if event is None:
                log.debug("event stream of %s ended: %s", self.key, self._ended)
                return

    def close(self) -> None:
        self.end("closed")
        self._hub._unsubscribe(self)


class EventHub:
    def __init__(
        self, redis_url: str, redis: Redis, keys: RedisKeys, block_ms: int, stopping: asyncio.Event
    ) -> None:
        # One connection of its own, never retried behind our back: after any error the loop
        # asks the new connection's id, which CLIENT UNBLOCK needs.
        self._reader = Redis.from_url(
            redis_url,
            decode_responses=True,
            single_connection_client=True,
            socket_connect_timeout=2.0,
            socket_timeout=block_ms / 1000 + 2,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = redis  # the shared pool: catch-up reads and CLIENT UNBLOCK
        self._keys = keys
        self._block_ms = block_ms
        self._stopping = stopping
        self._subscribers: dict[str, set[Subscription]] = {}
        self._cursors: dict[str, str] = {}  # per chat stream: the last entry read
        self._changed = asyncio.Event()  # a chat joined after the current read was sent
        self._in_read = asyncio.Event()
        self._read_done = asyncio.Event()  # a new one for each read, set when it returns
        self._reads = 0  # number of the read under way
        self._client_id: int | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._read_forever(), name="event-hub-read"),
            asyncio.create_task(self._wake_forever(), name="event-hub-wake"),
            asyncio.create_task(self._end_on_stop(), name="event-hub-stop"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            # A cancel that lands as a reply arrives can be lost inside redis-py, which then
            # blocks in the next XREAD (seen with redis 8.1): cancel until the task has ended.
            while not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.end_all("the server is stopping")
        await self._reader.aclose()

    def subscriptions(self) -> list[Subscription]:
        return [sub for subs in self._subscribers.values() for sub in subs]

    def end_all(self, reason: str) -> None:
        for sub in self.subscriptions():
            sub.end(reason)

    async def subscribe(self, chat_id: UUID, after: str, owner: str) -> Subscription:
        """Entries of the chat after entry `after`, catch-up included; RedisError if Redis
        cannot give the catch-up."""
        key = self._keys.events(chat_id)
        sub = Subscription(self, key, after, owner)
        if self._stopping.is_set():
            sub.end("the server is stopping")
            return sub
        watched = self._cursors.get(key)
        self._subscribers.setdefault(key, set()).add(sub)
        if watched is None:
            self._cursors[key] = after
            self._changed.set()
        elif _order(watched) > _order(after):
            # The shared read is past `after` already: what lies between is read here, and
            # the shared read's entries count from where it is.
            sub._after = _order(watched)
            try:
                entries = await self._redis.xrange(key, min=f"({after}", max=watched)
            except RedisError:
                self._unsubscribe(sub)
                raise
            sub._backlog = [
                Event(entry_id, fields.get("event", ""), fields.get("data", ""))
                for entry_id, fields in entries
            ]
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.key)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            # Still in the read under way, which is harmless; left out of the next one.
            del self._subscribers[sub.key]
            del self._cursors[sub.key]

    async def _end_on_stop(self) -> None:
        await self._stopping.wait()
        self.end_all("the server is stopping")

    async def _read_forever(self) -> None:
        while True:
            if not self._subscribers:
                await self._changed.wait()
            try:
                if self._client_id is None:
                    self._client_id = await self._reader.client_id()
                self._changed.clear()
                streams = dict(self._cursors)
                self._reads += 1
                done = self._read_done = asyncio.Event()
                self._in_read.set()
                try:
                    reply = await self._reader.xread(
                        streams, block=self._block_ms, count=READ_COUNT
                    )
                finally:
                    self._in_read.clear()
                    done.set()
            except RedisError as error:
                # Open streams end, so browsers reconnect (503 until Redis is back).
                log.warning("event reader: Redis unavailable: %s", error.__class__.__name__)
                self._client_id = None
                self.end_all("Redis is unavailable")
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            for key, entries in reply or ():
                self._dispatch(key, streams.get(key), entries)

    def _dispatch(
        self, key: str, read_from: str | None, entries: list[tuple[str, dict[str, str]]]
    ) -> None:
        subs = self._subscribers.get(key)
        if not subs or not entries:
            return
        if self._cursors.get(key) != read_from:
            # The chat's last subscriber left during the read and a new one joined from an
            # earlier entry: these entries start past what it still needs, so the next read
            # (from its entry) brings them all.
            return
        self._cursors[key] = entries[-1][0]
        for entry_id, fields in entries:
            event = Event(entry_id, fields.get("event", ""), fields.get("data", ""))
            for sub in tuple(subs):
                sub._deliver(event)

    async def _wake_forever(self) -> None:
        """Cut a blocked read short when a chat joined after it was sent; the reader then
        re-arms with every chat (clearing `_changed` before it takes the set)."""
        while True:
            await self._changed.wait()
            await self._in_read.wait()
            if not self._changed.is_set():
                continue  # the read under way already has the new chat
            read, done = self._reads, self._read_done
            try:
                while self._reads == read and self._in_read.is_set() and self._client_id:
                    if await self._redis.client_unblock(self._client_id):
                        break
                    # The read has not reached Redis yet: again in a moment.
                    await asyncio.sleep(0.001)
            except RedisError as error:
                log.warning("event reader: could not wake it: %s", error.__class__.__name__)
                await asyncio.sleep(RECONNECT_SECONDS)
            await done.wait()
