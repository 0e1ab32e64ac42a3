"""The audit log of admin actions: who did what to whom, when. Written in the same
transaction as the action, so an action and its entry stand or fall together."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AuditEntry
from app.services.accounts import AuthUser


def record(
    db: AsyncSession, actor: AuthUser, action: str, target: str | None, **detail: Any
) -> None:
    db.add(
        AuditEntry(
            actor_id=actor.id, actor_email=actor.email, action=action, target=target, detail=detail
        )
    )


async def entries(
    db: AsyncSession, limit: int, before: int | None
) -> tuple[list[AuditEntry], int | None]:
    """Newest first; `next` is the id to pass as `before` for the page after, or None."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = list((await db.execute(query)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more else None)
