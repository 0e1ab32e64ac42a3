"""The request outbox: rows written with the message, published right after commit off the
request path, relayed if that did not happen.

A send answers 202 once its row is committed; a background task then appends its events and
publishes it with a confirm, and rows published meanwhile are marked together in one UPDATE.
The relay republishes only rows older than a grace period (their own publish had its chance)
and only once the database has been reachable for a while (every process has marked what it
published during an outage first). Rows are claimed with FOR UPDATE SKIP LOCKED so several
backend processes never relay the same row at the same time; a rare second publish is harmless
because the worker and the response side are idempotent by request_id."""

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.db.models import FINAL_STATUSES, Message, OutboxRequest
from app.services.broker import BrokerUnavailable

if TYPE_CHECKING:  # the container holds an Outbox
    from app.core.config import Settings
    from app.core.container import Container

log = logging.getLogger(__name__)

RELAY_BATCH = 100
KEEP_PUBLISHED = timedelta(days=1)
PRUNE_EVERY_SECONDS = 300
# The database must have answered this long before the relay republishes anything.
SETTLE_SECONDS = 3.0
SHUTDOWN_PUBLISH_SECONDS = 5.0
# Rows published within this long are marked by one UPDATE: a statement per many sends.
MARK_BATCH_SECONDS = 0.1


@dataclass(frozen=True)
class CommittedRequest:
    """An outbox row just committed, with what its publish needs."""

    row_id: int
    request_id: UUID
    body: bytes  # the row's payload as JSON
    chat_id: UUID
    events: list[tuple[str, dict[str, Any]]]  # appended to the chat's stream before publishing


class Outbox:
    """Publishes committed rows in the background and remembers which to mark published."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()
        self._published: list[int] = []
        self._marking: asyncio.Task | None = None

    def publish_later(self, c: "Container", row: CommittedRequest) -> None:
        task = asyncio.create_task(self._publish(c, row))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, c: "Container", row: CommittedRequest) -> None:
        # Events first: the worker's own events for this reply must come after them.
        await c.events.append(row.chat_id, row.events)
        try:
            await c.broker.publish(c.settings.REQUEST_QUEUE, row.body, str(row.request_id))
        except BrokerUnavailable as error:
            # Committed is accepted: the relay publishes it when the broker is back.
            log.warning("request %s left to the outbox relay: %s", row.request_id, error)
            return
        self._published.append(row.row_id)
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._mark_all(c))

    async def _mark_all(self, c: "Container") -> None:
        # A failure leaves them to the relay loop's next round.
        try:
            while self._published:
                await asyncio.sleep(MARK_BATCH_SECONDS)
                await self.mark_published(c)
        except (DBAPIError, SQLAlchemyError, OSError) as error:
            log.warning("published requests not marked yet: %s", error.__class__.__name__)

    async def mark_published(self, c: "Container") -> None:
        """One UPDATE for every row published since the last call; kept for the next call if the
        database does not answer."""
        if not self._published:
            return
        ids, self._published = self._published, []
        try:
            async with c.autocommit.connect() as conn:
                await conn.execute(
                    update(OutboxRequest)
                    .where(OutboxRequest.id.in_(ids))
                    .values(published_at=func.now())
                )
        except BaseException:
            self._published[:0] = ids
            raise

    async def drain(self, c: "Container") -> None:
        """At shutdown: let running publishes end (bounded) and mark what they published."""
        running = self._tasks | ({self._marking} if self._marking else set())
        if running:
            await asyncio.wait(running, timeout=SHUTDOWN_PUBLISH_SECONDS)
        try:
            await self.mark_published(c)
        except (DBAPIError, SQLAlchemyError, OSError) as error:
            log.warning("published requests not marked at shutdown: %s", error.__class__.__name__)


async def relay_pending(c: "Container") -> int:
    """Publish rows that their own send did not publish within the grace period; returns how
    many were published."""
    if not c.broker.connected:
        return 0
    grace = timedelta(seconds=relay_grace_seconds(c.settings))
    query = (
        select(OutboxRequest, Message.status, Message.request_id)
        .join(Message, Message.id == OutboxRequest.message_id)
        .where(OutboxRequest.published_at.is_(None), OutboxRequest.created_at < func.now() - grace)
        .order_by(OutboxRequest.id)
        .limit(RELAY_BATCH)
        .with_for_update(of=OutboxRequest, skip_locked=True)
    )
    async with c.sessionmaker() as db:
        rows = (await db.execute(query)).all()
        published = 0
        for row, status, current_request in rows:
            if status in FINAL_STATUSES or current_request != row.request_id:
                # Cancelled or superseded before it went out: nobody waits for this answer.
                row.published_at = func.now()
                continue
            try:
                body = json.dumps(row.payload, separators=(",", ":")).encode()
                await c.broker.publish(c.settings.REQUEST_QUEUE, body, str(row.request_id))
            except BrokerUnavailable as error:
                row.publish_attempts += 1
                log.warning("outbox row %s not published yet: %s", row.id, error)
                break
            row.published_at = func.now()
            published += 1
        await db.commit()
    return published


def relay_grace_seconds(settings: "Settings") -> float:
    """Long enough for a send's own publish, and its batched mark, to have happened: the mark
    may wait its turn for a pooled connection (DB_POOL_TIMEOUT_SECONDS) under load, and a row
    relayed meanwhile would reach the worker twice."""
    return (
        settings.PUBLISH_TIMEOUT_SECONDS
        + settings.DB_POOL_TIMEOUT_SECONDS
        + 2 * settings.OUTBOX_RELAY_INTERVAL_SECONDS
        + 2
    )


async def prune_published(c: "Container") -> int:
    """Published rows have done their job; keep a day of them for inspection."""
    async with c.sessionmaker() as db:
        result = await db.execute(
            delete(OutboxRequest).where(OutboxRequest.published_at < func.now() - KEEP_PUBLISHED)
        )
        await db.commit()
        return result.rowcount


async def _probe(c: "Container") -> None:
    async with c.autocommit.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def relay_forever(c: "Container") -> None:
    """Mark what the sends published; republish what they could not (RabbitMQ down, process
    killed after commit)."""
    pruned_at = 0.0
    reachable_since: float | None = None
    while True:
        try:
            if reachable_since is None:
                # First round, or the database is back: every process marks first.
                await _probe(c)
                reachable_since = time.monotonic()
            await c.outbox.mark_published(c)
            if time.monotonic() - reachable_since >= SETTLE_SECONDS:
                if time.monotonic() - pruned_at > PRUNE_EVERY_SECONDS:
                    pruned_at = time.monotonic()
                    await prune_published(c)
                published = await relay_pending(c)
                if published:
                    log.info("outbox relay published %d request(s)", published)
                if published == RELAY_BATCH:
                    continue
        except asyncio.CancelledError:
            raise
        except PoolTimeoutError:
            log.warning("outbox relay: no database connection free; next round")
        except (DBAPIError, SQLAlchemyError, OSError) as error:
            reachable_since = None
            log.warning("outbox relay: database unavailable (%s)", error.__class__.__name__)
        await asyncio.sleep(c.settings.OUTBOX_RELAY_INTERVAL_SECONDS)
