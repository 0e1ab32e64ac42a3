"""Many open event streams on one backend process, the per-user cap on them, and a session
revoked while its stream is open."""

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import Api, RunNames, Server, SseStream, WorkerRole, register

STREAMS = 150  # past the 100 connections of redis-py's default pool
USER_CAP = 40
RECHECK_SECONDS = 2


@pytest.fixture(scope="module")
def roomy(run: RunNames, worker: WorkerRole, logs) -> Iterator[Server]:
    """A backend of its own: a high per-user cap, and sessions rechecked every few seconds."""
    backend = Server(
        run.env(
            USER_MAX_OPEN_STREAMS=USER_CAP,
            STREAM_SESSION_CHECK_SECONDS=RECHECK_SECONDS,
            USER_MESSAGES_PER_MINUTE=0,
        ),
        logs,
    )
    try:
        yield backend.wait_ready()
    finally:
        backend.stop()


async def _open_idle_streams(users: list[Api], chats: list[str], per_user: int) -> list:
    """`per_user` streams for each user, each kept open and read by a task; returns them all."""
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(10, read=None), limits=httpx.Limits(max_connections=None)
    )
    opened = []

    async def one(user: Api, chat_id: str) -> None:
        context = client.stream(
            "GET",
            f"{user.url}/api/chats/{chat_id}/events",
            headers={"Authorization": f"Bearer {user.token}"},
        )
        response = await context.__aenter__()
        opened.append((context, response))

    await asyncio.gather(
        *(one(user, chats[u]) for u, user in enumerate(users) for _ in range(per_user))
    )
    return [client, opened]


def test_a_live_reply_reaches_a_stream_opened_after_150_others(
    roomy: Server, worker: WorkerRole
) -> None:
    users = [register(roomy.url) for _ in range(STREAMS // USER_CAP + 1)]
    chats = [user.new_chat()["id"] for user in users]
    loop = asyncio.new_event_loop()
    per_user = STREAMS // len(users) + 1
    client, opened = loop.run_until_complete(_open_idle_streams(users, chats, per_user))
    try:
        assert len(opened) >= STREAMS
        statuses = sorted({response.status_code for _, response in opened})
        assert statuses == [200], statuses
        # One more stream, then a reply in its chat: it arrives live.
        late = Api(roomy.url, users[0].token)
        chat = late.new_chat()["id"]
        stream = SseStream(late, chat)
        try:
            reply = late.send(chat, "still live?")["assistant_message"]
            request, _ = worker.take_request(reply["id"])
            worker.streaming(chat, reply["id"])
            worker.delta(chat, reply["id"], 0, "yes")
            started = time.monotonic()
            events = stream.until(lambda e: e["event"] == "message.delta")
            assert time.monotonic() - started < 2
            assert events[-1]["data"]["text"] == "yes"
            worker.respond(request, "completed", "yes")
        finally:
            stream.close()
        # And every one of the idle streams still hears its own chat.
        entry = worker.emit(chats[1], "message.status", {"message_id": "x", "status": "pending"})

        async def heard(response: httpx.Response) -> str:
            """The id of the first event (past the id-only frame a stream opens with)."""
            entry_id = ""
            async for line in response.aiter_lines():
                if line.startswith("id:"):
                    entry_id = line.partition(":")[2].strip()
                elif line.startswith("event:"):
                    return entry_id
            return ""

        mine = [r for _, r in opened if str(chats[1]) in str(r.request.url)]

        async def all_heard() -> list[str]:
            return await asyncio.wait_for(asyncio.gather(*(heard(r) for r in mine)), 10)

        got = loop.run_until_complete(all_heard())
        assert got == [entry] * len(mine)
    finally:

        async def close() -> None:
            for context, _ in opened:
                await context.__aexit__(None, None, None)
            await client.aclose()

        loop.run_until_complete(close())
        loop.close()


def test_streams_past_the_per_user_cap_answer_429(roomy: Server) -> None:
    user = register(roomy.url)
    other = register(roomy.url)
    chat = user.new_chat()["id"]
    streams = [SseStream(user, chat) for _ in range(USER_CAP)]
    try:
        assert all(s.response.status_code == 200 for s in streams)
        over = user.get(f"/chats/{chat}/events")
        assert over.status_code == 429, over.text
        assert "open" in over.json()["detail"] and over.headers["Retry-After"]
        # Another user is not affected.
        theirs = SseStream(other, other.new_chat()["id"])
        assert theirs.response.status_code == 200
        theirs.close()
        # A closed stream frees its place.
        streams.pop().close()

        def reopened() -> bool:
            s = SseStream(user, chat)
            if s.response.status_code == 200:
                streams.append(s)
                return True
            s.close()
            return False

        from tests.support import wait_for

        wait_for(reopened, "a place to free up after a stream closed", timeout=10, interval=0.2)
    finally:
        for s in streams:
            s.close()


def test_a_stream_ends_soon_after_its_session_is_logged_out(roomy: Server) -> None:
    user = register(roomy.url)
    chat = user.new_chat()["id"]
    stream = SseStream(user, chat, read_timeout=RECHECK_SECONDS * 3 + 20)
    try:
        assert stream.response.status_code == 200
        # The same session logged out from another client (another tab, another device).
        elsewhere = Api(roomy.url, user.token)
        assert elsewhere.post("/auth/logout").status_code in (200, 204)
        started = time.monotonic()
        with pytest.raises(AssertionError, match="event stream ended"):
            while True:
                stream.next()
        assert time.monotonic() - started < RECHECK_SECONDS * 3 + 5
        assert user.get(f"/chats/{chat}/events").status_code == 401
    finally:
        stream.close()


def test_events_json_is_passed_through(roomy: Server, worker: WorkerRole) -> None:
    """An entry the worker wrote arrives with its data unchanged through the shared reader."""
    user = register(roomy.url)
    chat = user.new_chat()["id"]
    stream = SseStream(user, chat)
    try:
        data = {"message_id": "m", "seq": 0, "text": "é \u2028 ok"}
        entry = worker.emit(chat, "message.delta", data)
        event = stream.next()
        assert event["id"] == entry and event["data"] == json.loads(json.dumps(data))
    finally:
        stream.close()


def test_streams_of_one_chat_resume_each_from_their_own_event(
    roomy: Server, worker: WorkerRole
) -> None:
    """One shared read per chat, yet each stream gets exactly the entries after its own
    Last-Event-ID, then the live ones, with no gap and nothing twice."""
    user = register(roomy.url)
    chat = user.new_chat()["id"]
    first = SseStream(user, chat)
    later = None
    try:
        ids = [worker.delta(chat, "m", seq, text) for seq, text in enumerate(["a", "b", "c"])]
        assert [e["id"] for e in first.take(3)] == ids
        later = SseStream(user, chat, last_event_id=ids[0])
        live = worker.delta(chat, "m", 3, "d")
        assert [e["id"] for e in later.take(3)] == [*ids[1:], live]
        assert first.next()["id"] == live
    finally:
        first.close()
        if later is not None:
            later.close()
