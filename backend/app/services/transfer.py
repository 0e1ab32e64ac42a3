"""Export of chats (Markdown, JSON) and import of our JSON export or ChatGPT's conversations.json.

The JSON export is the import format (CONTRACTS.md, "Search, export, share"). Each message
carries `id` and `parent_id` and each chat its `active_leaf_id`, so a chat round-trips as a
tree; an import keeps the active branch (leaf up through the parents), or the listed order when
the file has no usable tree.
"""

import json
import re
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.container import Container
from app.db.models import Chat, Message
from app.services.chats import DEFAULT_TITLE, get_owned
from app.services.errors import Invalid
from app.services.tree import active_path

EXPORT_FORMAT = "gemini-chat-export"
EXPORT_VERSION = 1
MAX_TITLE_CHARS = 200
MAX_MODEL_CHARS = 100


async def branch(db: AsyncSession, chat: Chat) -> list[Any]:
    """The chat's active branch, oldest first: what Markdown and share links show; replies
    still pending or without text are left out."""
    return [
        m
        for m in await active_path(db, chat.user_id, chat.id)
        if m.role == "user" or (m.status == "completed" and m.content)
    ]


def _stamp(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def chat_document(chat: Chat, messages: list[Message]) -> dict[str, Any]:
    items = []
    for m in messages:
        items.append(
            {
                "id": str(m.id),
                "parent_id": str(m.parent_id) if m.parent_id else None,
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "model": m.model,
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
                "finish_reason": m.finish_reason,
                "created_at": _stamp(m.created_at),
                "completed_at": _stamp(m.completed_at),
            }
        )
    return {
        "id": str(chat.id),
        "title": chat.title,
        "model": chat.model,
        "system_prompt": chat.system_prompt,
        "created_at": _stamp(chat.created_at),
        "updated_at": _stamp(chat.updated_at),
        "active_leaf_id": str(chat.active_leaf_id) if chat.active_leaf_id else None,
        "messages": items,
    }


def _envelope_head() -> str:
    head = json.dumps(
        {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": datetime.now(UTC).isoformat(),
        }
    )
    return head[:-1] + ', "chats": ['


async def _all_messages(db: AsyncSession, chat_id: UUID) -> list[Message]:
    query = select(Message).where(Message.chat_id == chat_id).order_by(Message.seq)
    return list((await db.execute(query)).scalars())


async def export_chat_json(db: AsyncSession, user_id: UUID, chat_id: UUID) -> tuple[Chat, str]:
    chat = await get_owned(db, user_id, chat_id)
    document = chat_document(chat, await _all_messages(db, chat_id))
    return chat, _envelope_head() + json.dumps(document, ensure_ascii=False) + "]}\n"


async def export_all(c: Container, user_id: UUID) -> AsyncIterator[str]:
    """Every chat of the user, one chat in memory at a time; its own session, since the
    response is still being sent after the route has returned."""
    async with c.sessionmaker() as db:
        ids = (
            await db.execute(
                select(Chat.id).where(Chat.user_id == user_id).order_by(Chat.created_at, Chat.id)
            )
        ).scalars()
        chat_ids = list(ids)
        await db.commit()  # no transaction held open between chats
        yield _envelope_head()
        first = True
        for chat_id in chat_ids:
            chat = await db.get(Chat, chat_id)
            if chat is None:  # deleted meanwhile
                continue
            document = chat_document(chat, await _all_messages(db, chat_id))
            db.expunge_all()
            await db.commit()
            yield ("" if first else ",") + json.dumps(document, ensure_ascii=False)
            first = False
        yield "]}\n"


def _role_heading(message: Message) -> str:
    if message.role == "user":
        return "## You"
    return f"## Gemini ({message.model})" if message.model else "## Gemini"


async def export_chat_markdown(db: AsyncSession, user_id: UUID, chat_id: UUID) -> tuple[Chat, str]:
    chat = await get_owned(db, user_id, chat_id)
    lines = [
        f"# {chat.title}",
        "",
        f"Model: {chat.model} · Exported {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    ]
    if chat.system_prompt:
        lines += [
            "",
            "> System prompt:",
            *[f"> {line}" for line in chat.system_prompt.splitlines()],
        ]
    for m in await branch(db, chat):
        lines += ["", _role_heading(m), "", m.content]
    return chat, "\n".join(lines) + "\n"


def filename(chat: Chat, extension: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", chat.title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_title).strip("-").lower()[:60] or "chat"
    return f"{slug}.{extension}"


# --- import -----------------------------------------------------------------------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _OurMessage(_Lenient):
    id: str | None = None
    parent_id: str | None = None
    role: str
    content: str
    model: str | None = None
    prompt_tokens: int | None = Field(None, ge=0)
    completion_tokens: int | None = Field(None, ge=0)
    finish_reason: str | None = None
    created_at: datetime | None = None


class _OurChat(_Lenient):
    title: str = DEFAULT_TITLE
    model: str | None = None
    system_prompt: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    active_leaf_id: str | None = None
    messages: list[_OurMessage] = []


class _OurExport(_Lenient):
    format: str
    version: int
    chats: list[_OurChat]


class _Turn(BaseModel):
    role: str
    content: str
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    created_at: datetime | None = None


class _ImportChat(BaseModel):
    title: str
    model: str | None
    system_prompt: str | None
    created_at: datetime | None
    updated_at: datetime | None
    turns: list[_Turn]


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _active_path(chat: _OurChat) -> list[_OurMessage]:
    by_id = {m.id: m for m in chat.messages if m.id}
    if not chat.active_leaf_id or chat.active_leaf_id not in by_id:
        return chat.messages
    path, seen = [], set()
    node: _OurMessage | None = by_id[chat.active_leaf_id]
    while node is not None:
        if node.id in seen:
            raise Invalid(f"chat {chat.title!r}: its messages' parent_id form a loop")
        seen.add(node.id)
        path.append(node)
        node = by_id.get(node.parent_id) if node.parent_id else None
    return path[::-1]


def _from_ours(data: dict[str, Any]) -> list[_ImportChat]:
    try:
        export = _OurExport.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise Invalid(f"not a valid export: {_where(first['loc'])}: {first['msg']}") from None
    if export.version != EXPORT_VERSION:
        raise Invalid(f"export version {export.version} is not supported (only {EXPORT_VERSION})")
    chats = []
    for index, chat in enumerate(export.chats):
        turns = []
        for m in _active_path(chat):
            if m.role not in ("user", "assistant"):
                raise Invalid(f"chats[{index}]: role {m.role!r} is neither user nor assistant")
            if m.role == "assistant" and not m.content:
                continue  # a reply that never got text (failed, cancelled)
            turns.append(_Turn(**m.model_dump(exclude={"id", "parent_id"})))
        chats.append(
            _ImportChat(
                title=chat.title,
                model=chat.model,
                system_prompt=chat.system_prompt,
                created_at=chat.created_at,
                updated_at=chat.updated_at,
                turns=turns,
            )
        )
    return chats


def _epoch(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise Invalid(f"{where}: create_time is not a number")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise Invalid(f"{where}: create_time is out of range") from None


def _chatgpt_text(message: dict[str, Any]) -> str:
    content = message.get("content") or {}
    if not isinstance(content, dict):
        return ""
    if content.get("content_type") not in ("text", "multimodal_text"):
        return ""  # tool calls, browsing results, code runs: not part of the conversation
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        return ""
    return "\n".join(part for part in parts if isinstance(part, str)).strip()


def _from_chatgpt(conversations: list[Any]) -> list[_ImportChat]:
    chats = []
    for index, conversation in enumerate(conversations):
        where = f"conversation {index}"
        if not isinstance(conversation, dict):
            raise Invalid(f"{where}: not an object")
        mapping = conversation.get("mapping")
        current = conversation.get("current_node")
        if not isinstance(mapping, dict):
            raise Invalid(f"{where}: has no mapping")
        if current is not None and current not in mapping:
            raise Invalid(f"{where}: current_node {current!r} is not in its mapping")
        path, seen = [], set()
        while current is not None:
            if current in seen:
                raise Invalid(f"{where}: its parents form a loop")
            seen.add(current)
            node = mapping.get(current)
            if not isinstance(node, dict):
                raise Invalid(f"{where}: node {current!r} is missing")
            path.append(node)
            current = node.get("parent")
        turns = []
        for node in reversed(path):
            message = node.get("message")
            if not isinstance(message, dict):
                continue
            author = message.get("author") or {}
            role = author.get("role") if isinstance(author, dict) else None
            metadata = message.get("metadata") or {}
            hidden = isinstance(metadata, dict) and metadata.get(
                "is_visually_hidden_from_conversation"
            )
            text = _chatgpt_text(message)
            if role not in ("user", "assistant") or hidden or not text:
                continue
            slug = metadata.get("model_slug") if isinstance(metadata, dict) else None
            turns.append(
                _Turn(
                    role=role,
                    content=text,
                    model=slug if role == "assistant" and isinstance(slug, str) else None,
                    created_at=_epoch(message.get("create_time"), where),
                )
            )
        title = conversation.get("title")
        chats.append(
            _ImportChat(
                title=title if isinstance(title, str) else DEFAULT_TITLE,
                model=None,
                system_prompt=None,
                created_at=_epoch(conversation.get("create_time"), where),
                updated_at=_epoch(conversation.get("update_time"), where),
                turns=turns,
            )
        )
    return chats


def parse(raw: bytes) -> list[_ImportChat]:
    """The chats of an import file, or Invalid naming what is wrong with it."""
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise Invalid("the file is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise Invalid(f"the file is not JSON: {error.msg} at line {error.lineno}") from None
    except RecursionError:
        raise Invalid("the file is nested too deeply") from None
    if isinstance(data, dict) and data.get("format") == EXPORT_FORMAT:
        chats = _from_ours(data)
    elif isinstance(data, dict) and "mapping" in data:
        chats = _from_chatgpt([data])
    elif isinstance(data, list) and all(isinstance(c, dict) and "mapping" in c for c in data):
        chats = _from_chatgpt(data)
    else:
        raise Invalid("the file is neither a Gemini Chat export nor a ChatGPT conversations.json")
    for index, chat in enumerate(chats):
        texts = [chat.title, chat.system_prompt or "", *(t.content for t in chat.turns)]
        if any("\x00" in value for value in texts):
            raise Invalid(f"chat {index} ({chat.title[:40]!r}) holds a NUL character")
    return chats


async def import_chats(
    db: AsyncSession, c: Container, user_id: UUID, chats: list[_ImportChat]
) -> list[tuple[UUID, str]]:
    """All chats in one transaction: a failure leaves nothing behind."""
    now = datetime.now(UTC)
    made = []
    chat_rows, message_rows, leaves = [], [], []
    for chat in chats:
        chat_id = uuid4()
        title = chat.title.strip()[:MAX_TITLE_CHARS] or DEFAULT_TITLE
        model = chat.model if chat.model in c.settings.GEMINI_MODELS else c.settings.GEMINI_MODEL
        created = chat.created_at or now
        chat_rows.append(
            {
                "id": chat_id,
                "user_id": user_id,
                "title": title,
                "model": model,
                "system_prompt": chat.system_prompt or None,
                "created_at": created,
                "updated_at": chat.updated_at or created,
            }
        )
        previous: UUID | None = None
        for turn in chat.turns:
            stamp = turn.created_at or created
            message_id = uuid4()
            message_rows.append(
                {
                    "id": message_id,
                    "chat_id": chat_id,
                    "parent_id": previous,
                    "role": turn.role,
                    "content": turn.content,
                    "status": "completed",
                    "attempt": 0,
                    "model": (turn.model or None) and turn.model[:MAX_MODEL_CHARS],
                    "prompt_tokens": turn.prompt_tokens,
                    "completion_tokens": turn.completion_tokens,
                    "finish_reason": (turn.finish_reason or None) and turn.finish_reason[:64],
                    "created_at": stamp,
                    "completed_at": stamp if turn.role == "assistant" else None,
                }
            )
            previous = message_id
        if previous:
            leaves.append({"chat": chat_id, "leaf": previous})
        made.append((chat_id, title))
    if chat_rows:
        await db.execute(insert(Chat), chat_rows)
    if message_rows:
        # One multi-row statement per batch, rows in order: `seq` follows the file's order.
        await db.execute(insert(Message), message_rows)
    if leaves:
        # The leaf exists only now: chats.active_leaf_id refers to messages.
        await db.execute(
            update(Chat.__table__)
            .where(Chat.__table__.c.id == bindparam("chat"))
            .values(active_leaf_id=bindparam("leaf")),
            leaves,
        )
    await db.commit()
    return made
