"""Attachments: the request carries references only (the claim check); the bytes are read from
PostgreSQL, where the backend stored them, and go to Gemini as inline data (base64 in the JSON
body). Not the Files API: a file uploaded there belongs to the project of the key that uploaded
it, and the pool gives a chat's next turn to whichever key is free.

Memory stays bounded: a reply with attachments holds a share of WORKER_ATTACHMENT_MEMORY_MB
(about five times the raw bytes, as measured: the bytes read, their base64 text, the JSON
body and its encoded copy) from before the read until its stream ends; replies past the budget wait.
"""

import asyncio
import base64
import ctypes
import ctypes.util
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from .api.failures import Blame, GeminiFailure
from .core.config import Settings
from .queue.messages import GeminiRequest

MB = 1024 * 1024
# Bytes a reply holds per raw byte sent, at its peak (see above; docs/BENCHMARKS.md).
_HELD_PER_BYTE = 5
# JSON around one inline part: {"inlineData": {"mimeType": "...", "data": "..."}}.
_PART_OVERHEAD = 100


def b64_size(size: int) -> int:
    return (size + 2) // 3 * 4


@dataclass
class Inline:
    """The attachments of one request that are sent, as ready parts, by upload id."""

    parts: dict[str, dict] = field(default_factory=dict)
    omitted: int | None = None  # None: the request had no attachments


@dataclass
class Plan:
    keep: list[str]
    raw_bytes: int
    omitted: int


def plan(request: GeminiRequest, limit_bytes: int) -> Plan:
    """Which attachments fit in one request: the newest turn's always (or the reply fails),
    then older turns' newest first; the first that no longer fits, and all older ones, stay
    out. Text counts too (as much of it as is sent)."""
    used = sum(len(t.text.encode()) for t in request.contents)
    used += len((request.system_instruction or "").encode())
    keep: list[str] = []
    raw = omitted = 0
    full = False
    for index, turn in enumerate(reversed(request.contents)):
        for ref in reversed(turn.attachments):
            cost = b64_size(ref.size) + _PART_OVERHEAD
            if index == 0:
                used += cost
                if used > limit_bytes:
                    raise GeminiFailure(
                        Blame.FATAL, "bad_request",
                        f"The attachments of this message are too large for one Gemini request "
                        f"(about {used / MB:.0f} MB with base64, at most {limit_bytes / MB:g} MB).",
                    )
            elif full or used + cost > limit_bytes:
                full = True
                omitted += 1
                continue
            else:
                used += cost
            keep.append(str(ref.id))
            raw += ref.size
    return Plan(keep, raw, omitted)


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def return_freed_memory() -> None:
    """Large blocks (the attachments' bytes, base64 text and request bodies) each in their own
    mapping, given back to the system when freed. Without it glibc raises its mmap threshold
    after the first such free and serves the next ones from the heap, which rarely shrinks:
    the worker's RSS then climbs with every attachment (measured in docs/BENCHMARKS.md,
    "Attachments"). Setting the threshold once also stops that adjustment. glibc only."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


class MemoryBudget:
    """Bytes held at once by replies with attachments; one alone may exceed it (it waits until
    it is alone), so no reply waits forever."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self.peak = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(
                lambda: self.used == 0 or self.used + amount <= self.capacity
            )
            self.used += amount
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            async with self._changed:
                self.used -= amount
                self._changed.notify_all()


_READ = """
    SELECT u.id::text, u.send_mime_type, coalesce(d.send, d.original)
    FROM uploads u JOIN upload_data d ON d.upload_id = u.id
    WHERE u.id = ANY(%s::uuid[]) AND u.chat_id = %s::uuid
"""


class AttachmentStore:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._limit = int(settings.gemini_max_request_mb * MB)
        self.budget = MemoryBudget(int(settings.worker_attachment_memory_mb * MB))
        self._pool = None
        self._opening = asyncio.Lock()

    async def _connections(self):
        # Opened at the first request with attachments: a worker of a stack without them (or
        # while PostgreSQL is down) needs no connection.
        async with self._opening:
            if self._pool is None:
                if not self._settings.postgres_dsn:
                    raise GeminiFailure(
                        Blame.FATAL, "internal_error",
                        "This worker cannot read attachments (DATABASE_URL is not set).",
                    )
                from psycopg_pool import AsyncConnectionPool

                pool = AsyncConnectionPool(
                    self._settings.postgres_dsn, min_size=0, max_size=4, open=False,
                    kwargs={"autocommit": True},
                )
                await pool.open()
                self._pool = pool
        return self._pool

    async def _read(self, chat_id: str, ids: list[str], into: Inline) -> None:
        pool = await self._connections()
        try:
            async with pool.connection(timeout=10) as conn:
                # Binary: bytea as its bytes, not as hex text twice their size.
                cursor = await conn.execute(_READ, (ids, str(chat_id)), binary=True)
                # One row at a time: each raw copy is gone once its base64 text exists.
                async for upload_id, mime, data in cursor:
                    into.parts[upload_id] = {"inlineData": {
                        "mimeType": mime, "data": base64.b64encode(data).decode("ascii"),
                    }}
                    del data
        except GeminiFailure:
            raise
        except Exception as exc:
            raise GeminiFailure(
                Blame.TRANSIENT, "attachments_unavailable",
                f"The attachments could not be read right now ({type(exc).__name__}).",
            ) from exc

    @asynccontextmanager
    async def loaded(self, request: GeminiRequest) -> AsyncIterator[Inline]:
        """The request's attachments that fit, as inline parts, while the caller runs."""
        if not any(turn.attachments for turn in request.contents):
            yield Inline()
            return
        chosen = plan(request, self._limit)
        async with self.budget.hold(chosen.raw_bytes * _HELD_PER_BYTE):
            inline = Inline(omitted=chosen.omitted)
            if chosen.keep:
                await self._read(str(request.chat_id), chosen.keep, inline)
            try:
                yield inline
            finally:
                inline.parts.clear()
                # The request body (tens of MB) is held by reference cycles of the HTTP stack's
                # request and response objects; the collector runs by object counts, not bytes,
                # and would free it replies later. Collect now, before the budget frees up.
                gc.collect()

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
