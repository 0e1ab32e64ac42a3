"""Accounts and login sessions. Tokens are random; only their SHA-256 is stored (PostgreSQL)
and used as the cache key (Redis), so a leaked database or cache holds no usable token."""

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from redis.exceptions import RedisError
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.core.container import Container
from app.core.security import hash_password, new_token, token_digest, verify_password
from app.db.models import LoginSession, User
from app.services import invites, ratelimit, session_ends
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


async def register(
    c: Container, email: str, password: str, address: str, invite: str | None = None
) -> User:
    settings = c.settings
    if settings.ALLOW_REGISTRATION == "false":
        raise Forbidden("registration is closed on this server")
    limit = settings.SIGNUPS_PER_ADDRESS_PER_HOUR
    await ratelimit.within(
        c, c.keys.signups(address), 3600, limit, f"too many sign-ups: at most {limit} per hour"
    )
    with c.passwords.slot():
        password_hash = await c.passwords.run(hash_password, password)
    async with c.sessionmaker() as db:
        await db.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _FIRST_USER_LOCK})
        has_users = (await db.execute(select(User.id).limit(1))).first() is not None
        user = User(id=uuid4(), email=email, password_hash=password_hash, is_admin=not has_users)
        db.add(user)
        try:
            await db.flush()
        except IntegrityError:
            await db.rollback()
            raise Conflict("an account with this email already exists") from None
        # An invite is spent in the same transaction as the account it made.
        if invite is not None:
            await invites.spend(db, invite, user)
        elif settings.ALLOW_REGISTRATION == "invite" and has_users:
            raise Forbidden("sign-up on this server needs an invite")
        await db.commit()
    return user


class _Failures:
    """The failed sign-in windows of one account and one client address."""

    def __init__(self, c: Container, email: str, address: str) -> None:
        self.c = c
        self.window = c.settings.LOGIN_WINDOW_SECONDS
        # The address is a login name: Redis gets only its digest.
        self.account = c.keys.login_failures_account(token_digest(email))
        self.address = c.keys.login_failures_address(address)

    async def refuse_if_too_many(self) -> None:
        settings = self.c.settings
        minutes = max(1, self.window // 60)
        for key, limit, whose in (
            (self.account, settings.LOGIN_FAILURES_PER_ACCOUNT, "for this account"),
            (self.address, settings.LOGIN_FAILURES_PER_ADDRESS, "from this address"),
        ):
            what = f"too many failed sign-ins {whose}: at most {limit} in {minutes} min"
            await ratelimit.within(self.c, key, self.window, limit, what, use=False)

    async def add(self) -> None:
        await ratelimit.record(self.c, self.account, self.window)
        await ratelimit.record(self.c, self.address, self.window)


async def _password_matches(
    c: Container, user_id: UUID | None, email: str, password: str
) -> User | None:
    """The user when `password` is theirs. No database connection is held while argon2 runs."""
    async with c.sessionmaker() as db:
        match = (User.id == user_id) if user_id else (User.email == email)
        user = (await db.execute(select(User).where(match))).scalar_one_or_none()
    stored = user.password_hash if user else None
    if not await c.passwords.run(verify_password, stored, password) or user is None:
        return None
    return user


async def login(
    c: Container, email: str, password: str, address: str, device: str | None = None
) -> tuple[str, User]:
    if not c.settings.PASSWORD_LOGIN:
        raise Forbidden("password sign-in is turned off on this server; use single sign-on")
    failures = _Failures(c, email, address)
    await failures.refuse_if_too_many()  # before argon2: a blocked guesser costs no CPU
    with c.passwords.slot():
        user = await _password_matches(c, None, email, password)
    if user is None:
        await failures.add()
        raise Unauthorized("wrong email or password")
    return await start_session(c, user, device), user


async def start_session(c: Container, user: User, device: str | None) -> str:
    """A new login session of an enabled account (password or SSO sign-in)."""
    if user.disabled:
        raise Forbidden("this account is disabled; ask an admin")
    token = new_token()
    expires = datetime.now(UTC) + timedelta(hours=c.settings.SESSION_TTL_HOURS)
    async with c.sessionmaker() as db:
        db.add(
            LoginSession(
                user_id=user.id,
                token_hash=token_digest(token),
                expires_at=expires,
                device=(device or "")[:200] or None,
                last_seen_at=func.now(),
            )
        )
        await db.commit()
    return token


async def change_password(
    c: Container, user: AuthUser, current: str, new: str, address: str
) -> None:
    """Sets a new password and ends every other session of the user (this one stays)."""
    failures = _Failures(c, user.email, address)
    await failures.refuse_if_too_many()
    with c.passwords.slot():
        if await _password_matches(c, user.id, user.email, current) is None:
            await failures.add()
            raise Forbidden("the current password is wrong")
        new_hash = await c.passwords.run(hash_password, new)
    async with c.sessionmaker() as db:
        await db.execute(update(User).where(User.id == user.id).values(password_hash=new_hash))
        ended = await db.execute(
            delete(LoginSession)
            .where(LoginSession.user_id == user.id, LoginSession.token_hash != user.token_digest)
            .returning(LoginSession.token_hash)
        )
        digests = list(ended.scalars())
        await db.commit()
    await _forget(c, digests)


SSO_ONLY = "!sso"  # the password_hash of an account made by SSO: no password matches it


async def has_password(c: Container, user_id: UUID) -> bool:
    async with c.sessionmaker() as db:
        stored = (await db.execute(select(User.password_hash).where(User.id == user_id))).scalar()
    return bool(stored) and stored != SSO_ONLY


async def password_is(c: Container, user: AuthUser, password: str) -> bool:
    """The user's own password, checked under the sign-in limits."""
    failures = _Failures(c, user.email, "account-settings")
    await failures.refuse_if_too_many()
    with c.passwords.slot():
        matches = await _password_matches(c, user.id, user.email, password) is not None
    if not matches:
        await failures.add()
    return matches


async def logout(c: Container, user: AuthUser) -> None:
    async with c.sessionmaker() as db:
        await db.execute(delete(LoginSession).where(LoginSession.token_hash == user.token_digest))
        await db.commit()
    await _forget(c, [user.token_digest])


async def logout_everywhere(c: Container, user: AuthUser) -> None:
    async with c.sessionmaker() as db:
        ended = await db.execute(
            delete(LoginSession)
            .where(LoginSession.user_id == user.id)
            .returning(LoginSession.token_hash)
        )
        digests = list(ended.scalars())
        await db.commit()
    await _forget(c, [user.token_digest, *digests])


async def _forget(c: Container, digests: list[str]) -> None:
    """Drops ended sessions from the cache, so every lookup sees the end, and tells every
    backend process to close their open event streams (services/session_ends.py)."""
    if not digests:
        return
    await drop_cached(c, digests)
    await session_ends.announce(c, digests)


async def forget(c: Container, digests: list[str]) -> None:
    """_forget for the other account services (admin, settings page)."""
    await _forget(c, digests)


async def drop_cached(c: Container, digests: list[str]) -> None:
    """The next lookup of these sessions reads PostgreSQL (a changed account, an ended one)."""
    if not digests:
        return
    try:
        await c.redis.delete(*(c.keys.session(digest) for digest in digests))
    except RedisError as error:
        # The cache entry outlives the session by at most SESSION_CACHE_SECONDS.
        log.warning("could not drop cached login sessions: %s", error)


async def remove_expired_forever(c: Container) -> None:
    """Deletes expired login sessions every SESSION_CLEANUP_INTERVAL_SECONDS."""
    interval = c.settings.SESSION_CLEANUP_INTERVAL_SECONDS
    while not c.stopping.is_set():
        try:
            async with c.autocommit.connect() as conn:
                removed = await conn.execute(
                    delete(LoginSession).where(LoginSession.expires_at <= func.now())
                )
            if removed.rowcount:
                log.info("removed %d expired login sessions", removed.rowcount)
        except (SQLAlchemyError, OSError) as error:
            log.warning("expired login sessions not removed this time: %s", error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(c.stopping.wait(), interval)


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
                .where(
                    LoginSession.token_hash == digest,
                    LoginSession.expires_at > func.now(),
                    User.disabled.is_(False),
                )
            )
        ).first()
    if row is None:
        raise Unauthorized("not logged in or the session has expired")
    user, expires_at = row
    auth = AuthUser(user.id, user.email, user.is_admin, user.created_at, digest)
    await _touch(c, digest)
    await _cache(c, auth, expires_at)
    return auth


_TOUCH_SECONDS = 60.0
_touched: dict[str, float] = {}  # this process: session digest -> when "last seen" was written
_TOUCH = text(
    "WITH s AS (UPDATE login_sessions SET last_seen_at = now() WHERE token_hash = :digest "
    "RETURNING user_id) UPDATE users SET last_seen_at = now() WHERE id IN (SELECT user_id FROM s)"
)


async def _touch(c: Container, digest: str) -> None:
    """Writes when the session and its user were last seen, as fresh as the session cache
    allows (a lookup reaches here once per SESSION_CACHE_SECONDS). At most once a minute per
    session and process, so a burst of lookups (150 streams opening at once) does not queue
    on the row."""
    now = asyncio.get_running_loop().time()
    if now - _touched.get(digest, -_TOUCH_SECONDS) < _TOUCH_SECONDS:
        return
    if len(_touched) > 10_000:
        _touched.clear()
    _touched[digest] = now
    try:
        async with c.autocommit.connect() as conn:
            await conn.execute(_TOUCH, {"digest": digest})
    except SQLAlchemyError as error:
        log.warning("could not record when a session was last seen: %s", error.__class__.__name__)


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
