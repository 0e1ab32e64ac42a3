"""Share links: a frozen copy of a chat's active branch that anyone holding the token may read.

The token (256 random bits) is shown once, to its creator; the database keeps its sha256, so
neither a leaked table nor the owner's list of links can open one.
"""

import hashlib
import secrets
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import SharedChat
from app.services.chats import get_owned
from app.services.errors import NotFound
from app.services.transfer import branch

TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 100


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create(db: AsyncSession, user_id: UUID, chat_id: UUID) -> tuple[SharedChat, str]:
    chat = await get_owned(db, user_id, chat_id)
    snapshot = [
        {"role": m.role, "content": m.content, "created_at": m.created_at.isoformat()}
        for m in await branch(db, chat)
    ]
    token = secrets.token_urlsafe(TOKEN_BYTES)
    share = SharedChat(
        token_hash=_hash(token),
        chat_id=chat_id,
        user_id=user_id,
        title=chat.title,
        messages=snapshot,
    )
    db.add(share)
    await db.commit()
    await db.refresh(share)
    return share, token


async def list_for_chat(db: AsyncSession, user_id: UUID, chat_id: UUID) -> list[SharedChat]:
    await get_owned(db, user_id, chat_id)
    query = (
        select(SharedChat)
        .where(SharedChat.chat_id == chat_id, SharedChat.user_id == user_id)
        .order_by(SharedChat.created_at.desc())
    )
    return list((await db.execute(query)).scalars())


async def revoke(db: AsyncSession, user_id: UUID, chat_id: UUID, share_id: UUID) -> None:
    """A revoked link is deleted with its copy: nothing of it stays readable."""
    gone = await db.execute(
        delete(SharedChat)
        .where(
            SharedChat.id == share_id,
            SharedChat.chat_id == chat_id,
            SharedChat.user_id == user_id,
        )
        .returning(SharedChat.id)
    )
    if gone.first() is None:
        raise NotFound("share link not found")
    await db.commit()


async def read(db: AsyncSession, token: str) -> SharedChat:
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise NotFound("shared chat not found")
    query = select(SharedChat).where(SharedChat.token_hash == _hash(token))
    share = (await db.execute(query)).scalar_one_or_none()
    if share is None:
        raise NotFound("shared chat not found")
    return share
