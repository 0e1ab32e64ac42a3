"""GET /api/chats/{id}/events read through a real HTTP connection."""

import time

from tests.support import Api, SseStream, WorkerRole

HEARTBEAT_SECONDS = 15  # docs/CONTRACTS.md, "Event stream"


def _text(events: list[dict], message_id: str) -> str:
    return "".join(
        e["data"]["text"]
        for e in events
        if e["event"] == "message.delta" and e["data"]["message_id"] == message_id
    )


def test_live_events_of_one_reply(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat()
    stream = SseStream(alice, chat["id"])
    try:
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert stream.response.headers["cache-control"] == "no-cache"
        reply = alice.send(chat["id"], "hi")["assistant_message"]
        pending = stream.next()
        assert pending["event"] == "message.status"
        assert pending["data"] == {
            "message_id": reply["id"],
            "parent_id": reply["parent_id"],
            "status": "pending",
            "attempt": 0,
            "next_attempt_at": None,
            "error": None,
        }
        assert pending["id"]
        request, _ = worker.take_request(reply["id"])
        worker.streaming(chat["id"], reply["id"])
        for seq, text in enumerate(["Echo", ": ", "hi"]):
            worker.delta(chat["id"], reply["id"], seq, text)
        worker.respond(request, "completed", "Echo: hi")
        events = stream.until(lambda e: e["event"] == "message.completed")
    finally:
        stream.close()
    assert [e["event"] for e in events] == ["message.status"] + ["message.delta"] * 3 + [
        "message.completed"
    ]
    assert _text(events, reply["id"]) == "Echo: hi"
    completed = events[-1]["data"]["message"]
    assert completed["id"] == reply["id"] and completed["status"] == "completed"
    assert completed["content"] == "Echo: hi" and completed["completion_tokens"] == 22
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)


def test_joining_mid_reply_gives_the_text_so_far_then_live(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat()
    # An earlier, finished reply: its events are not replayed to a new connection.
    old = alice.send(chat["id"], "first")["assistant_message"]
    request, _ = worker.take_request(old["id"])
    worker.streaming(chat["id"], old["id"])
    worker.delta(chat["id"], old["id"], 0, "old text")
    worker.respond(request, "completed", "old text")
    alice.wait_status(chat["id"], old["id"], "completed")

    reply = alice.send(chat["id"], "second")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    # A first attempt that failed after streaming, then the current attempt.
    worker.streaming(chat["id"], reply["id"])
    worker.delta(chat["id"], reply["id"], 0, "discarded ")
    worker.streaming(chat["id"], reply["id"], attempt=1)
    worker.emit(chat["id"], "message.reset", {"message_id": reply["id"]})
    worker.delta(chat["id"], reply["id"], 0, "Once ")
    worker.delta(chat["id"], reply["id"], 1, "upon ")

    stream = SseStream(alice, chat["id"])
    try:
        backlog = stream.take(4)
        assert [e["event"] for e in backlog] == [
            "message.status",
            "message.reset",
            "message.delta",
            "message.delta",
        ]
        assert backlog[0]["data"]["status"] == "streaming" and backlog[0]["data"]["attempt"] == 1
        worker.delta(chat["id"], reply["id"], 2, "a time")
        worker.respond(request, "completed", "Once upon a time")
        live = stream.until(lambda e: e["event"] == "message.completed")
    finally:
        stream.close()
    events = backlog + live
    assert _text(events, reply["id"]) == "Once upon a time"
    assert all(e["data"].get("message_id") != old["id"] for e in events[:-1])
    seqs = [e["data"]["seq"] for e in events if e["event"] == "message.delta"]
    assert seqs == [0, 1, 2]


def test_last_event_id_resumes_exactly_after_that_event(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "count")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    worker.streaming(chat["id"], reply["id"])
    for seq in range(3):
        worker.delta(chat["id"], reply["id"], seq, f"{seq} ")

    first = SseStream(alice, chat["id"])
    try:
        seen = first.until(lambda e: e["event"] == "message.delta" and e["data"]["seq"] == 1)
    finally:
        first.close()  # the connection drops after seq 1
    for seq in range(3, 5):
        worker.delta(chat["id"], reply["id"], seq, f"{seq} ")

    resumed = SseStream(alice, chat["id"], last_event_id=seen[-1]["id"])
    try:
        worker.respond(request, "completed", "0 1 2 3 4 ")
        rest = resumed.until(lambda e: e["event"] == "message.completed")
    finally:
        resumed.close()
    seqs = [e["data"]["seq"] for e in seen + rest if e["event"] == "message.delta"]
    assert seqs == [0, 1, 2, 3, 4]
    assert _text(seen + rest, reply["id"]) == "0 1 2 3 4 "


def test_a_stream_opens_with_where_to_resume(alice: Api, worker: WorkerRole) -> None:
    """A client whose connection drops before any event arrives still resumes exactly: the
    stream's first frame gives it an id. Without one, a reply that ended while it was away would
    not be replayed (a client without an id gets only the replies still open)."""
    chat = alice.new_chat()
    earlier = alice.send(chat["id"], "before")["assistant_message"]
    request, _ = worker.take_request(earlier["id"])
    worker.respond(request, "completed", "earlier")
    alice.wait_status(chat["id"], earlier["id"], "completed")

    first = SseStream(alice, chat["id"])
    try:
        opening = first.next_line()
        assert opening.startswith("id: ") and first.next_line() == ""  # an id, no event
    finally:
        first.close()  # dropped before the next entry
    reply = alice.send(chat["id"], "while away")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    worker.streaming(chat["id"], reply["id"])
    worker.delta(chat["id"], reply["id"], 0, "all done")
    worker.respond(request, "completed", "all done")
    alice.wait_status(chat["id"], reply["id"], "completed")

    resumed = SseStream(alice, chat["id"], last_event_id=opening.removeprefix("id: "))
    try:
        events = resumed.until(lambda e: e["event"] == "message.completed")
    finally:
        resumed.close()
    assert [e["event"] for e in events] == [
        "message.status",
        "message.status",
        "message.delta",
        "message.completed",
    ]
    assert {e["data"].get("message_id") for e in events[:3]} == {reply["id"]}
    assert events[-1]["data"]["message"]["content"] == "all done"


def test_retry_resets_the_text_on_screen(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "hi")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    # A stopped reply is tried again in place (a completed one gets a new sibling instead).
    worker.respond(request, "cancelled", "first half")
    alice.wait_status(chat["id"], reply["id"], "cancelled")
    stream = SseStream(alice, chat["id"])
    try:
        assert alice.post(f"/chats/{chat['id']}/messages/{reply['id']}/retry").status_code == 202
        reset, pending = stream.take(2)
    finally:
        stream.close()
    assert reset == {
        "id": reset["id"],
        "event": "message.reset",
        "data": {"message_id": reply["id"], "parent_id": reply["parent_id"]},
    }
    assert pending["data"]["status"] == "pending"


def test_bad_last_event_id_and_other_users(alice: Api, bob: Api) -> None:
    chat = alice.new_chat()
    bad = alice.get(f"/chats/{chat['id']}/events", headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 422
    huge = alice.get(f"/chats/{chat['id']}/events", headers={"Last-Event-ID": "9" * 21})
    assert huge.status_code == 422
    assert "Last-Event-ID" in bad.json()["detail"]
    assert bob.get(f"/chats/{chat['id']}/events").status_code == 404


def test_an_idle_stream_gets_a_heartbeat_so_proxies_keep_it_open(alice: Api) -> None:
    chat = alice.new_chat()
    stream = SseStream(alice, chat["id"], read_timeout=HEARTBEAT_SECONDS + 10)
    try:
        # The opening frame says where to resume: this new chat's stream is still empty.
        assert [stream.next_line(), stream.next_line()] == ["id: 0-0", ""]
        started = time.monotonic()
        first = stream.next_line()  # nothing happens in this chat: only a heartbeat can come
        waited = time.monotonic() - started
    finally:
        stream.close()
    assert first.startswith(":"), first
    assert waited < HEARTBEAT_SECONDS + 5
