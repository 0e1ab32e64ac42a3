from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header
from fastapi.responses import StreamingResponse
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
    resumed: bool


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
            return StreamStart(chat_id, last_event_id.strip(), [], True)
        cursor = await c.events.last_id(chat_id)
        backlog = await c.events.current_attempts(chat_id, cursor, open_ids)
    except RedisError:
        raise Unavailable("live events are unavailable right now (Redis); retry shortly") from None
    return StreamStart(chat_id, cursor, backlog, False)


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


HEARTBEAT_SECONDS = 15.0
HEARTBEAT = b": ping\n\n"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _frame(e: Event) -> str:
    # Entry ids and event names are single-line by construction (Redis ids, our own names);
    # `data` is JSON, which has no raw line break unless a writer indented it.
    data = e.data
    if "\n" in data or "\r" in data:
        data = "\ndata: ".join(data.splitlines())
    return (
        f"id: {e.id}\nevent: {e.event}\ndata: {data}\n\n"
        if e.event
        else (f"id: {e.id}\ndata: {data}\n\n")
    )


def _frames(events: list[Event]) -> bytes:
    """The SSE wire format of a batch of entries, for one write."""
    return "".join(map(_frame, events)).encode()


async def _stream(start: StreamStart, subscription: Subscription) -> AsyncIterator[bytes]:
    if not start.resumed:
        # An id-only frame (no event is dispatched) sets the client's Last-Event-ID to where the
        # live part starts: a client that loses the connection before the next entry resumes
        # from here, instead of reconnecting without an id and missing a reply that ended
        # meanwhile (only open replies are replayed to a client without one).
        yield _frames(start.backlog) + f"id: {start.cursor}\n\n".encode()
    async for batch in subscription.batches(HEARTBEAT_SECONDS):
        yield _frames(batch) if batch else HEARTBEAT


@router.get(
    "/chats/{chat_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **JSON_ERROR_RESPONSES},
)
async def chat_events(
    start: Annotated[StreamStart, Depends(start_stream)],
    subscription: Annotated[Subscription, Depends(open_stream)],
) -> StreamingResponse:
    """Server-sent events of one chat: `message.delta`, `message.status`, `message.completed`,
    `message.reset`. Resume with the `Last-Event-ID` header. The stream ends when Redis fails,
    the server stops or the login session ends; browsers reconnect with Last-Event-ID.

    Framed here rather than by FastAPI's `EventSourceResponse`, which builds a pydantic model,
    two memory-stream hops and a timeout scope for every event and sends each on its own:
    entries that arrive together go out in one write (docs/BENCHMARKS.md)."""
    return StreamingResponse(
        _stream(start, subscription), media_type="text/event-stream", headers=STREAM_HEADERS
    )
