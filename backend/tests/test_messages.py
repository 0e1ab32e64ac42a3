from app.core.queue_messages import GeminiRequest
from tests.conftest import MAX_MESSAGE_CHARS, USER_MESSAGES_PER_MINUTE
from tests.support import Api, RunNames, WorkerRole

MESSAGE_FIELDS = {
    "parent_id",
    "sibling_ids",
    "id",
    "chat_id",
    "role",
    "content",
    "status",
    "error",
    "attempt",
    "next_attempt_at",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "created_at",
    "completed_at",
    "thoughts",  # the model's thoughts (test_render_settings.py)
    "attachments",
    "attachments_omitted",
}


def test_send_stores_both_messages_and_queues_the_request(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat(system_prompt="Answer in French.", model="gemini-2.5-pro")
    sent = alice.send(chat["id"], "What is the capital of France?")
    question, reply = sent["user_message"], sent["assistant_message"]
    assert set(question) == set(reply) == MESSAGE_FIELDS
    assert (question["role"], question["content"]) == ("user", "What is the capital of France?")
    assert (reply["role"], reply["status"], reply["content"]) == ("assistant", "pending", "")
    assert reply["model"] == "gemini-2.5-pro"

    request, delivery = worker.take_request(reply["id"])
    GeminiRequest.model_validate(request)
    assert request["v"] == 1 and request["attempt"] == 0
    assert request["chat_id"] == chat["id"]
    assert request["model"] == "gemini-2.5-pro"
    assert request["system_instruction"] == "Answer in French."
    assert request["contents"] == [{"role": "user", "text": "What is the capital of France?"}]
    assert request["user_id"] == alice.user["id"]  # the key pool's line is fair per user
    assert delivery.message_id == request["request_id"]
    assert delivery.delivery_mode == 2 and delivery.content_type == "application/json"

    assert [m["id"] for m in alice.messages(chat["id"])] == [question["id"], reply["id"]]
    assert alice.get(f"/chats/{chat['id']}").json()["title"] == "What is the capital of France?"


def test_one_reply_at_a_time_per_chat(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "first")["assistant_message"]
    busy = alice.post(f"/chats/{chat['id']}/messages", json={"content": "second", "role": "user"})
    assert busy.status_code == 409
    assert "still being generated" in busy.json()["detail"]
    other_chat = alice.new_chat()
    alice.send(other_chat["id"], "elsewhere is fine")

    request, _ = worker.take_request(reply["id"])
    worker.respond(request, "completed", "Echo: first")
    alice.wait_status(chat["id"], reply["id"], "completed")
    assert alice.send(chat["id"], "second")["assistant_message"]["status"] == "pending"


def test_send_rejects_bad_content(alice: Api) -> None:
    chat = alice.new_chat()
    path = f"/chats/{chat['id']}/messages"
    cases = [
        {"content": "", "role": "user"},
        {"content": "   \n ", "role": "user"},
        {"content": "x" * (MAX_MESSAGE_CHARS + 1), "role": "user"},
        {"content": "hi", "role": "assistant"},
        {"content": "hi", "role": "system"},
        {"role": "user"},
        {"content": 42, "role": "user"},
        {"content": "hi", "role": "user", "extra": 1},
    ]
    for body in cases:
        answer = alice.post(path, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["detail"]
    too_long = alice.post(path, json={"content": "x" * (MAX_MESSAGE_CHARS + 1)}).json()["detail"]
    assert str(MAX_MESSAGE_CHARS) in too_long
    assert (
        alice.post(
            path, content=b"not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    # Text PostgreSQL cannot store: a clear 422, not a database error.
    assert alice.post(path, json={"content": "a\x00b"}).status_code == 422
    lone_surrogate = b'{"content": "broken \\ud800 text", "role": "user"}'
    answer = alice.post(path, content=lone_surrogate, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert alice.messages(chat["id"]) == []
    assert (
        alice.send(chat["id"], "x" * MAX_MESSAGE_CHARS)["user_message"]["content"]
        == "x" * MAX_MESSAGE_CHARS
    )


def test_history_carries_earlier_turns(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat()
    first = alice.send(chat["id"], "My name is Ada.")["assistant_message"]
    request, _ = worker.take_request(first["id"])
    worker.respond(request, "completed", "Hello Ada!")
    alice.wait_status(chat["id"], first["id"], "completed")

    second = alice.send(chat["id"], "What is my name?")["assistant_message"]
    request, _ = worker.take_request(second["id"])
    assert request["contents"] == [
        {"role": "user", "text": "My name is Ada."},
        {"role": "model", "text": "Hello Ada!"},
        {"role": "user", "text": "What is my name?"},
    ]


def test_history_budget_drops_the_oldest_turns_first(alice: Api, worker: WorkerRole) -> None:
    # HISTORY_MAX_CHARS is 1000 on the test server: 300-character turns, at most three fit.
    chat = alice.new_chat()
    texts = []
    for i in range(3):
        question = f"q{i}" + "." * 298
        answer = f"a{i}" + "!" * 298
        reply = alice.send(chat["id"], question)["assistant_message"]
        request, _ = worker.take_request(reply["id"])
        worker.respond(request, "completed", answer)
        alice.wait_status(chat["id"], reply["id"], "completed")
        texts += [question, answer]
    last = alice.send(chat["id"], "q3" + "." * 298)["assistant_message"]
    request, _ = worker.take_request(last["id"])
    sent = [turn["text"][:2] for turn in request["contents"]]
    # The newest three turns fit (900 chars); a conversation opens with a user turn.
    assert sent == ["q2", "a2", "q3"]
    assert sum(len(turn["text"]) for turn in request["contents"]) <= 1000


def test_history_read_stops_where_the_budget_ends(
    alice: Api, worker: WorkerRole, run: RunNames
) -> None:
    """Only what fits is read: failed replies cost nothing, a huge old turn is never sent, and a
    retry's history obeys the same budget."""
    chat = alice.new_chat()
    old = alice.send(chat["id"], "x" * 450)["assistant_message"]
    request, _ = worker.take_request(old["id"])
    worker.respond(request, "completed", "y" * 600)
    alice.wait_status(chat["id"], old["id"], "completed")
    for i in range(3):
        reply = alice.send(chat["id"], f"q{i}" + "." * 198)["assistant_message"]
        request, _ = worker.take_request(reply["id"])
        failed = {"code": "bad_request", "message": "no", "retryable": False}
        worker.respond(request, "failed", error=failed)
        alice.wait_status(chat["id"], reply["id"], "failed")
    last = alice.send(chat["id"], "q3" + "." * 198)["assistant_message"]
    request, _ = worker.take_request(last["id"])
    assert [t["text"][:2] for t in request["contents"]] == ["q0", "q1", "q2", "q3"]
    worker.respond(request, "failed", error=failed)
    alice.wait_status(chat["id"], last["id"], "failed")
    assert alice.post(f"/chats/{chat['id']}/messages/{last['id']}/retry").status_code == 202
    again, _ = worker.take_request(last["id"])
    assert again["contents"] == request["contents"]


def test_completed_reply_is_stored_with_usage(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "hi")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    worker.respond(request, "completed", "Echo: hi")
    stored = alice.wait_status(chat["id"], reply["id"], "completed")
    assert stored["content"] == "Echo: hi"
    assert (stored["prompt_tokens"], stored["completion_tokens"]) == (11, 22)
    assert stored["completed_at"] is not None and stored["error"] is None


def test_failed_reply_shows_a_readable_error_and_can_be_retried(
    alice: Api, worker: WorkerRole
) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "hi")["assistant_message"]
    first_request, _ = worker.take_request(reply["id"])
    worker.respond(
        first_request,
        "failed",
        error={"code": "model_not_found", "message": "models/x is not found", "retryable": False},
    )
    failed = alice.wait_status(chat["id"], reply["id"], "failed")
    assert failed["error"] == "models/x is not found"

    retried = alice.post(f"/chats/{chat['id']}/messages/{reply['id']}/retry")
    assert retried.status_code == 202
    assert retried.json()["status"] == "pending" and retried.json()["error"] is None
    request, _ = worker.take_request(reply["id"])
    assert request["request_id"] != first_request["request_id"]
    assert request["contents"] == [{"role": "user", "text": "hi"}]
    assert request["user_id"] == alice.user["id"]
    # A late answer to the old request changes nothing.
    worker.respond(first_request, "completed", "stale")
    worker.respond(request, "completed", "fresh")
    done = alice.wait_status(chat["id"], reply["id"], "completed")
    assert done["content"] == "fresh"


def test_regenerate_any_reply(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat()
    replies = []
    for text in ("one", "two"):
        reply = alice.send(chat["id"], text)["assistant_message"]
        request, _ = worker.take_request(reply["id"])
        worker.respond(request, "completed", f"answer {text}")
        alice.wait_status(chat["id"], reply["id"], "completed")
        replies.append(reply)
    # A new version beside the old one (test_tree_api.py follows the branches further).
    last = alice.post(f"/chats/{chat['id']}/messages/{replies[1]['id']}/retry")
    assert last.status_code == 202 and last.json()["content"] == ""
    assert last.json()["sibling_ids"] == [replies[1]["id"], last.json()["id"]]
    request, _ = worker.take_request(last.json()["id"])
    assert [t["text"] for t in request["contents"]] == ["one", "answer one", "two"]
    again = alice.post(f"/chats/{chat['id']}/messages/{replies[0]['id']}/retry")
    assert again.status_code == 409  # one in progress
    question = alice.messages(chat["id"])[0]["id"]
    assert alice.post(f"/chats/{chat['id']}/messages/{question}/retry").status_code == 409


def test_cancel_a_pending_reply_at_once(alice: Api, worker: WorkerRole, run: RunNames) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "long story please")["assistant_message"]
    answer = alice.post(f"/chats/{chat['id']}/messages/{reply['id']}/cancel")
    assert answer.status_code == 202
    assert answer.json()["status"] == "cancelled"
    request, _ = worker.take_request(reply["id"])
    assert worker.redis.get(f"{run.prefix}cancel:{request['request_id']}") == "1"
    # The worker sees the flag and reports `cancelled`: nothing changes.
    worker.respond(request, "cancelled", "")
    assert alice.message(chat["id"], reply["id"])["status"] == "cancelled"
    final = alice.post(f"/chats/{chat['id']}/messages/{reply['id']}/cancel")
    assert final.status_code == 409 and "cancelled" in final.json()["detail"]
    question = alice.messages(chat["id"])[0]["id"]
    assert alice.post(f"/chats/{chat['id']}/messages/{question}/cancel").status_code == 409
    missing = "00000000-0000-4000-8000-000000000000"
    assert alice.post(f"/chats/{chat['id']}/messages/{missing}/cancel").status_code == 404
    # The chat is free again. The retry is a new request without a flag, and the stopped one
    # stays stopped: were it still queued, it must not stream into the reply beside the new one.
    assert alice.post(f"/chats/{chat['id']}/messages/{reply['id']}/retry").status_code == 202
    again, _ = worker.take_request(reply["id"])
    assert worker.redis.get(f"{run.prefix}cancel:{again['request_id']}") is None
    assert worker.redis.get(f"{run.prefix}cancel:{request['request_id']}") == "1"


def test_cancel_while_streaming_keeps_the_text_so_far(
    alice: Api, worker: WorkerRole, run: RunNames
) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "long story please")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    worker.streaming(chat["id"], reply["id"], request_id=request["request_id"])
    worker.delta(chat["id"], reply["id"], 0, "Once upon")
    answer = alice.post(f"/chats/{chat['id']}/messages/{reply['id']}/cancel")
    assert answer.status_code == 202
    assert answer.json()["status"] == "pending"  # the worker decides where it stops
    assert worker.redis.get(f"{run.prefix}cancel:{request['request_id']}") == "1"
    worker.respond(request, "cancelled", "Once upon")
    stored = alice.wait_status(chat["id"], reply["id"], "cancelled")
    assert stored["content"] == "Once upon"


def test_cancel_a_retry_attempt_while_streaming_keeps_its_text(
    alice: Api, worker: WorkerRole
) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "long story please")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    worker.respond(
        request,
        "retrying",
        attempt=1,
        next_attempt_at="2030-01-01T00:00:00Z",
        error={"code": "timeout", "message": "Gemini did not answer in time", "retryable": True},
    )
    alice.wait_status(chat["id"], reply["id"], "retrying")
    worker.streaming(chat["id"], reply["id"], attempt=1, request_id=request["request_id"])
    worker.delta(chat["id"], reply["id"], 0, "Second try")
    answer = alice.post(f"/chats/{chat['id']}/messages/{reply['id']}/cancel")
    assert answer.status_code == 202 and answer.json()["status"] == "retrying"
    worker.respond(request, "cancelled", "Second try", attempt=1)
    stored = alice.wait_status(chat["id"], reply["id"], "cancelled")
    assert stored["content"] == "Second try"


def test_cancel_a_reply_whose_worker_died_mid_stream(alice: Api, worker: WorkerRole) -> None:
    """No worker runs: nobody would ever report `cancelled`, so Stop ends it with what was shown."""
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "long story please")["assistant_message"]
    worker.take_request(reply["id"])  # taken by a worker that then died
    worker.streaming(chat["id"], reply["id"])
    worker.delta(chat["id"], reply["id"], 0, "Once ")
    worker.delta(chat["id"], reply["id"], 1, "upon")
    answer = alice.post(f"/chats/{chat['id']}/messages/{reply['id']}/cancel")
    assert answer.status_code == 202
    assert answer.json()["status"] == "cancelled" and answer.json()["content"] == "Once upon"
    assert alice.message(chat["id"], reply["id"])["content"] == "Once upon"
    assert alice.send(chat["id"], "next question")["assistant_message"]["status"] == "pending"


def test_rate_limit_answers_429_with_retry_after(alice: Api) -> None:
    chat = alice.new_chat()
    for i in range(USER_MESSAGES_PER_MINUTE):
        reply = alice.send(chat["id"], f"message {i}")["assistant_message"]
        alice.post(f"/chats/{chat['id']}/messages/{reply['id']}/cancel")
    limited = alice.post(
        f"/chats/{chat['id']}/messages", json={"content": "one more", "role": "user"}
    )
    assert limited.status_code == 429
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert f"{USER_MESSAGES_PER_MINUTE} per minute" in limited.json()["detail"]
    assert len(alice.messages(chat["id"])) == 2 * USER_MESSAGES_PER_MINUTE
