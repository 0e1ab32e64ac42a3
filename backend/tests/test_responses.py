"""The response consumer applies each worker response once, by request_id, whatever the order."""

import json

from tests.support import Api, RunNames, SseStream, WorkerRole, wait_for


def _events(worker: WorkerRole, run: RunNames, chat_id: str) -> list[tuple[str, dict]]:
    entries = worker.redis.xrange(f"{run.prefix}events:{chat_id}")
    return [(fields["event"], json.loads(fields["data"])) for _, fields in entries]


def _pending_reply(alice: Api, worker: WorkerRole) -> tuple[dict, dict]:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "hello")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    return chat, request


def test_the_same_response_twice_is_applied_once(
    alice: Api, worker: WorkerRole, run: RunNames
) -> None:
    chat, request = _pending_reply(alice, worker)
    stream = SseStream(alice, chat["id"])
    try:
        # The backend handles deliveries concurrently: the row lock decides, not the order.
        worker.respond(request, "completed", "Echo: hello")
        worker.respond(request, "completed", "Echo: hello")
        stored = alice.wait_status(chat["id"], request["message_id"], "completed")
        events = stream.until(lambda e: e["event"] == "message.completed")
    finally:
        stream.close()
    wait_for(worker.responses_settled, "every response to be acked")
    assert stored["content"] == events[-1]["data"]["message"]["content"] == "Echo: hello"
    completed = [e for e, _ in _events(worker, run, chat["id"]) if e == "message.completed"]
    assert len(completed) == 1
    assert alice.message(chat["id"], request["message_id"]) == stored


def test_late_and_out_of_order_responses_never_undo_a_later_state(
    alice: Api, worker: WorkerRole, run: RunNames
) -> None:
    chat, request = _pending_reply(alice, worker)
    message_id = request["message_id"]
    error = {"code": "upstream_unavailable", "message": "Gemini is overloaded", "retryable": True}
    worker.respond(
        request, "retrying", attempt=2, error=error, next_attempt_at="2030-01-01T00:00:00Z"
    )
    retrying = alice.wait_status(chat["id"], message_id, "retrying")
    assert (retrying["attempt"], retrying["error"]) == (2, "Gemini is overloaded")
    assert retrying["next_attempt_at"].startswith("2030-01-01T00:00:00")

    worker.respond(request, "retrying", attempt=1, error=error)  # an older attempt's news
    wait_for(worker.responses_settled, "the older retrying to be handled")
    assert alice.message(chat["id"], message_id) == retrying

    worker.respond(request, "failed", attempt=4, error={**error, "message": "gave up"})
    failed = alice.wait_status(chat["id"], message_id, "failed")
    assert (failed["error"], failed["attempt"], failed["content"]) == ("gave up", 4, "")

    # After a final status, nothing changes it.
    worker.respond(request, "completed", "too late")
    worker.respond(request, "retrying", attempt=5, error=error)
    worker.respond(request, "cancelled", "nope")
    wait_for(worker.responses_settled, "the late responses to be handled")
    assert alice.message(chat["id"], message_id) == failed
    statuses = [d["status"] for e, d in _events(worker, run, chat["id"]) if e == "message.status"]
    assert statuses == ["pending", "retrying", "failed"]


def test_a_response_for_an_unknown_request_changes_nothing(
    alice: Api, worker: WorkerRole, run: RunNames
) -> None:
    chat, request = _pending_reply(alice, worker)
    stranger = {**request, "request_id": "11111111-1111-4111-8111-111111111111"}
    worker.respond(stranger, "completed", "not for you")
    wait_for(worker.responses_settled, "every response to be acked")
    assert alice.message(chat["id"], request["message_id"])["status"] == "pending"


def test_an_unreadable_response_is_dead_lettered_with_its_reason(
    alice: Api, worker: WorkerRole, run: RunNames
) -> None:
    chat, request = _pending_reply(alice, worker)
    worker.publish(b"{not json", message_id="garbage-1")
    worker.publish(json.dumps({**request, "v": 2, "status": "completed"}).encode(), message_id="v2")
    parked: list = []
    wait_for(lambda: parked.extend(worker.dead_letters()) or len(parked) == 2, "two dead letters")
    assert {m.message_id for m in parked} == {"garbage-1", "v2"}
    assert all(m.headers["x-reason"].startswith("unreadable response") for m in parked)
    # The one that names its request fails that reply: nothing else would ever answer it.
    failed = alice.wait_status(chat["id"], request["message_id"], "failed")
    assert "could not be read" in failed["error"]
    # The consumer goes on with the next good response.
    chat, request = _pending_reply(alice, worker)
    worker.respond(request, "completed", "fine")
    assert alice.wait_status(chat["id"], request["message_id"], "completed")["content"] == "fine"


def test_a_response_that_can_never_be_stored_fails_the_reply(
    alice: Api, worker: WorkerRole
) -> None:
    """PostgreSQL refuses U+0000: retrying would hold the reply, the chat and a consumer slot
    forever. The reply fails, saying why, and the response is parked with its reason."""
    chat, request = _pending_reply(alice, worker)
    worker.respond(request, "completed", "Echo: a\u0000b")
    failed = alice.wait_status(chat["id"], request["message_id"], "failed")
    assert "could not be saved" in failed["error"] and "NUL" in failed["error"]
    assert failed["content"] == ""
    wait_for(worker.responses_settled, "the response to be acked")
    dead = wait_for(worker.dead_letters, "the dead-lettered response")
    assert json.loads(dead[0].body)["request_id"] == request["request_id"]
    assert "could not be stored" in dead[0].headers["x-reason"]
    # The chat is free for the next question.
    assert alice.send(chat["id"], "again")["assistant_message"]["status"] == "pending"


def test_an_unreadable_response_that_names_its_request_fails_the_reply(
    alice: Api, worker: WorkerRole
) -> None:
    chat, request = _pending_reply(alice, worker)
    body = json.dumps(
        {"request_id": request["request_id"], "status": "completed", "content": "lone \ud800"}
    ).encode()
    worker.publish(body, message_id=request["request_id"])
    failed = alice.wait_status(chat["id"], request["message_id"], "failed")
    assert "could not be read" in failed["error"]
    dead = wait_for(worker.dead_letters, "the dead-lettered response")
    assert dead[0].body == body
