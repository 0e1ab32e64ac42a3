"""Accounts and login sessions. Tokens are random; only their SHA-256 is stored (PostgreSQL)
and used as the cache key (Redis), so a leaked database or cache holds no usable token."""

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from redis.exceptions import RedisError
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.container import Container
from app.core.security import hash_password, new_token, token_digest, verify_password
from app.db.models import LoginSession, User
from app.services.errors import Conflict, Forbidden, Unauthorized

log = logging.getLogger(__name__)

SESSION_CACHE_SECONDS = 300
_FIRST_USER_LOCK = 0x636861745F75  # advisory lock id: one registration decides "first user"


@dataclass(frozen=True)
class AuthUser:
    id: UUID
    email: str
    is_admin: bool
    created_at: datetime
    token_digest: str


async def register(db: AsyncSession, c: Container, email: str, password: str) -> User:
    if not c.settings.ALLOW_REGISTRATION:
        raise Forbidden("registration is closed on this server")
    # Argon2 takes tens of milliseconds of CPU: off the event loop, or every stream stalls.
    password_hash = await asyncio.to_thread(hash_password, password)
    await db.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _FIRST_USER_LOCK})
    has_users = (await db.execute(select(User.id).limit(1))).first() is not None
    user = User(email=email, password_hash=password_hash, is_admin=not has_users)
    db.add(user)
    try:
        await db.commit()
    except IntegrityError:
        await db.rollback()
        raise Conflict("an account with this email already exists") from None
    return user


async def login(db: AsyncSession, c: Container, email: str, password: str) -> tuple[str, User]:
    user = (await db.execute(select(User).where(User.email == email))).scalar_one_or_none()
    stored = user.password_hash if user else None
    if not await asyncio.to_thread(verify_password, stored, password) or user is None:
        raise Unauthorized("wrong email or password")
    token = new_token()
    expires = datetime.now(UTC) + timedelta(hours=c.settings.SESSION_TTL_HOURS)
    await db.execute(
        delete(LoginSession).where(
            LoginSession.user_id == user.id, LoginSession.expires_at <= func.now()
        )
    )
    db.add(LoginSession(user_id=user.id, token_hash=token_digest(token), expires_at=expires))
    await db.commit()
    return token, user


async def logout(db: AsyncSession, c: Container, user: AuthUser) -> None:
    await db.execute(delete(LoginSession).where(LoginSession.token_hash == user.token_digest))
    await db.commit()
    try:
        await c.redis.delete(c.keys.session(user.token_digest))
    except RedisError as error:
        # The cache entry outlives the session by at most SESSION_CACHE_SECONDS.
        log.warning("could not drop a cached login session: %s", error)


async def authenticate(c: Container, token: str) -> AuthUser:
    digest = token_digest(token)
    cached = await _cached(c, digest)
    if cached is not None:
        return cached
    async with c.sessionmaker() as db:
        row = (
            await db.execute(
                select(User, LoginSession.expires_at)
                .join(LoginSession, LoginSession.user_id == User.id)
                .where(LoginSession.token_hash == digest, LoginSession.expires_at > func.now())
            )
        ).first()
    if row is None:
        raise Unauthorized("not logged in or the session has expired")
    user, expires_at = row
    auth = AuthUser(user.id, user.email, user.is_admin, user.created_at, digest)
    await _cache(c, auth, expires_at)
    return auth


async def _cached(c: Container, digest: str) -> AuthUser | None:
    try:
        raw = await c.redis.get(c.keys.session(digest))
    except RedisError:
        return None  # Redis down: PostgreSQL answers instead
    if raw is None:
        return None
    data = json.loads(raw)
    return AuthUser(
        UUID(data["id"]),
        data["email"],
        data["is_admin"],
        datetime.fromisoformat(data["created_at"]),
        digest,
    )


async def _cache(c: Container, user: AuthUser, expires_at: datetime) -> None:
    remaining = int((expires_at - datetime.now(UTC)).total_seconds())
    ttl = min(SESSION_CACHE_SECONDS, remaining)
    if ttl <= 0:
        return
    value = json.dumps(
        {
            "id": str(user.id),
            "email": user.email,
            "is_admin": user.is_admin,
            "created_at": user.created_at.isoformat(),
        }
    )
    with contextlib.suppress(RedisError):  # a cache miss next time, nothing worse
        await c.redis.set(c.keys.session(user.token_digest), value, ex=ttl)
