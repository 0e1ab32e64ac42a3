from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header
from fastapi.sse import EventSourceResponse, ServerSentEvent
from redis.exceptions import RedisError
from sqlalchemy import and_, select

from app.api.deps import ContainerDep, CurrentUser
from app.api.schemas import JSON_ERROR_RESPONSES
from app.db.models import FINAL_STATUSES, Chat, Message
from app.services.errors import Invalid, NotFound, Unavailable
from app.services.events import Event, is_entry_id

router = APIRouter(tags=["events"])

FOLLOW_BLOCK_MS = 1_000  # also how long a stop signal may wait for an idle stream


@dataclass
class StreamStart:
    chat_id: UUID
    cursor: str
    backlog: list[Event]


async def start_stream(
    chat_id: UUID,
    user: CurrentUser,
    c: ContainerDep,
    last_event_id: Annotated[
        str | None, Header(description="a stream entry id to resume after")
    ] = None,
) -> StreamStart:
    """Everything that can fail with a 4xx/503 happens here, before the stream opens."""
    if last_event_id is not None and not is_entry_id(last_event_id.strip()):
        raise Invalid("Last-Event-ID: not an event id of this stream")
    # One round trip: the chat's owner check and its open replies.
    query = (
        select(Message.id)
        .select_from(Chat)
        .outerjoin(
            Message,
            and_(
                Message.chat_id == Chat.id,
                Message.role == "assistant",
                Message.status.not_in(FINAL_STATUSES),
            ),
        )
        .where(Chat.id == chat_id, Chat.user_id == user.id)
    )
    async with c.autocommit.connect() as conn:
        rows = (await conn.execute(query)).all()
    if not rows:
        raise NotFound("chat not found")
    open_ids = {str(row.id) for row in rows if row.id is not None}
    try:
        if last_event_id:
            return StreamStart(chat_id, last_event_id.strip(), [])
        cursor = await c.events.last_id(chat_id)
        backlog = await c.events.current_attempts(chat_id, cursor, open_ids)
    except RedisError:
        raise Unavailable("live events are unavailable right now (Redis); retry shortly") from None
    return StreamStart(chat_id, cursor, backlog)


def _frame(event: Event) -> ServerSentEvent:
    return ServerSentEvent(id=event.id, event=event.event or None, raw_data=event.data)


@router.get(
    "/chats/{chat_id}/events",
    response_class=EventSourceResponse,
    responses=JSON_ERROR_RESPONSES,
)
async def chat_events(
    start: Annotated[StreamStart, Depends(start_stream)], c: ContainerDep
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events of one chat: `message.delta`, `message.status`, `message.completed`,
    `message.reset`. Resume with the `Last-Event-ID` header."""
    for event in start.backlog:
        yield _frame(event)
    try:
        async for event in c.events.follow(
            start.chat_id, start.cursor, FOLLOW_BLOCK_MS, c.stopping
        ):
            yield _frame(event)
    except RedisError:
        # Ending the stream makes the browser reconnect with Last-Event-ID once Redis is back.
        return
