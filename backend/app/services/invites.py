"""Single-use sign-up invites made by admins. Only a token's SHA-256 is stored; the token
itself is shown once, in the answer that made it."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import new_token, token_digest
from app.db.models import Invite, User
from app.services.errors import Forbidden, NotFound


def link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/signup?invite={token}"


async def create(
    db: AsyncSession, creator: UUID, email: str | None, hours: float
) -> tuple[Invite, str]:
    token = new_token()
    invite = Invite(
        token_hash=token_digest(token),
        email=email,
        created_by=creator,
        expires_at=datetime.now(UTC) + timedelta(hours=hours),
    )
    db.add(invite)
    await db.flush()
    return invite, token


async def listing(db: AsyncSession) -> list[tuple[Invite, str | None]]:
    """Every invite, newest first, with the email of the account that used it."""
    query = (
        select(Invite, User.email)
        .outerjoin(User, User.id == Invite.used_by)
        .order_by(Invite.created_at.desc(), Invite.id.desc())
    )
    return [(invite, used_by) for invite, used_by in (await db.execute(query)).all()]


async def remove(db: AsyncSession, invite_id: UUID) -> Invite:
    gone = (
        await db.execute(delete(Invite).where(Invite.id == invite_id).returning(Invite))
    ).scalar_one_or_none()
    if gone is None:
        raise NotFound("invite not found")
    return gone


async def spend(db: AsyncSession, token: str, user: User) -> None:
    """Marks the invite used by `user`, in the caller's transaction; 403 when it is unknown,
    used, expired, or made out to another email. One statement: two sign-ups racing with one
    invite cannot both spend it."""
    spent = await db.execute(
        update(Invite)
        .where(
            Invite.token_hash == token_digest(token),
            Invite.used_at.is_(None),
            Invite.expires_at > func.now(),
            (Invite.email.is_(None)) | (Invite.email == user.email),
        )
        .values(used_at=func.now(), used_by=user.id)
        .returning(Invite.id)
    )
    if spent.first() is None:
        raise Forbidden(
            "this invite is not valid: it is unknown, used, expired or for another email"
        )
