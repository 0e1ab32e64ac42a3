"""Per-user daily limits and today's use (the interface the admin users list reads).

The quotas feature owns this module; this is its plainest form: today's use counted from
the messages table (UTC day), limits from the user's override attributes when the schema has
them, else the settings' defaults."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from app.db.models import Chat, Message, User

LIMIT_NAMES = ("messages_per_day", "tokens_per_day")


async def usage_today(session: AsyncSession, user_ids: list[UUID]) -> dict[UUID, dict[str, int]]:
    """{user_id: {"messages": sent today, "tokens": prompt + reply tokens today}}."""
    usage = {user_id: {"messages": 0, "tokens": 0} for user_id in user_ids}
    if not user_ids:
        return usage
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    tokens = func.coalesce(Message.prompt_tokens, 0) + func.coalesce(Message.completion_tokens, 0)
    query = (
        select(
            Chat.user_id,
            func.count().filter(Message.role == "user"),
            cast(func.coalesce(func.sum(case((Message.role == "assistant", tokens))), 0), Integer),
        )
        .join(Message, Message.chat_id == Chat.id)
        .where(Chat.user_id.in_(user_ids), Message.created_at >= day)
        .group_by(Chat.user_id)
    )
    for user_id, messages, used in (await session.execute(query)).all():
        usage[user_id] = {"messages": messages, "tokens": used}
    return usage


def limits_of(user: User) -> dict[str, int | None]:
    settings = get_settings()
    defaults = {
        "messages_per_day": getattr(settings, "USER_MESSAGES_PER_DAY", None),
        "tokens_per_day": getattr(settings, "USER_TOKENS_PER_DAY", None),
    }
    limits: dict[str, int | None] = {}
    for name in LIMIT_NAMES:
        own = getattr(user, name, None)
        limits[name] = own if own is not None else defaults[name]
    return limits


async def set_limits(session: AsyncSession, user: User, limits: dict[str, Any]) -> None:
    for name in LIMIT_NAMES:
        if name in limits:
            setattr(user, name, limits[name])
