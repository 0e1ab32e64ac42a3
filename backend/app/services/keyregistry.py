"""Keys managed live from the admin page (docs/CONTRACTS.md, "Key pool v2").

PostgreSQL (`gemini_keys`) keeps the durable copy, with the key text only as a Fernet token;
Redis carries it to the workers (`keys:registry`, `keys:index`, `keys:removed`, the
`admin_disabled` flag) and every change bumps `keys:registry:version`, which they poll."""

import asyncio
import json
import logging

from redis.exceptions import RedisError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.core.container import Container
from app.core.keycrypt import fernet, key_id, key_label
from app.db.models import GeminiKey
from app.services import keyprobe
from app.services.errors import Conflict, Invalid, NotFound, Unavailable

log = logging.getLogger(__name__)

RESTORE_CHECK_SECONDS = 10.0
RESTORE_RETRY_SECONDS = 1.0


def _entry(row: GeminiKey) -> str:
    return json.dumps(
        {"token": row.token, "label": row.label, "added_at": row.created_at.timestamp()}
    )


async def _exists(c: Container, kid: str) -> tuple[bool, bool]:
    """(known to the pool and not removed, stored in PostgreSQL)."""
    async with c.redis.pipeline(transaction=False) as pipe:
        pipe.hexists(c.keys.keys_index, kid)
        pipe.sismember(c.keys.keys_removed, kid)
        in_index, removed = await pipe.execute()
    async with c.sessionmaker() as db:
        stored = await db.get(GeminiKey, kid) is not None
    return (bool(in_index) and not removed) or stored, stored


async def add(c: Container, key: str, label: str | None) -> str:
    key = key.strip()
    # It travels in an HTTP header: printable ASCII only (Google's keys are letters, digits, - _).
    if not key or not key.isascii() or not key.isprintable() or " " in key:
        raise Invalid("key: must be one Gemini API key: letters, digits and - _, without spaces")
    kid = key_id(key)
    known, _ = await _exists(c, kid)
    if known:
        raise Conflict(f"this key is already in the pool (key {kid})")
    result = await keyprobe.probe(c.settings, key, c.settings.GEMINI_MODEL)
    if result.unreachable:
        raise Unavailable("the key could not be checked: Google did not answer; try again")
    if not result.ok:
        reason = keyprobe.REASON_TEXT.get(result.reason or "", "Google rejected the key")
        raise Invalid(f"Google rejected the key: {reason} ({result.detail})")
    row = GeminiKey(
        id=kid,
        label=(label or "").strip() or key_label(key),
        token=fernet(c.settings.SECRET_KEY).encrypt(key.encode()).decode(),
        disabled=False,
    )
    async with c.sessionmaker() as db:
        db.add(row)
        try:
            await db.commit()
        except IntegrityError:
            raise Conflict(f"this key is already in the pool (key {kid})") from None
        await db.refresh(row)
    try:
        async with c.redis.pipeline(transaction=True) as pipe:
            pipe.hset(c.keys.keys_registry, kid, _entry(row))
            pipe.hset(c.keys.keys_index, kid, row.label)
            pipe.hset(c.keys.key(kid), mapping={"label": row.label, "admin_disabled": "0"})
            pipe.srem(c.keys.keys_removed, kid)
            pipe.incr(c.keys.keys_registry_version)
            await pipe.execute()
    except RedisError:
        # Not in the workers' reach: undo, so the admin's retry is not told "already there".
        async with c.sessionmaker() as db:
            await db.execute(delete(GeminiKey).where(GeminiKey.id == kid))
            await db.commit()
        raise
    log.info("key %s added to the pool", kid)
    return kid


async def update(c: Container, kid: str, label: str | None, disabled: bool | None) -> None:
    known, stored = await _exists(c, kid)
    if not known:
        raise NotFound("key not found")
    if stored:
        async with c.sessionmaker() as db:
            row = await db.get(GeminiKey, kid)
            if row is None:
                raise NotFound("key not found")
            if label is not None:
                row.label = label.strip() or row.label
            if disabled is not None:
                row.disabled = disabled
            await db.commit()
            await db.refresh(row)
            entry = _entry(row)
    fields = {}
    if label is not None and label.strip():
        fields["label"] = label.strip()
    if disabled is not None:
        fields["admin_disabled"] = "1" if disabled else "0"
    async with c.redis.pipeline(transaction=True) as pipe:
        if fields:
            pipe.hset(c.keys.key(kid), mapping=fields)
        if "label" in fields:
            pipe.hset(c.keys.keys_index, kid, fields["label"])
        if stored:
            pipe.hset(c.keys.keys_registry, kid, entry)
        pipe.incr(c.keys.keys_registry_version)
        await pipe.execute()
    log.info("key %s changed: %s", kid, ", ".join(sorted(fields)) or "nothing")


async def remove(c: Container, kid: str) -> None:
    known, stored = await _exists(c, kid)
    if not known:
        raise NotFound("key not found")
    if stored:
        async with c.sessionmaker() as db:
            await db.execute(delete(GeminiKey).where(GeminiKey.id == kid))
            await db.commit()
    async with c.redis.pipeline(transaction=True) as pipe:
        pipe.sadd(c.keys.keys_removed, kid)
        pipe.hdel(c.keys.keys_registry, kid)
        pipe.hdel(c.keys.keys_index, kid)
        pipe.incr(c.keys.keys_registry_version)
        await pipe.execute()
    log.info("key %s removed from the pool", kid)


async def restore(c: Container) -> int:
    """Write PostgreSQL's keys back to Redis (at start, and after Redis lost its data)."""
    async with c.sessionmaker() as db:
        rows = list((await db.execute(select(GeminiKey))).scalars())
    async with c.redis.pipeline(transaction=True) as pipe:
        for row in rows:
            pipe.hset(c.keys.keys_registry, row.id, _entry(row))
            pipe.hset(c.keys.keys_index, row.id, row.label)
            pipe.hset(
                c.keys.key(row.id),
                mapping={"label": row.label, "admin_disabled": "1" if row.disabled else "0"},
            )
            pipe.srem(c.keys.keys_removed, row.id)
        pipe.incr(c.keys.keys_registry_version)
        await pipe.execute()
    return len(rows)


async def restore_forever(c: Container) -> None:
    """Restore at start, then whenever the version counter is gone (Redis lost its data)."""
    restored = False
    while not c.stopping.is_set():
        try:
            if not restored or not await c.redis.exists(c.keys.keys_registry_version):
                count = await restore(c)
                if count or not restored:
                    log.info("key registry written to Redis: %d admin key(s)", count)
                restored = True
        except (RedisError, SQLAlchemyError, OSError) as error:
            log.warning("key registry not written to Redis yet: %s", error.__class__.__name__)
        try:
            pause = RESTORE_CHECK_SECONDS if restored else RESTORE_RETRY_SECONDS
            await asyncio.wait_for(c.stopping.wait(), pause)
        except TimeoutError:
            pass
