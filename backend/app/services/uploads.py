"""Uploads (docs/CONTRACTS.md, "Attachments"): stored in PostgreSQL, so the README's backup and
restore (pg_dump) covers them and no other service is needed; the worker reads the bytes there
by id (the claim check: RabbitMQ carries only ids)."""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import UploadFile
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.container import Container
from app.db.models import Message, Upload, UploadData
from app.services import file_types
from app.services.errors import Conflict, Invalid, NotFound, TooLarge

log = logging.getLogger(__name__)

MB = 1024 * 1024
MAX_PER_MESSAGE = 10
UNATTACHED_TTL = "1 day"
SWEEP_INTERVAL_SECONDS = 3600
# Uploads handled (read, decoded by Pillow or pypdf, written) at once per process; more wait,
# already spooled to disk by the form parser: 100 at once cost neither 100 files in memory nor
# 100 database connections (one user's wait on the quota lock holds one each).
_INSPECTING = asyncio.Semaphore(4)
_READ_CHUNK = 1024 * 1024


def _mb(limit: float) -> str:
    return f"{limit:g} MB"


async def _read_bounded(file: UploadFile, limit: int) -> bytes:
    chunks, total = [], 0
    while chunk := await file.read(_READ_CHUNK):
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"the file is larger than the {_mb(limit / MB)} limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def store(c: Container, db: AsyncSession, user_id: UUID, file: UploadFile) -> Upload:
    limit = c.settings.MAX_UPLOAD_MB * MB
    if file.size is not None and file.size > limit:
        raise TooLarge(f"the file is larger than the {_mb(c.settings.MAX_UPLOAD_MB)} limit")
    async with _INSPECTING:
        data = await _read_bounded(file, int(limit))
        found = await asyncio.to_thread(file_types.inspect, data, file.filename)
        return await _insert(c, db, user_id, data, found)


async def _insert(
    c: Container, db: AsyncSession, user_id: UUID, data: bytes, found: file_types.Inspected
) -> Upload:
    quota = c.settings.USER_UPLOAD_QUOTA_MB * MB
    # One user's uploads are counted and added one at a time, so parallel ones cannot overshoot.
    await db.execute(select(func.pg_advisory_xact_lock(func.hashtext(str(user_id)))))
    used = (
        await db.execute(
            select(func.coalesce(func.sum(Upload.size), 0)).where(Upload.user_id == user_id)
        )
    ).scalar_one()
    if used + len(data) > quota:
        raise TooLarge(
            f"your storage quota is full: {used / MB:.1f} MB of "
            f"{_mb(c.settings.USER_UPLOAD_QUOTA_MB)} used; delete chats with attachments first"
        )
    upload = Upload(
        user_id=user_id,
        name=found.name,
        mime_type=found.mime_type,
        size=len(data),
        sha256=found.sha256,
        send_mime_type=found.send_mime_type,
        send_size=len(found.send) if found.send is not None else len(data),
        width=found.width,
        height=found.height,
        pages=found.pages,
    )
    db.add(upload)
    await db.flush()
    db.add(
        UploadData(upload_id=upload.id, original=data, send=found.send, thumbnail=found.thumbnail)
    )
    await db.commit()
    return upload


async def _owned(db: AsyncSession, user_id: UUID, upload_id: UUID) -> Upload:
    upload = await db.get(Upload, upload_id)
    if upload is None or upload.user_id != user_id:
        raise NotFound("upload not found")
    return upload


@dataclass
class Content:
    upload: Upload
    data: bytes
    mime_type: str


async def content(db: AsyncSession, user_id: UUID, upload_id: UUID) -> Content:
    upload = await _owned(db, user_id, upload_id)
    data = (
        await db.execute(select(UploadData.original).where(UploadData.upload_id == upload_id))
    ).scalar_one()
    return Content(upload, data, upload.mime_type)


async def thumbnail(db: AsyncSession, user_id: UUID, upload_id: UUID) -> Content:
    upload = await _owned(db, user_id, upload_id)
    data = (
        await db.execute(select(UploadData.thumbnail).where(UploadData.upload_id == upload_id))
    ).scalar_one()
    if data is None:
        raise NotFound("this upload has no thumbnail (not an image)")
    return Content(upload, data, "image/webp")


async def remove(db: AsyncSession, user_id: UUID, upload_id: UUID) -> None:
    upload = await _owned(db, user_id, upload_id)
    if upload.message_id is not None:
        raise Conflict("this upload is attached to a message; delete the chat to remove it")
    await db.delete(upload)
    await db.commit()


_CLAIM = text(
    """
    UPDATE uploads SET chat_id = :chat_id, message_id = :message_id
    WHERE id = ANY(:ids) AND user_id = :user_id AND message_id IS NULL
    RETURNING id, name, mime_type, size, send_mime_type, send_size
    """
)
_RELEASE = text("UPDATE uploads SET chat_id = NULL, message_id = NULL WHERE message_id = :id")


async def claim(
    c: Container,
    conn: Any,
    user_id: UUID,
    chat_id: UUID,
    message_id: UUID,
    ids: Sequence[UUID],
) -> list[Any]:
    """Attach the user's uploads `ids` to the message about to be written (one UPDATE): each
    at most once, by its owner only. All or none: on any refusal none stays claimed."""
    if len(set(ids)) != len(ids):
        raise Invalid("attachments: an upload is listed twice")
    if len(ids) > MAX_PER_MESSAGE:
        raise Invalid(f"attachments: at most {MAX_PER_MESSAGE} files per message")
    params = {"chat_id": chat_id, "message_id": message_id, "ids": list(ids), "user_id": user_id}
    rows = (await conn.execute(_CLAIM, params)).all()
    order = {upload_id: i for i, upload_id in enumerate(ids)}
    rows.sort(key=lambda r: order[r.id])
    total = sum(r.size for r in rows)
    problem: Exception | None = None
    if len(rows) != len(ids):
        problem = NotFound("attachments: an upload was not found or is attached already")
    elif total > c.settings.MAX_MESSAGE_UPLOADS_MB * MB:
        problem = TooLarge(
            f"attachments: {total / MB:.1f} MB together; at most "
            f"{_mb(c.settings.MAX_MESSAGE_UPLOADS_MB)} per message"
        )
    if problem is not None:
        await release(conn, message_id)
        raise problem
    return rows


async def release(conn: Any, message_id: UUID) -> None:
    await conn.execute(_RELEASE, {"id": message_id})


async def of_messages(db: AsyncSession, chat_id: UUID) -> dict[UUID, list[dict]]:
    """The attachments of a chat's messages, by message id (one query)."""
    query = (
        select(Upload.id, Upload.message_id, Upload.name, Upload.mime_type, Upload.size)
        .where(Upload.chat_id == chat_id, Upload.message_id.is_not(None))
        .order_by(Upload.created_at, Upload.id)
    )
    found: dict[UUID, list[dict]] = defaultdict(list)
    for row in await db.execute(query):
        found[row.message_id].append(
            {"id": row.id, "name": row.name, "mime_type": row.mime_type, "size": row.size}
        )
    return found


def public(row: Any) -> dict:
    return {"id": row.id, "name": row.name, "mime_type": row.mime_type, "size": row.size}


def for_request(rows: Sequence[Any]) -> list[dict]:
    """What a queued request carries of each attachment: a reference, never the bytes."""
    return [{"id": str(r.id), "mime_type": r.send_mime_type, "size": r.send_size} for r in rows]


async def sweep(c: Container) -> int:
    """Deletes uploads never attached after a day, and claims whose message was never written
    (a send that failed between its claim and its insert)."""
    old = func.now() - text(f"interval '{UNATTACHED_TTL}'")
    orphan = ~select(Message.id).where(Message.id == Upload.message_id).exists()
    query = delete(Upload).where(Upload.created_at < old, (Upload.message_id.is_(None)) | orphan)
    async with c.sessionmaker() as db:
        result = await db.execute(query)
        await db.commit()
    return result.rowcount or 0


async def sweep_forever(c: Container) -> None:
    while not c.stopping.is_set():
        try:
            removed = await sweep(c)
            if removed:
                log.info("removed %d unattached uploads", removed)
        except Exception as error:  # the database may be down; try again next round
            log.warning("upload sweep failed: %s", error.__class__.__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(c.stopping.wait(), SWEEP_INTERVAL_SECONDS)
