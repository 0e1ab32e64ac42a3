"""Applying the worker's responses to PostgreSQL, idempotently by request_id.

A response whose request_id no reply carries any more (regenerated, chat deleted), or that
arrives after the reply reached a final status, or an older `retrying` than the one stored,
changes nothing. The message is acked only after the commit: while PostgreSQL is down (or its
pool is full) it stays unacknowledged and is retried. A response that can never be stored (a
value PostgreSQL refuses) or read fails its reply with the reason and is dead-lettered."""

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any
from uuid import UUID

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from pydantic import ValidationError
from sqlalchemy import and_, func, literal_column, or_, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.core.container import Container
from app.core.queue_messages import GeminiResponse
from app.db.models import FINAL_STATUSES, Message
from app.services import quotas, titles
from app.services.broker import BrokerUnavailable
from app.services.messages import completed_event, status_event
from app.services.tree import siblings_sql

log = logging.getLogger(__name__)

DB_RETRY_MAX_SECONDS = 2.0


def _error_text(response: GeminiResponse) -> str | None:
    if response.error is not None:
        return response.error.message
    if response.status == "failed":
        return "the reply could not be generated"
    return None


def _state_event(message: Message) -> tuple[str, dict[str, Any]]:
    return completed_event(message) if message.status == "completed" else status_event(message)


def _changes(response: GeminiResponse) -> dict[str, Any]:
    if response.status == "retrying":
        return {
            "status": "retrying",
            "attempt": response.attempt,
            "next_attempt_at": response.next_attempt_at,
            "error": _error_text(response),
        }
    changes: dict[str, Any] = {
        "status": response.status,
        "attempt": func.greatest(Message.attempt, response.attempt),
        "next_attempt_at": None,
        "completed_at": func.now(),
        "error": None if response.status == "completed" else _error_text(response),
        "finish_reason": response.finish_reason,
        "key_id": response.key_id,
        "latency_ms": response.latency_ms,
    }
    if response.model:
        changes["model"] = response.model[:100]  # the column's width
    if response.attachments_omitted is not None:
        changes["attachments_omitted"] = response.attachments_omitted
    if response.content is not None:
        changes["content"] = response.content
    if response.thoughts:
        changes["thoughts"] = response.thoughts
    if response.usage is not None:
        changes["prompt_tokens"] = response.usage.prompt_tokens
        changes["completion_tokens"] = response.usage.completion_tokens
    return changes


async def apply(
    c: Container, response: GeminiResponse, redelivered: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """Store the response; returns the events to append once committed (empty: no change).

    One UPDATE whose WHERE holds the staleness rules, in autocommit: a single round trip.
    A redelivered response that changes nothing still returns the event of the stored state:
    the process that applied it may have died between its commit and its event."""
    if response.kind == "title":
        return await titles.apply(c, response)
    current = Message.request_id == response.request_id
    query = update(Message).where(current, Message.status.not_in(FINAL_STATUSES))
    if response.status == "retrying":
        # An older retry, or the same one again, must not undo a later state.
        query = query.where(
            or_(
                Message.attempt < response.attempt,
                and_(Message.attempt == response.attempt, Message.status != "retrying"),
            )
        )
    # The siblings come in the same round trip: message.completed carries the whole message.
    siblings = literal_column(siblings_sql("messages")).label("sibling_ids")
    query = query.values(_changes(response)).returning(*Message.__table__.columns, siblings)
    usage = response.usage if response.status != "retrying" else None
    if usage is not None:
        # The reply's tokens go into the day's usage in the same statement.
        prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
        query = quotas.with_reply_usage(query, response.key_id, prompt, completion)
    async with c.autocommit.connect() as conn:
        message = (await conn.execute(query)).first()
        if message is None and redelivered:
            # Changed nothing now: announce the stored state once more.
            message = (
                await conn.execute(select(*Message.__table__.columns, siblings).where(current))
            ).first()
    counted_for = getattr(message, "usage_user_id", None)  # None: this changed nothing
    if usage is not None and counted_for is not None:
        await quotas.add_tokens(c, counted_for, message.usage_day, prompt + completion)
    return [_state_event(message)] if message is not None else []


class ResponseConsumer:
    def __init__(self, c: Container) -> None:
        self._c = c

    async def __call__(self, incoming: AbstractIncomingMessage) -> None:
        try:
            response = GeminiResponse.model_validate_json(incoming.body)
        except ValidationError as error:
            first = error.errors()[0]
            reason = f"unreadable response: {first['msg']} at {first['loc']}"
            log.error("%s (message_id=%s); dead-lettered", reason, incoming.message_id)
            shown = f"The answer could not be read ({first['msg']}). Try again."
            await self._park(incoming, reason, _request_id_of(incoming.body), shown)
            return
        delay = 0.25
        while True:
            try:
                events = await apply(self._c, response, incoming.redelivered)
                break
            except Exception as error:
                if not _transient(error):
                    # A value PostgreSQL refuses (U+0000, ...) is refused on every delivery.
                    summary = _summary(error)
                    reason = f"response could not be stored: {summary}"
                    log.error("response %s %s; dead-lettered", response.request_id, reason)
                    shown = f"The answer could not be saved ({summary}). Try again."
                    await self._park(incoming, reason, response.request_id, shown)
                    return
                if _channel_closed(incoming):
                    return  # the broker redelivers it to whoever consumes next
                log.warning(
                    "response %s not applied yet, %s (%s); retrying",
                    response.request_id,
                    "no database connection free"
                    if isinstance(error, PoolTimeoutError)
                    else "database unavailable",
                    error.__class__.__name__,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, DB_RETRY_MAX_SECONDS)
        if events and not await self._c.events.append(response.chat_id, events):
            # Stored but not announced (Redis away): the redelivery announces it.
            await asyncio.sleep(1)
            await _settle(incoming.nack(requeue=True))
            return
        await _settle(incoming.ack())

    async def _park(
        self,
        incoming: AbstractIncomingMessage,
        reason: str,
        request_id: UUID | None,
        shown: str,
    ) -> None:
        """Fail the reply the response was for (no reply waits forever), then dead-letter it
        with its reason."""
        if request_id is not None:
            delay = 0.25
            while True:
                try:
                    message = await mark_unusable(self._c, request_id, shown)
                    break
                except Exception as error:
                    if not _transient(error) or _channel_closed(incoming):
                        log.exception("reply of response %s not marked failed", request_id)
                        await _settle(incoming.nack(requeue=True))
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, DB_RETRY_MAX_SECONDS)
            if message is not None:
                await self._c.events.append(message.chat_id, [status_event(message)])
        try:
            await self._c.broker.dead_letter(incoming.body, reason, incoming.message_id)
        except BrokerUnavailable:
            await asyncio.sleep(1)
            await _settle(incoming.nack(requeue=True))  # parked on the next delivery
            return
        await _settle(incoming.ack())


async def mark_unusable(c: Container, request_id: UUID, error: str) -> Any:
    """The reply of a response that can never be stored becomes `failed`, saying why."""
    query = (
        update(Message)
        .where(Message.request_id == request_id, Message.status.not_in(FINAL_STATUSES))
        .values(
            status="failed",
            error=error,
            next_attempt_at=None,
            completed_at=func.now(),
        )
        .returning(*Message.__table__.columns)
    )
    async with c.autocommit.connect() as conn:
        return (await conn.execute(query)).first()


def _transient(error: BaseException) -> bool:
    """Only a lost connection or a full pool passes with time; anything else never will."""
    if isinstance(error, PoolTimeoutError | OperationalError | InterfaceError | OSError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def _summary(error: BaseException) -> str:
    """The database's own words (its first line), never the statement or its parameters."""
    orig = getattr(error, "orig", None) or error
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else 'no details'}"[:300]


def _request_id_of(body: bytes) -> UUID | None:
    """The request_id of a response that does not parse, when it still names one (Python's
    JSON reader takes what pydantic's refuses, a lone surrogate)."""
    try:
        data = json.loads(body)
        return UUID(str(data["request_id"]))
    except (ValueError, TypeError, KeyError):
        return None


def _channel_closed(incoming: AbstractIncomingMessage) -> bool:
    try:
        return incoming.channel.is_closed
    except ChannelInvalidStateError:
        return True


async def _settle(outcome: Awaitable[None]) -> None:
    """Ack/nack; if the channel died meanwhile the broker redelivers, which is harmless."""
    try:
        await outcome
    except (ChannelInvalidStateError, AMQPError) as error:
        log.warning("could not settle a response message: %r", error)
