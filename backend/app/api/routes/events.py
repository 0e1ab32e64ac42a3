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
from app.services.event_hub import Subscription
from app.services.events import Event, is_entry_id

router = APIRouter(tags=["events"])


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


async def open_stream(
    start: Annotated[StreamStart, Depends(start_stream)], user: CurrentUser, c: ContainerDep
) -> AsyncIterator[Subscription]:
    """A place under the user's cap and a subscription to the process's shared reader, both
    given back once the response has ended."""
    try:
        slot = await c.open_streams.take(user.id)
    except RedisError:
        raise Unavailable("live events are unavailable right now (Redis); retry shortly") from None
    try:
        subscription = await c.hub.subscribe(start.chat_id, start.cursor, user.token_digest)
    except RedisError:
        await c.open_streams.give_back(slot)
        raise Unavailable("live events are unavailable right now (Redis); retry shortly") from None
    try:
        yield subscription
    finally:
        subscription.close()
        await c.open_streams.give_back(slot)


def _frame(event: Event) -> ServerSentEvent:
    return ServerSentEvent(id=event.id, event=event.event or None, raw_data=event.data)


@router.get(
    "/chats/{chat_id}/events",
    response_class=EventSourceResponse,
    responses=JSON_ERROR_RESPONSES,
)
async def chat_events(
    start: Annotated[StreamStart, Depends(start_stream)],
    subscription: Annotated[Subscription, Depends(open_stream)],
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events of one chat: `message.delta`, `message.status`, `message.completed`,
    `message.reset`. Resume with the `Last-Event-ID` header. The stream ends when Redis fails,
    the server stops or the login session ends; browsers reconnect with Last-Event-ID."""
    for event in start.backlog:
        yield _frame(event)
    async for event in subscription.events():
        yield _frame(event)
