"""Sending, listing, cancelling and retrying messages (DESIGN.md, "Flow of one message")."""

import logging
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.schemas import MessageOut
from app.core.container import Container
from app.core.queue_messages import GeminiRequest
from app.db.models import FINAL_STATUSES, OPEN_STATUSES, Chat, Message, OutboxRequest
from app.services import generation, ratelimit, titles
from app.services.chats import CANCEL_FLAG_SECONDS, DEFAULT_TITLE, get_owned, model_in_use
from app.services.errors import Conflict, Invalid, NotFound
from app.services.history import build_contents
from app.services.outbox import CommittedRequest

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


async def _history(c: Container, db: AsyncSession, chat_id: UUID, before_seq: int) -> list[Any]:
    params = {
        "chat_id": chat_id,
        "before": before_seq,
        "budget": c.settings.HISTORY_MAX_CHARS,
        "limit": HISTORY_MAX_MESSAGES,
    }
    return list((await db.execute(_HISTORY_BEFORE, params)).all())


async def _commit_reply(db: AsyncSession) -> None:
    try:
        await db.commit()
    except IntegrityError:
        # uq_messages_one_open_reply: another request opened a reply in this chat first.
        await db.rollback()
        raise Conflict(REPLY_IN_PROGRESS) from None


def _gemini_request(
    c: Container,
    user_id: UUID,
    chat: Any,
    chat_id: UUID,
    reply_id: UUID,
    request_id: UUID,
    history: list,
    name_chat: bool = False,
) -> GeminiRequest:
    model = model_in_use(c, chat.model)
    return GeminiRequest(
        user_id=user_id,
        request_id=request_id,
        chat_id=chat_id,
        message_id=reply_id,
        model=model,
        system_instruction=chat.system_prompt,
        contents=build_contents(history, c.settings.HISTORY_MAX_CHARS),
        generation_config=generation.generation_config(chat.generation_settings, model),
        title=titles.spec(c) if name_chat else None,
    )


# What a turn costs of the history budget: what build_contents would send of it.
_TURN_CHARS = """CASE WHEN m.role = 'user' OR (m.status = 'completed' AND m.content <> '')
    THEN char_length(m.content)::bigint ELSE 0 END"""

# The chat's turns before :before, newest first, one index step at a time while they fit in
# :budget characters: a long chat costs what its request carries, not its whole past. The newest
# turn always comes (the open-reply check reads it); the one that no longer fits is read, then
# left out; :limit bounds the walk over turns that cost nothing (failed replies).
_HISTORY = f"""
    WITH RECURSIVE h AS (
        (SELECT m.seq, m.role, m.content, m.status, 1 AS depth, {_TURN_CHARS} AS used
         FROM messages m WHERE m.chat_id = :chat_id AND m.seq < :before
         ORDER BY m.seq DESC LIMIT 1)
        UNION ALL
        SELECT m.seq, m.role, m.content, m.status, h.depth + 1, h.used + {_TURN_CHARS}
        FROM h CROSS JOIN LATERAL (
            SELECT * FROM messages m WHERE m.chat_id = :chat_id AND m.seq < h.seq
            ORDER BY m.seq DESC LIMIT 1
        ) m
        WHERE h.used <= :budget AND h.depth < :limit
    )
"""

# The send path is the hottest write of the app: one read and one write statement, each its own
# transaction (autocommit), instead of an ORM unit of work with a dozen round trips.
_CHAT_AND_HISTORY = text(
    _HISTORY
    + """
    SELECT c.title, c.model, c.system_prompt, c.generation_settings, c.title_auto,
           h.role, h.content, h.status
    FROM chats c
    LEFT JOIN h ON h.used <= :budget OR h.depth = 1
    WHERE c.id = :chat_id AND c.user_id = :user_id
    ORDER BY h.seq
    """
)
_HISTORY_BEFORE = text(
    _HISTORY + "SELECT role, content, status FROM h WHERE used <= :budget OR depth = 1 ORDER BY seq"
)
_NO_BOUND = 2**63 - 1

# One statement, so all of it or nothing: both messages, the outbox row, the chat's activity.
# The outbox row's foreign key is checked at the end of the statement, after the messages exist.
_INSERT_TURN = text(
    """
    WITH turn AS (
        INSERT INTO messages (id, chat_id, role, content, status, attempt, model, request_id)
        VALUES (:question_id, :chat_id, 'user', :content, 'completed', 0, NULL, NULL),
               (:reply_id, :chat_id, 'assistant', '', 'pending', 0, :model, :request_id)
        RETURNING *
    ), queued AS (
        INSERT INTO outbox (request_id, message_id, payload, publish_attempts)
        VALUES (:request_id, :reply_id, CAST(:payload AS jsonb), 0)
        RETURNING id
    ), touched AS (
        UPDATE chats SET updated_at = now(), title = COALESCE(:title, title) WHERE id = :chat_id
    )
    SELECT turn.*, (SELECT id FROM queued) AS outbox_id FROM turn ORDER BY turn.seq
    """
)


@dataclass(frozen=True)
class _Turn:
    role: str
    content: str
    status: str


async def send(c: Container, user_id: UUID, chat_id: UUID, content: str) -> tuple[Any, Any]:
    """The question and the pending reply, as rows with the message's columns."""
    if not content.strip():
        raise Invalid("content: must not be empty")
    if len(content) > c.settings.MAX_MESSAGE_CHARS:
        raise Invalid(
            f"content: {len(content)} characters, at most {c.settings.MAX_MESSAGE_CHARS} allowed"
        )
    async with c.autocommit.connect() as conn:
        rows = (
            await conn.execute(
                _CHAT_AND_HISTORY,
                {
                    "chat_id": chat_id,
                    "user_id": user_id,
                    "before": _NO_BOUND,
                    # The new question is sent whatever its size; the rest share what is left.
                    "budget": max(c.settings.HISTORY_MAX_CHARS - len(content), 0),
                    "limit": HISTORY_MAX_MESSAGES,
                },
            )
        ).all()
        if not rows:
            raise NotFound("chat not found")
        chat = rows[0]
        history = [_Turn(r.role, r.content, r.status) for r in rows if r.role is not None]
        if any(t.role == "assistant" and t.status in OPEN_STATUSES for t in history):
            raise Conflict(REPLY_IN_PROGRESS)
        await c.admission.admit(c, conn, model_in_use(c, chat.model))
        await ratelimit.take(c, user_id)

        reply_id, request_id = uuid.uuid4(), uuid.uuid4()
        history.append(_Turn("user", content, "completed"))
        # The first message names a chat nobody named, until the generated title replaces it.
        first = len(history) == 1 and chat.title_auto
        # The same JSON text is the outbox row's payload and the published body.
        body = _gemini_request(
            c, user_id, chat, chat_id, reply_id, request_id, history, name_chat=first
        ).model_dump_json()
        title = None
        if first and chat.title == DEFAULT_TITLE:
            title = " ".join(content.split())[:AUTO_TITLE_CHARS]
        params = {
            "question_id": uuid.uuid4(),
            "reply_id": reply_id,
            "request_id": request_id,
            "chat_id": chat_id,
            "content": content,
            "model": model_in_use(c, chat.model),
            "payload": body,
            "title": title,
        }
        try:
            question, reply = (await conn.execute(_INSERT_TURN, params)).all()
        except IntegrityError as error:
            constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
            if constraint == "uq_messages_one_open_reply":
                raise Conflict(REPLY_IN_PROGRESS) from None
            raise NotFound("chat not found") from None  # deleted meanwhile
    committed = CommittedRequest(
        reply.outbox_id, request_id, body.encode(), chat_id, [status_event(reply)]
    )
    c.outbox.publish_later(c, committed)
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
    shown = None
    try:
        await c.redis.set(c.keys.cancel(message.request_id), "1", ex=CANCEL_FLAG_SECONDS)
        if await c.events.is_streaming(chat_id, message.id):
            # A retry's next attempt may already run before its `retrying` is stored.
            claims = c.keys.claims(message.request_id, (message.attempt, message.attempt + 1))
            if await c.redis.exists(*claims):
                # The worker stops between chunks and reports `cancelled` with the text so far.
                await db.commit()
                return message
            # Streamed by a worker that died, and none has taken it over: end it here, with
            # the text the user saw.
            shown = await c.events.attempt_text(chat_id, message.id)
    except RedisError as error:
        log.warning("cancel flag for %s not set, Redis unavailable: %s", message.id, error)
    message.status = "cancelled"
    if shown:
        message.content = shown
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
    await c.admission.admit(c, await db.connection(), model_in_use(c, chat.model))
    await ratelimit.take(c, user_id)

    message.status = "pending"
    message.content = ""
    message.thoughts = None
    message.error = None
    message.attempt = 0
    message.next_attempt_at = None
    message.model = model_in_use(c, chat.model)
    message.prompt_tokens = message.completion_tokens = None
    message.finish_reason = message.key_id = None
    message.latency_ms = None
    message.completed_at = None
    message.request_id = uuid.uuid4()
    request = _gemini_request(
        c,
        user_id,
        chat,
        chat_id,
        message.id,
        message.request_id,
        await _history(c, db, chat_id, message.seq),
    )
    payload = request.model_dump(mode="json")
    row = OutboxRequest(request_id=message.request_id, message_id=message.id, payload=payload)
    db.add(row)
    chat.updated_at = func.now()
    await _commit_reply(db)
    # The old text may be on screen: reset it before the new attempt streams.
    events = [("message.reset", {"message_id": str(message.id)}), status_event(message)]
    body = request.model_dump_json().encode()
    c.outbox.publish_later(c, CommittedRequest(row.id, message.request_id, body, chat_id, events))
    return message
