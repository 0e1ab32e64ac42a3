"""User administration: the users list, admin rights, disabling, deleting, password reset
links. Every change is written to the audit log in its own transaction."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.container import Container
from app.core.security import hash_password, new_token, token_digest
from app.db.models import LoginSession, PasswordReset, User
from app.services import accounts, audit, quotas
from app.services.accounts import AuthUser
from app.services.errors import Conflict, Forbidden, NotFound


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_users(
    db: AsyncSession, q: str | None, limit: int, before: UUID | None
) -> tuple[list[dict[str, Any]], UUID | None]:
    """Newest accounts first, keyset-paged by (created_at, id); `before` is the last id of the
    previous page."""
    query = select(User).order_by(User.created_at.desc(), User.id.desc()).limit(limit + 1)
    if q:
        query = query.where(User.email.ilike(_like(q.lower()), escape="\\"))
    if before is not None:
        anchor = select(User.created_at, User.id).where(User.id == before).subquery()
        query = query.where(
            tuple_(User.created_at, User.id)
            < select(anchor.c.created_at, anchor.c.id).scalar_subquery()
        )
    users = list((await db.execute(query)).scalars())
    more = len(users) > limit
    users = users[:limit]
    usage = await quotas.usage_today(db, [u.id for u in users])
    items = [
        {
            "id": u.id,
            "email": u.email,
            "is_admin": u.is_admin,
            "disabled": u.disabled,
            "sso": u.oidc_subject is not None,
            "created_at": u.created_at,
            "last_seen_at": u.last_seen_at,
            "usage_today": usage[u.id],
            "limits": quotas.limits_of(u),
        }
        for u in users
    ]
    return items, (users[-1].id if more else None)


async def one(db: AsyncSession, user_id: UUID) -> dict[str, Any]:
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    usage = await quotas.usage_today(db, [user.id])
    return {
        "id": user.id,
        "email": user.email,
        "is_admin": user.is_admin,
        "disabled": user.disabled,
        "sso": user.oidc_subject is not None,
        "created_at": user.created_at,
        "last_seen_at": user.last_seen_at,
        "usage_today": usage[user.id],
        "limits": quotas.limits_of(user),
    }


async def keep_an_admin(db: AsyncSession, user_id: UUID) -> None:
    """409 when `user_id` is the only enabled admin. The enabled admins' rows stay locked to
    the end of the caller's transaction, so two admins cannot demote each other at once."""
    admins = list(
        (
            await db.execute(
                select(User.id)
                .where(User.is_admin.is_(True), User.disabled.is_(False))
                .order_by(User.id)
                .with_for_update()
            )
        ).scalars()
    )
    if admins == [user_id]:
        raise Conflict("this is the last admin: make another account admin first")


async def _locked_user(db: AsyncSession, user_id: UUID) -> User:
    user = (
        await db.execute(select(User).where(User.id == user_id).with_for_update())
    ).scalar_one_or_none()
    if user is None:
        raise NotFound("user not found")
    return user


async def _end_sessions(db: AsyncSession, user_id: UUID) -> list[str]:
    ended = await db.execute(
        delete(LoginSession)
        .where(LoginSession.user_id == user_id)
        .returning(LoginSession.token_hash)
    )
    return list(ended.scalars())


async def update_user(
    c: Container,
    actor: AuthUser,
    user_id: UUID,
    is_admin: bool | None,
    disabled: bool | None,
    limits: dict[str, Any] | None,
) -> None:
    """Disabling ends every session of the user at once, in every backend process (their open
    event streams close); replies already queued still finish and are kept."""
    ended: list[str] = []
    async with c.sessionmaker() as db:
        if (is_admin is False) or (disabled is True):
            await keep_an_admin(db, user_id)
        user = await _locked_user(db, user_id)
        if is_admin is not None and is_admin != user.is_admin:
            user.is_admin = is_admin
            audit.record(db, actor, "user.admin" if is_admin else "user.not_admin", user.email)
        if disabled is not None and disabled != user.disabled:
            user.disabled = disabled
            audit.record(db, actor, "user.disable" if disabled else "user.enable", user.email)
            if disabled:
                ended = await _end_sessions(db, user_id)
        if limits is not None:
            await quotas.set_limits(db, user, limits)
            audit.record(db, actor, "user.limits", user.email, **limits)
        await db.commit()
    # A session's cached is_admin must not outlive the change either.
    if is_admin is not None and not ended:
        async with c.sessionmaker() as db:
            digests = (
                await db.execute(
                    select(LoginSession.token_hash).where(LoginSession.user_id == user_id)
                )
            ).scalars()
            await accounts.drop_cached(c, list(digests))
    await accounts.forget(c, ended)


async def delete_user(c: Container, actor: AuthUser, user_id: UUID) -> None:
    """The account and everything it owns (chats, messages: the foreign keys cascade)."""
    async with c.sessionmaker() as db:
        await keep_an_admin(db, user_id)
        user = await _locked_user(db, user_id)
        ended = await _end_sessions(db, user_id)
        email = user.email
        await db.delete(user)
        audit.record(db, actor, "user.delete", email)
        await db.commit()
    await accounts.forget(c, ended)


async def reset_link(c: Container, actor: AuthUser, user_id: UUID) -> tuple[str, datetime]:
    """A one-time password reset token for the user, valid RESET_LINK_TTL_HOURS; an older
    unused one of the same user stops working."""
    token = new_token()
    expires = datetime.now(UTC) + timedelta(hours=c.settings.RESET_LINK_TTL_HOURS)
    async with c.sessionmaker() as db:
        user = await _locked_user(db, user_id)
        await db.execute(
            delete(PasswordReset).where(
                PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None)
            )
        )
        db.add(PasswordReset(token_hash=token_digest(token), user_id=user_id, expires_at=expires))
        audit.record(db, actor, "user.reset_link", user.email)
        await db.commit()
    return token, expires


async def reset_password(c: Container, token: str, new_password: str) -> None:
    """Spends a reset link: the new password is set and every session of the account ends."""
    with c.passwords.slot():
        new_hash = await c.passwords.run(hash_password, new_password)
    async with c.sessionmaker() as db:
        spent = (
            await db.execute(
                update(PasswordReset)
                .where(
                    PasswordReset.token_hash == token_digest(token),
                    PasswordReset.used_at.is_(None),
                    PasswordReset.expires_at > func.now(),
                )
                .values(used_at=func.now())
                .returning(PasswordReset.user_id)
            )
        ).scalar_one_or_none()
        if spent is None:
            raise Forbidden("this reset link is not valid: it is unknown, used or expired")
        await db.execute(update(User).where(User.id == spent).values(password_hash=new_hash))
        ended = await _end_sessions(db, spent)
        await db.commit()
    await accounts.forget(c, ended)
