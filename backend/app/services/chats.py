"""Chats of one user. Another user's chat is reported as not found, never as forbidden."""

import base64
import binascii
import json
import logging
from datetime import UTC, datetime
from uuid import UUID

from redis.exceptions import RedisError
from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.schemas import ChatOut, GenerationSettings
from app.core.container import Container
from app.db.models import OPEN_STATUSES, Chat, Message
from app.services import generation
from app.services.errors import Invalid, NotFound

log = logging.getLogger(__name__)

DEFAULT_TITLE = "New chat"
CANCEL_FLAG_SECONDS = 86400


def _check_model(c: Container, model: str) -> str:
    if model not in c.settings.GEMINI_MODELS:
        raise Invalid(
            f"unknown model {model!r}; choose one of: {', '.join(c.settings.GEMINI_MODELS)}"
        )
    return model


def model_in_use(c: Container, model: str) -> str:
    """A chat's model while GEMINI_MODELS offers it; once withdrawn, the default."""
    return model if model in c.settings.GEMINI_MODELS else c.settings.GEMINI_MODEL


def out(c: Container, chat: Chat) -> ChatOut:
    return ChatOut(
        id=chat.id,
        title=chat.title,
        model=chat.model,
        model_in_use=model_in_use(c, chat.model),
        system_prompt=chat.system_prompt,
        settings=GenerationSettings.model_validate(chat.generation_settings or {}),
        created_at=chat.created_at,
        updated_at=chat.updated_at,
    )


async def create(
    db: AsyncSession,
    c: Container,
    user_id: UUID,
    title: str | None,
    model: str | None,
    system_prompt: str | None,
    settings: dict | None = None,
) -> Chat:
    model = _check_model(c, model or c.settings.GEMINI_MODEL)
    chat = Chat(
        user_id=user_id,
        title=(title or "").strip() or DEFAULT_TITLE,
        title_auto=not (title or "").strip(),
        model=model,
        system_prompt=system_prompt or None,
        generation_settings=generation.validate(settings, model) or None if settings else None,
    )
    db.add(chat)
    await db.commit()
    await db.refresh(chat)
    return chat


async def get_owned(db: AsyncSession, user_id: UUID, chat_id: UUID, *, lock: bool = False) -> Chat:
    query = select(Chat).where(Chat.id == chat_id, Chat.user_id == user_id)
    if lock:
        query = query.with_for_update()
    chat = (await db.execute(query)).scalar_one_or_none()
    if chat is None:
        raise NotFound("chat not found")
    return chat


def _encode_cursor(chat: Chat) -> str:
    raw = json.dumps([chat.updated_at.isoformat(), str(chat.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        # Only the shape _encode_cursor makes: anything else (numbers, nesting) is refused here.
        if not (isinstance(decoded, list) and len(decoded) == 2):
            raise ValueError("not a pair")
        stamp, chat_id = decoded
        if not (isinstance(stamp, str) and isinstance(chat_id, str)):
            raise ValueError("not two strings")
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        return moment.astimezone(UTC), UUID(chat_id)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise Invalid("before: not a cursor this API returned") from None


async def list_page(
    db: AsyncSession, user_id: UUID, limit: int, before: str | None
) -> tuple[list[Chat], str | None]:
    query = (
        select(Chat)
        .where(Chat.user_id == user_id)
        .order_by(Chat.updated_at.desc(), Chat.id.desc())
        .limit(limit + 1)
    )
    if before:
        moment, chat_id = _decode_cursor(before)
        query = query.where(tuple_(Chat.updated_at, Chat.id) < tuple_(moment, chat_id))
    chats = list((await db.execute(query)).scalars())
    if len(chats) <= limit:
        return chats, None
    chats = chats[:limit]
    return chats, _encode_cursor(chats[-1])


async def update(
    db: AsyncSession, c: Container, user_id: UUID, chat_id: UUID, changes: dict
) -> Chat:
    chat = await get_owned(db, user_id, chat_id, lock=True)
    if "title" in changes:
        chat.title = (changes["title"] or "").strip() or DEFAULT_TITLE
        chat.title_auto = False  # named by hand: a generated title in flight no longer applies
    if "model" in changes:
        chat.model = _check_model(c, changes["model"] or c.settings.GEMINI_MODEL)
    if "settings" in changes or "model" in changes:
        # The settings must suit the model, the new one when it changes too (422 otherwise).
        wanted = changes.get("settings", chat.generation_settings)
        chat.generation_settings = generation.validate(wanted or {}, chat.model) or None
    if "system_prompt" in changes:
        chat.system_prompt = changes["system_prompt"] or None
    if changes:
        chat.updated_at = func.now()
    await db.commit()
    await db.refresh(chat)
    return chat


async def remove(db: AsyncSession, c: Container, user_id: UUID, chat_id: UUID) -> None:
    await get_owned(db, user_id, chat_id, lock=True)
    open_replies = (
        await db.execute(
            select(Message.request_id).where(
                Message.chat_id == chat_id,
                Message.role == "assistant",
                Message.status.in_(OPEN_STATUSES),
            )
        )
    ).scalars()
    open_requests = list(open_replies)
    await db.execute(delete(Chat).where(Chat.id == chat_id))
    await db.commit()
    await c.events.delete(chat_id)
    # Nobody will read those replies: let the worker stop instead of spending a key on them.
    for request_id in open_requests:
        try:
            await c.redis.set(c.keys.cancel(request_id), "1", ex=CANCEL_FLAG_SECONDS)
        except RedisError as error:
            log.warning("cancel flag for request %s not set: %s", request_id, error)
