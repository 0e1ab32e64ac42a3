"""Sending, listing, cancelling and retrying messages (DESIGN.md, "Flow of one message")."""

import logging
import uuid
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.schemas import MessageOut
from app.core.container import Container
from app.core.queue_messages import GeminiRequest
from app.db.models import FINAL_STATUSES, OPEN_STATUSES, Chat, Message, OutboxRequest
from app.services import outbox, ratelimit
from app.services.chats import CANCEL_FLAG_SECONDS, DEFAULT_TITLE, get_owned
from app.services.errors import Conflict, Invalid, NotFound
from app.services.history import build_contents

log = logging.getLogger(__name__)

HISTORY_MAX_MESSAGES = 1000
AUTO_TITLE_CHARS = 60
REPLY_IN_PROGRESS = "a reply is still being generated in this chat; wait for it or cancel it"


def status_event(message: Message) -> tuple[str, dict[str, Any]]:
    return (
        "message.status",
        {
            "message_id": str(message.id),
            "status": message.status,
            "attempt": message.attempt,
            "next_attempt_at": message.next_attempt_at.isoformat()
            if message.next_attempt_at
            else None,
            "error": message.error,
        },
    )


def completed_event(message: Message) -> tuple[str, dict[str, Any]]:
    return "message.completed", {
        "message": MessageOut.model_validate(message).model_dump(mode="json")
    }


async def list_for_chat(db: AsyncSession, user_id: UUID, chat_id: UUID) -> list[Message]:
    # One round trip in the common case; only an empty answer needs the ownership check.
    query = (
        select(Message)
        .join(Chat, Chat.id == Message.chat_id)
        .where(Message.chat_id == chat_id, Chat.user_id == user_id)
        .order_by(Message.seq)
    )
    messages = list((await db.execute(query)).scalars())
    if not messages:
        await get_owned(db, user_id, chat_id)
    return messages


async def _open_reply_exists(db: AsyncSession, chat_id: UUID) -> bool:
    query = select(Message.id).where(
        Message.chat_id == chat_id,
        Message.role == "assistant",
        Message.status.in_(OPEN_STATUSES),
    )
    return (await db.execute(query.limit(1))).first() is not None


async def _history(db: AsyncSession, chat_id: UUID, before_seq: int) -> list[Message]:
    query = (
        select(Message)
        .where(Message.chat_id == chat_id, Message.seq < before_seq)
        .order_by(Message.seq.desc())
        .limit(HISTORY_MAX_MESSAGES)
    )
    return list(reversed((await db.execute(query)).scalars().all()))


def _queue_outbox(
    db: AsyncSession, c: Container, chat: Chat, reply: Message, history: list[Message]
) -> OutboxRequest:
    request = GeminiRequest(
        request_id=reply.request_id,
        chat_id=chat.id,
        message_id=reply.id,
        model=chat.model,
        system_instruction=chat.system_prompt,
        contents=build_contents(history, c.settings.HISTORY_MAX_CHARS),
    )
    row = OutboxRequest(
        request_id=reply.request_id, message_id=reply.id, payload=request.model_dump(mode="json")
    )
    db.add(row)
    return row


async def _commit_reply(db: AsyncSession) -> None:
    try:
        await db.commit()
    except IntegrityError:
        # uq_messages_one_open_reply: another request opened a reply in this chat first.
        await db.rollback()
        raise Conflict(REPLY_IN_PROGRESS) from None


async def _after_commit(
    db: AsyncSession, c: Container, chat_id: UUID, row: OutboxRequest, events: list
) -> None:
    await c.events.append(chat_id, events)
    row_id, request_id = row.id, row.request_id
    # The caller answers with objects of this session; a publish that fails on a dropped database
    # connection expires what the session holds, and reading them then would turn 202 into 500.
    db.expunge_all()
    try:
        await outbox.publish_pending(c, [row_id], db)
    except Exception as error:
        # Committed is accepted: the relay publishes it when the broker or database is back.
        log.warning("request %s left to the outbox relay: %s", request_id, error)


async def send(
    db: AsyncSession, c: Container, user_id: UUID, chat_id: UUID, content: str
) -> tuple[Message, Message]:
    if not content.strip():
        raise Invalid("content: must not be empty")
    if len(content) > c.settings.MAX_MESSAGE_CHARS:
        raise Invalid(
            f"content: {len(content)} characters, at most {c.settings.MAX_MESSAGE_CHARS} allowed"
        )
    chat = await get_owned(db, user_id, chat_id, lock=True)
    if await _open_reply_exists(db, chat_id):
        raise Conflict(REPLY_IN_PROGRESS)
    await ratelimit.take(c, user_id)

    question = Message(chat_id=chat_id, role="user", content=content, status="completed")
    db.add(question)
    await db.flush()
    reply = Message(
        chat_id=chat_id,
        role="assistant",
        content="",
        status="pending",
        attempt=0,
        model=chat.model,
        request_id=uuid.uuid4(),
    )
    db.add(reply)
    await db.flush()
    history = await _history(db, chat_id, reply.seq)
    row = _queue_outbox(db, c, chat, reply, history)
    if len(history) == 1 and chat.title == DEFAULT_TITLE:  # the chat's first message names it
        chat.title = " ".join(content.split())[:AUTO_TITLE_CHARS]
    chat.updated_at = func.now()
    await _commit_reply(db)
    await _after_commit(db, c, chat_id, row, [status_event(reply)])
    return question, reply


async def _reply_in_chat(db: AsyncSession, chat_id: UUID, message_id: UUID) -> Message:
    query = select(Message).where(Message.id == message_id, Message.chat_id == chat_id)
    message = (await db.execute(query.with_for_update())).scalar_one_or_none()
    if message is None:
        raise NotFound("message not found")
    if message.role != "assistant":
        raise Conflict("only an assistant reply can be cancelled or retried")
    return message


async def cancel(
    db: AsyncSession, c: Container, user_id: UUID, chat_id: UUID, message_id: UUID
) -> Message:
    await get_owned(db, user_id, chat_id)
    message = await _reply_in_chat(db, chat_id, message_id)
    if message.status in FINAL_STATUSES:
        raise Conflict(f"this reply is already {message.status}")
    try:
        await c.redis.set(c.keys.cancel(message.id), "1", ex=CANCEL_FLAG_SECONDS)
        streaming = await c.events.is_streaming(chat_id, message.id)
    except RedisError as error:
        log.warning("cancel flag for %s not set, Redis unavailable: %s", message.id, error)
        streaming = False
    if message.status == "pending" and streaming:
        # The worker stops between chunks and reports `cancelled` with the text so far.
        await db.commit()
        return message
    message.status = "cancelled"
    message.next_attempt_at = None
    message.completed_at = func.now()
    await db.flush()
    await db.refresh(message)  # before the commit: no extra BEGIN/ROLLBACK round trip
    await db.commit()
    await c.events.append(chat_id, [status_event(message)])
    return message


async def retry(
    db: AsyncSession, c: Container, user_id: UUID, chat_id: UUID, message_id: UUID
) -> Message:
    chat = await get_owned(db, user_id, chat_id, lock=True)
    message = await _reply_in_chat(db, chat_id, message_id)
    if message.status in OPEN_STATUSES:
        raise Conflict(REPLY_IN_PROGRESS)
    if message.status == "completed":
        last = await db.execute(select(func.max(Message.seq)).where(Message.chat_id == chat_id))
        if last.scalar_one() != message.seq:
            raise Conflict("only the last reply can be regenerated")
    if await _open_reply_exists(db, chat_id):
        raise Conflict(REPLY_IN_PROGRESS)
    await ratelimit.take(c, user_id)

    message.status = "pending"
    message.content = ""
    message.error = None
    message.attempt = 0
    message.next_attempt_at = None
    message.model = chat.model
    message.prompt_tokens = message.completion_tokens = None
    message.finish_reason = message.key_id = None
    message.latency_ms = None
    message.completed_at = None
    message.request_id = uuid.uuid4()
    row = _queue_outbox(db, c, chat, message, await _history(db, chat_id, message.seq))
    chat.updated_at = func.now()
    await _commit_reply(db)
    try:
        await c.redis.delete(c.keys.cancel(message.id))
    except RedisError as error:
        log.warning("old cancel flag of %s not cleared: %s", message.id, error)
    # The old text may be on screen: reset it before the new attempt streams.
    await _after_commit(
        db,
        c,
        chat_id,
        row,
        [("message.reset", {"message_id": str(message.id)}), status_event(message)],
    )
    return message
