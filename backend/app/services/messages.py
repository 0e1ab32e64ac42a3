"""Sending, listing, cancelling and retrying messages (DESIGN.md, "Flow of one message")."""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.schemas import MessageOut
from app.core.container import Container
from app.core.queue_messages import GeminiRequest
from app.db.models import FINAL_STATUSES, OPEN_STATUSES, Message, OutboxRequest, User
from app.services import generation, quotas, titles, tree, uploads
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
            "parent_id": str(message.parent_id) if message.parent_id else None,
            "status": message.status,
            "attempt": message.attempt,
            "next_attempt_at": message.next_attempt_at.isoformat()
            if message.next_attempt_at
            else None,
            "error": message.error,
        },
    )


def reset_event(message: Message) -> tuple[str, dict[str, Any]]:
    parent_id = str(message.parent_id) if message.parent_id else None
    return "message.reset", {"message_id": str(message.id), "parent_id": parent_id}


def completed_event(message: Any) -> tuple[str, dict[str, Any]]:
    """`message` carries `sibling_ids` beside the columns."""
    return "message.completed", {
        "message": MessageOut.model_validate(message).model_dump(mode="json")
    }


async def list_for_chat(
    db: AsyncSession, user_id: UUID, chat_id: UUID, view: str = "active"
) -> list[Any]:
    if view == "tree":
        return await tree.whole_tree(db, user_id, chat_id)
    return await tree.active_path(db, user_id, chat_id)


async def _open_reply_exists(db: AsyncSession, chat_id: UUID) -> bool:
    query = select(Message.id).where(
        Message.chat_id == chat_id,
        Message.role == "assistant",
        Message.status.in_(OPEN_STATUSES),
    )
    return (await db.execute(query.limit(1))).first() is not None


async def _history(c: Container, db: AsyncSession, chat_id: UUID, parent_id: UUID | None) -> list:
    """The turns from the first question down to `parent_id`, as far as they fit."""
    if parent_id is None:
        return []
    params = {
        "chat_id": chat_id,
        "start": parent_id,
        "budget": c.settings.HISTORY_MAX_CHARS,
        "limit": HISTORY_MAX_MESSAGES,
    }
    return list((await db.execute(_HISTORY_PATH, params)).all())


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

# The turns from :start (the new message's parent) up towards the first question, one
# primary-key step at a time while they fit in :budget characters, so never another branch, and a
# long chat costs what its request carries, not its whole past. The parent always comes (the send
# checks it); the one that no longer fits is read, then left out; :limit bounds the walk over
# turns that cost nothing (failed replies).
_HISTORY = f"""
    WITH RECURSIVE h AS (
        SELECT m.id, m.parent_id, m.seq, m.role, m.content, m.status, 1 AS depth,
               {_TURN_CHARS} AS used
        FROM messages m WHERE m.id = {{start}} AND m.chat_id = :chat_id
        UNION ALL
        SELECT m.id, m.parent_id, m.seq, m.role, m.content, m.status, h.depth + 1,
               h.used + {_TURN_CHARS}
        FROM h JOIN messages m ON m.id = h.parent_id
        WHERE h.used <= :budget AND h.depth < :limit
    )
"""

# Each user turn's attachments (references only), beside the history walk: what the worker
# needs to read their bytes from PostgreSQL (the claim check). ix_uploads_message_id.
_ATTACHMENTS_OF_H = """(SELECT json_agg(json_build_object(
        'id', a.id, 'mime_type', a.send_mime_type, 'size', a.send_size) ORDER BY a.created_at, a.id)
    FROM uploads a WHERE h.role = 'user' AND a.message_id = h.id) AS attachments"""

# The send path is the hottest write of the app: one read and one write statement, each its own
# transaction (autocommit), instead of an ORM unit of work with a dozen round trips. The read
# starts at the active leaf (:follow) or at the parent the client named; `busy` uses the partial
# index uq_messages_one_open_reply, whichever branch the open reply is on.
_CHAT_AND_HISTORY = text(
    _HISTORY.replace(
        "{start}",
        """(SELECT CASE WHEN :follow THEN c.active_leaf_id ELSE CAST(:parent AS uuid) END
            FROM chats c WHERE c.id = :chat_id)""",
    )
    + """
    SELECT c.title, c.model, c.system_prompt, c.generation_settings, c.title_auto,
           EXISTS (SELECT 1 FROM messages o WHERE o.chat_id = c.id AND o.role = 'assistant'
                   AND o.status IN ('pending', 'retrying')) AS busy,
           h.id, h.role, h.content, h.status, h.depth,
           u.messages_per_day, u.tokens_per_day, """
    + _ATTACHMENTS_OF_H
    + """
    FROM chats c
    JOIN users u ON u.id = c.user_id
    LEFT JOIN h ON h.used <= :budget OR h.depth = 1
    WHERE c.id = :chat_id AND c.user_id = :user_id
    ORDER BY h.seq
    """
)
_HISTORY_PATH = text(
    _HISTORY.replace("{start}", ":start")
    + "SELECT role, content, status, "
    + _ATTACHMENTS_OF_H
    + " FROM h WHERE used <= :budget OR depth = 1 ORDER BY seq"
)

# One statement, so all of it or nothing: both messages, the outbox row, the chat's activity and
# active leaf. The foreign keys are checked at the end of the statement, after the messages exist.
# The main query does not see the new rows: the question's siblings are the older ones plus it.
_INSERT_TURN = text(
    f"""
    WITH turn AS (
        INSERT INTO messages
            (id, chat_id, parent_id, role, content, status, attempt, model, request_id)
        VALUES (:question_id, :chat_id, CAST(:parent AS uuid), 'user', :content, 'completed', 0,
                NULL, NULL),
               (:reply_id, :chat_id, :question_id, 'assistant', '', 'pending', 0, :model,
                :request_id)
        RETURNING *
    ), queued AS (
        INSERT INTO outbox (request_id, message_id, payload, publish_attempts)
        VALUES (:request_id, :reply_id, CAST(:payload AS jsonb), 0)
        RETURNING id
    ), touched AS (
        UPDATE chats SET updated_at = now(), title = COALESCE(:title, title),
                         active_leaf_id = :reply_id
        WHERE id = :chat_id
    ), {quotas.COUNT_MESSAGE_CTE}
    SELECT turn.*, (SELECT id FROM queued) AS outbox_id,
           CASE WHEN turn.role = 'assistant' THEN ARRAY[turn.id]
                ELSE {tree.siblings_sql("turn")} || turn.id END AS sibling_ids
    FROM turn ORDER BY turn.seq
    """
)


@dataclass(frozen=True)
class _Turn:
    role: str
    content: str
    status: str
    attachments: list | None = None


FOLLOW_ACTIVE_LEAF: Any = object()  # `parent_id` omitted from a send


async def send(
    c: Container,
    user_id: UUID,
    chat_id: UUID,
    content: str,
    parent_id: Any = FOLLOW_ACTIVE_LEAF,
    attachments: Sequence[UUID] = (),
) -> tuple[Any, Any]:
    """The question and the pending reply, as rows with the message's columns and siblings.
    `parent_id` None starts a new first question (an edit of it). `attachments` are upload ids."""
    if not content.strip() and not attachments:
        raise Invalid("content: must not be empty")
    if len(content) > c.settings.MAX_MESSAGE_CHARS:
        raise Invalid(
            f"content: {len(content)} characters, at most {c.settings.MAX_MESSAGE_CHARS} allowed"
        )
    follow = parent_id is FOLLOW_ACTIVE_LEAF
    async with c.autocommit.connect() as conn:
        rows = (
            await conn.execute(
                _CHAT_AND_HISTORY,
                {
                    "chat_id": chat_id,
                    "user_id": user_id,
                    "follow": follow,
                    "parent": None if follow else parent_id,
                    # The new question is sent whatever its size; the rest share what is left.
                    "budget": max(c.settings.HISTORY_MAX_CHARS - len(content), 0),
                    "limit": HISTORY_MAX_MESSAGES,
                },
            )
        ).all()
        if not rows:
            raise NotFound("chat not found")
        chat = rows[0]
        history = [
            _Turn(r.role, r.content, r.status, r.attachments) for r in rows if r.role is not None
        ]
        parent = next((r for r in rows if r.depth == 1), None)
        if chat.busy:
            raise Conflict(REPLY_IN_PROGRESS)
        if not follow and parent_id is not None:
            if parent is None:
                raise NotFound("parent_id: no such message in this chat")
            if parent.role != "assistant" or parent.status not in FINAL_STATUSES:
                raise Invalid("parent_id: must be a final assistant reply of this chat")
        await c.admission.admit(c, conn, model_in_use(c, chat.model))
        taken = await quotas.take(c, conn, user_id, chat.messages_per_day, chat.tokens_per_day)

        reply_id, request_id, question_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        claimed = []
        if attachments:
            try:
                claimed = await uploads.claim(c, conn, user_id, chat_id, question_id, attachments)
            except Exception:
                await quotas.give_back(c, taken)  # refused: the question does not count
                raise
        history.append(_Turn("user", content, "completed", uploads.for_request(claimed)))
        # The first message names a chat nobody named, until the generated title replaces it.
        first = len(history) == 1 and chat.title_auto
        # The same JSON text is the outbox row's payload and the published body.
        body = _gemini_request(
            c, user_id, chat, chat_id, reply_id, request_id, history, name_chat=first
        ).model_dump_json()
        title = None
        if first and chat.title == DEFAULT_TITLE:
            title = " ".join(content.split())[:AUTO_TITLE_CHARS] or None  # files only: kept
        params = {
            "question_id": question_id,
            "parent": parent.id if parent is not None else None,
            "reply_id": reply_id,
            "request_id": request_id,
            "chat_id": chat_id,
            "content": content,
            "model": model_in_use(c, chat.model),
            "payload": body,
            "title": title,
            "user_id": user_id,
            "usage_day": quotas.today(),
        }
        try:
            question, reply = (await conn.execute(_INSERT_TURN, params)).all()
        except IntegrityError as error:
            await quotas.give_back(c, taken)
            if claimed:
                await uploads.release(conn, question_id)
            constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
            if constraint == "uq_messages_one_open_reply":
                raise Conflict(REPLY_IN_PROGRESS) from None
            raise NotFound("chat not found") from None  # deleted meanwhile
        except Exception:
            await quotas.give_back(c, taken)  # not stored (database away): not counted
            raise
    committed = CommittedRequest(
        reply.outbox_id, request_id, body.encode(), chat_id, [status_event(reply)]
    )
    c.outbox.publish_later(c, committed)
    if claimed:
        question = SimpleNamespace(
            **question._mapping, attachments=[uploads.public(r) for r in claimed]
        )
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
                answer = tree.out(message, await tree.sibling_ids(db, message))
                await db.commit()
                return answer
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
    answer = tree.out(message, await tree.sibling_ids(db, message))
    await db.commit()
    await c.events.append(chat_id, [status_event(message)])
    return answer


async def retry(
    db: AsyncSession, c: Container, user_id: UUID, chat_id: UUID, message_id: UUID
) -> MessageOut:
    """A completed reply gets a new sibling (the old one stays); a failed or cancelled one is
    tried again in place. Either way the reply answers the path down to its question, and its
    branch becomes the active one."""
    chat = await get_owned(db, user_id, chat_id, lock=True)
    message = await _reply_in_chat(db, chat_id, message_id)
    if message.status in OPEN_STATUSES:
        raise Conflict(REPLY_IN_PROGRESS)
    if await _open_reply_exists(db, chat_id):
        raise Conflict(REPLY_IN_PROGRESS)
    await c.admission.admit(c, await db.connection(), model_in_use(c, chat.model))
    user = await db.get(User, user_id)
    taken = await quotas.take(c, db, user_id, user.messages_per_day, user.tokens_per_day)

    history = await _history(c, db, chat_id, message.parent_id)
    events: list[tuple[str, dict[str, Any]]] = []
    if message.status == "completed":
        message = Message(
            id=uuid.uuid4(), chat_id=chat_id, parent_id=message.parent_id, role="assistant"
        )
        db.add(message)
        leaf = message.id
    else:
        # The old text may be on screen: reset it before the new attempt streams.
        events.append(reset_event(message))
        leaf = (await db.execute(tree.NEWEST_LEAF, {"message_id": message.id})).scalar_one()
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
    request = _gemini_request(c, user_id, chat, chat_id, message.id, message.request_id, history)
    try:
        await db.flush()  # the message first: the chat and the outbox row name it
    except IntegrityError:
        await db.rollback()  # uq_messages_one_open_reply: another request opened one first
        raise Conflict(REPLY_IN_PROGRESS) from None
    payload = request.model_dump(mode="json")
    row = OutboxRequest(request_id=message.request_id, message_id=message.id, payload=payload)
    db.add(row)
    chat.active_leaf_id = leaf
    chat.updated_at = func.now()
    await quotas.count_message(db, user_id, message.model)
    await db.refresh(message)
    answer = tree.out(message, await tree.sibling_ids(db, message))
    try:
        await _commit_reply(db)
    except Conflict:
        await quotas.give_back(c, taken)
        raise
    events.append(status_event(message))
    body = request.model_dump_json().encode()
    c.outbox.publish_later(c, CommittedRequest(row.id, message.request_id, body, chat_id, events))
    return answer
