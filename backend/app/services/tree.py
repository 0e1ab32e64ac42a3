"""The message tree: each message follows its parent, and a chat shows one branch, the path from
its first question down to its active leaf."""

from collections import defaultdict
from typing import Any
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.schemas import MessageOut
from app.db.models import Chat, Message
from app.services import uploads
from app.services.chats import get_owned
from app.services.errors import NotFound


def siblings_sql(alias: str) -> str:
    """The ids of the messages sharing `alias`'s parent, oldest first (`alias` included once it
    is visible). Two branches, so that each one is an index scan: ix_messages_chat_roots for a
    first question, ix_messages_parent for the rest."""
    return f"""CASE WHEN {alias}.parent_id IS NULL
        THEN ARRAY(SELECT s.id FROM messages s
                   WHERE s.chat_id = {alias}.chat_id AND s.parent_id IS NULL ORDER BY s.seq)
        ELSE ARRAY(SELECT s.id FROM messages s WHERE s.parent_id = {alias}.parent_id ORDER BY s.seq)
        END"""


# A message's attachments as MessageOut shows them (ix_uploads_message_id).
ATTACHMENTS_SQL = """(SELECT coalesce(json_agg(json_build_object(
        'id', u.id, 'name', u.name, 'mime_type', u.mime_type, 'size', u.size)
        ORDER BY u.created_at, u.id), '[]') FROM uploads u WHERE u.message_id = p.id)"""

# From the active leaf up to the first question, one primary-key step per message.
_ACTIVE_PATH = text(
    f"""
    WITH RECURSIVE p AS (
        SELECT m.* FROM chats c JOIN messages m ON m.id = c.active_leaf_id
        WHERE c.id = :chat_id AND c.user_id = :user_id
        UNION ALL
        SELECT m.* FROM p JOIN messages m ON m.id = p.parent_id
    )
    SELECT p.*, {siblings_sql("p")} AS sibling_ids, {ATTACHMENTS_SQL} AS attachments
    FROM p ORDER BY p.seq
    """
)

# The branch through :message_id ends at its newest descendant: whatever is created later than a
# message is created below it, so the newest one of a subtree has no children.
_SET_ACTIVE = text(
    """
    WITH RECURSIVE d AS (
        SELECT m.id, m.seq FROM messages m WHERE m.id = :message_id AND m.chat_id = :chat_id
        UNION ALL
        SELECT m.id, m.seq FROM d JOIN messages m ON m.parent_id = d.id
    )
    UPDATE chats SET active_leaf_id = (SELECT id FROM d ORDER BY seq DESC LIMIT 1)
    WHERE id = :chat_id AND user_id = :user_id AND EXISTS (SELECT 1 FROM d)
    RETURNING active_leaf_id
    """
)

NEWEST_LEAF = text(
    """
    WITH RECURSIVE d AS (
        SELECT m.id, m.seq FROM messages m WHERE m.id = :message_id
        UNION ALL
        SELECT m.id, m.seq FROM d JOIN messages m ON m.parent_id = d.id
    )
    SELECT id FROM d ORDER BY seq DESC LIMIT 1
    """
)


async def active_path(db: AsyncSession, user_id: UUID, chat_id: UUID) -> list[Any]:
    """The active branch, oldest first, as rows with the message's columns and `sibling_ids`."""
    rows = list((await db.execute(_ACTIVE_PATH, {"chat_id": chat_id, "user_id": user_id})).all())
    if not rows:
        await get_owned(db, user_id, chat_id)  # an empty chat, or none of this user's
    return rows


async def whole_tree(db: AsyncSession, user_id: UUID, chat_id: UUID) -> list[MessageOut]:
    """Every message of the chat, oldest first; the siblings come from the same read."""
    query = (
        select(Message)
        .join(Chat, Chat.id == Message.chat_id)
        .where(Message.chat_id == chat_id, Chat.user_id == user_id)
        .order_by(Message.seq)
    )
    messages = list((await db.execute(query)).scalars())
    if not messages:
        await get_owned(db, user_id, chat_id)
    children: dict[UUID | None, list[UUID]] = defaultdict(list)
    for message in messages:
        children[message.parent_id].append(message.id)
    attached = await uploads.of_messages(db, chat_id)
    return [
        out(message, children[message.parent_id], attached.get(message.id, []))
        for message in messages
    ]


async def sibling_ids(db: AsyncSession, message: Message) -> list[UUID]:
    row = (
        await db.execute(
            text(f"SELECT {siblings_sql('m')} FROM messages m WHERE m.id = :id"), {"id": message.id}
        )
    ).scalar_one()
    return list(row)


_NOT_COLUMNS = ("sibling_ids", "attachments")


def out(message: Any, siblings: list[UUID], attachments: list[dict] | None = None) -> MessageOut:
    """`attachments` only for a question: a reply has none."""
    fields = {
        name: getattr(message, name) for name in MessageOut.model_fields if name not in _NOT_COLUMNS
    }
    return MessageOut.model_validate(
        {**fields, "sibling_ids": siblings, "attachments": attachments or []}
    )


async def set_active(db: AsyncSession, user_id: UUID, chat_id: UUID, message_id: UUID) -> list[Any]:
    params = {"chat_id": chat_id, "user_id": user_id, "message_id": message_id}
    if (await db.execute(_SET_ACTIVE, params)).first() is None:
        await get_owned(db, user_id, chat_id)
        raise NotFound("message not found")
    path = await active_path(db, user_id, chat_id)
    await db.commit()
    return path
