"""Usage reports from the `usage_daily` ledger: a user's own days, and everyone's for admins."""

import uuid
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import UsageDaily, User
from app.services import quotas
from app.services.errors import NotFound

GroupBy = Literal["user", "model", "key"]


def _since(days: int):
    return quotas.today() - timedelta(days=days - 1)


def _totals():
    return (
        func.sum(UsageDaily.messages).label("messages"),
        func.sum(UsageDaily.replies).label("replies"),
        func.sum(UsageDaily.prompt_tokens).label("prompt_tokens"),
        func.sum(UsageDaily.completion_tokens).label("completion_tokens"),
    )


def _day(row: Any) -> dict[str, Any]:
    return {
        "date": row.day.isoformat(),
        "model": row.model,
        "messages": int(row.messages),
        "prompt_tokens": int(row.prompt_tokens),
        "completion_tokens": int(row.completion_tokens),
    }


def _resets_at() -> str:
    return quotas.next_reset().isoformat()


async def own(db: AsyncSession, user_id: uuid.UUID, days: int) -> dict[str, Any]:
    """The user's last `days` UTC days by model, today's totals and the limits they meet."""
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    query = (
        select(UsageDaily.day, UsageDaily.model, *_totals())
        .where(UsageDaily.user_id == user_id, UsageDaily.day >= _since(days))
        .group_by(UsageDaily.day, UsageDaily.model)
        .order_by(UsageDaily.day, UsageDaily.model)
    )
    rows = (await db.execute(query)).all()
    return {
        "days": [_day(row) for row in rows],
        "today": (await quotas.usage_today(db, [user_id]))[user_id],
        "limits": quotas.limits_of(user),
        "resets_at": _resets_at(),
    }


async def everyone(db: AsyncSession, days: int, group_by: GroupBy) -> dict[str, Any]:
    """Everyone's last `days` by date and model, and by user or key when asked. By key, the
    questions (counted before any key answers) are left out and `messages` counts the replies
    each key gave."""
    since = _since(days)
    groups: list[Any] = [UsageDaily.day, UsageDaily.model]
    query = select(*_totals()).select_from(UsageDaily).where(UsageDaily.day >= since)
    if group_by == "user":
        groups += [UsageDaily.user_id, User.email]
        query = query.join(User, User.id == UsageDaily.user_id)
    elif group_by == "key":
        groups.append(UsageDaily.key_id)
        query = query.where(UsageDaily.key_id != "")
    query = query.add_columns(*groups).group_by(*groups).order_by(*groups)
    found = []
    for row in (await db.execute(query)).all():
        item = _day(row)
        if group_by == "user":
            item.update(user_id=str(row.user_id), email=row.email)
        elif group_by == "key":
            item.update(key_id=row.key_id, messages=int(row.replies))
        found.append(item)
    return {"group_by": group_by, "days": found, "resets_at": _resets_at()}
