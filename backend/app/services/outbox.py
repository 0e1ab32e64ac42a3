"""The request outbox: rows written with the message, published after commit, relayed if not.

Rows are claimed with FOR UPDATE SKIP LOCKED so several backend processes never publish the
same row at the same time; a rare second publish (confirm received, commit lost) is harmless
because the worker and the response side are idempotent by request_id."""

import asyncio
import json
import logging
import time
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.container import Container
from app.db.models import FINAL_STATUSES, Message, OutboxRequest
from app.services.broker import BrokerUnavailable

log = logging.getLogger(__name__)

RELAY_BATCH = 100
KEEP_PUBLISHED = timedelta(days=1)
PRUNE_EVERY_SECONDS = 300


async def publish_pending(
    c: Container, ids: list[int] | None = None, db: AsyncSession | None = None
) -> int:
    """Publish unpublished rows (all, or those in `ids`); returns how many were published.

    A request passes its own session (its transaction committed), so one send never holds
    two pooled connections at once."""
    if not c.broker.connected:
        return 0
    if db is not None:
        return await _publish(c, db, ids)
    async with c.sessionmaker() as own:
        return await _publish(c, own, ids)


async def _publish(c: Container, db: AsyncSession, ids: list[int] | None) -> int:
    query = (
        select(OutboxRequest, Message.status, Message.request_id)
        .join(Message, Message.id == OutboxRequest.message_id)
        .where(OutboxRequest.published_at.is_(None))
        .order_by(OutboxRequest.id)
        .limit(RELAY_BATCH)
        .with_for_update(of=OutboxRequest, skip_locked=True)
        # The request's own session may hold the row already: read its current state.
        .execution_options(populate_existing=True)
    )
    if ids is not None:
        query = query.where(OutboxRequest.id.in_(ids))
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


async def prune_published(c: Container) -> int:
    """Published rows have done their job; keep a day of them for inspection."""
    async with c.sessionmaker() as db:
        result = await db.execute(
            delete(OutboxRequest).where(OutboxRequest.published_at < func.now() - KEEP_PUBLISHED)
        )
        await db.commit()
        return result.rowcount


async def relay_forever(c: Container) -> None:
    """Republish what the request path could not (RabbitMQ down, process killed after commit)."""
    pruned_at = 0.0
    while True:
        try:
            if time.monotonic() - pruned_at > PRUNE_EVERY_SECONDS:
                pruned_at = time.monotonic()
                await prune_published(c)
            published = await publish_pending(c)
            if published:
                log.info("outbox relay published %d request(s)", published)
            if published == RELAY_BATCH:
                continue
        except asyncio.CancelledError:
            raise
        except PoolTimeoutError:
            log.warning("outbox relay: no database connection free; next round")
        except (DBAPIError, SQLAlchemyError, OSError) as error:
            log.warning("outbox relay: database unavailable (%s)", error.__class__.__name__)
        await asyncio.sleep(c.settings.OUTBOX_RELAY_INTERVAL_SECONDS)
