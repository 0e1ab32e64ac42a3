"""The settings page's account actions: the user's login sessions, revoking one, and
deleting the account with everything in it."""

from uuid import UUID

from sqlalchemy import delete, select

from app.core.container import Container
from app.db.models import LoginSession, User
from app.services import accounts, teams
from app.services.accounts import AuthUser
from app.services.errors import Forbidden, NotFound


async def sessions(c: Container, user: AuthUser) -> list[LoginSession]:
    async with c.sessionmaker() as db:
        query = (
            select(LoginSession)
            .where(LoginSession.user_id == user.id)
            .order_by(LoginSession.last_seen_at.desc().nulls_last(), LoginSession.created_at.desc())
        )
        return list((await db.execute(query)).scalars())


async def revoke(c: Container, user: AuthUser, session_id: UUID) -> None:
    async with c.sessionmaker() as db:
        ended = (
            await db.execute(
                delete(LoginSession)
                .where(LoginSession.id == session_id, LoginSession.user_id == user.id)
                .returning(LoginSession.token_hash)
            )
        ).scalar_one_or_none()
        await db.commit()
    if ended is None:
        raise NotFound("session not found")
    await accounts.forget(c, [ended])


async def delete_me(c: Container, user: AuthUser, password: str | None) -> None:
    """Deletes the account and its chats. A password account confirms with its password; an
    SSO account (no password of its own) has signed in just now."""
    confirmed = password is not None and await accounts.password_is(c, user, password)
    if not confirmed and await accounts.has_password(c, user.id):
        raise Forbidden("the password is wrong")
    async with c.sessionmaker() as db:
        await teams.keep_an_admin(db, user.id)
        digests = list(
            (
                await db.execute(
                    delete(LoginSession)
                    .where(LoginSession.user_id == user.id)
                    .returning(LoginSession.token_hash)
                )
            ).scalars()
        )
        await db.execute(delete(User).where(User.id == user.id))
        await db.commit()
    await accounts.forget(c, [user.token_digest, *digests])
