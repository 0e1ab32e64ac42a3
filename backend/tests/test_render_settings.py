"""Per-chat generation settings, thoughts and generated titles (docs/CONTRACTS.md,
"Rendering and settings"). The test plays the worker, as the rest of this suite does."""

import json
import uuid

from tests.support import Api, RunNames, SseStream, WorkerRole, wait_for

SETTINGS = {
    "temperature": 0.3,
    "top_p": 0.9,
    "max_output_tokens": 1024,
    "thinking_budget": 2048,
    "include_thoughts": True,
    "stop_sequences": ["END"],
}


def _events(worker: WorkerRole, run: RunNames, chat_id: str) -> list[tuple[str, dict]]:
    entries = worker.redis.xrange(f"{run.prefix}events:{chat_id}")
    return [(fields["event"], json.loads(fields["data"])) for _, fields in entries]


def test_settings_are_stored_on_the_chat_and_sent_as_generation_config(
    alice: Api, worker: WorkerRole
) -> None:
    chat = alice.new_chat(model="gemini-2.5-flash")
    assert chat["settings"] == {k: None for k in SETTINGS}
    answer = alice.http.patch(f"/chats/{chat['id']}", json={"settings": SETTINGS})
    assert answer.status_code == 200, answer.text
    assert answer.json()["settings"] == SETTINGS
    assert alice.http.get(f"/chats/{chat['id']}").json()["settings"] == SETTINGS

    reply = alice.send(chat["id"], "What is 2 + 2?")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    assert request["generation_config"] == {
        "temperature": 0.3,
        "top_p": 0.9,
        "max_output_tokens": 1024,
        "stop_sequences": ["END"],
        "thinking_config": {"thinking_budget": 2048, "include_thoughts": True},
    }
    worker.respond(request, "completed", "4")

    # null clears them: the next request carries no generation_config at all.
    cleared = alice.http.patch(f"/chats/{chat['id']}", json={"settings": None})
    assert cleared.json()["settings"] == {k: None for k in SETTINGS}
    alice.wait_status(chat["id"], reply["id"], "completed")
    second = alice.send(chat["id"], "And 3 + 3?")["assistant_message"]
    request, _ = worker.take_request(second["id"])
    assert request["generation_config"] == {}


def test_settings_out_of_the_models_range_are_refused(alice: Api) -> None:
    pro = alice.new_chat(model="gemini-2.5-pro")
    flash = alice.new_chat(model="gemini-2.5-flash")
    cases = [
        (flash, {"temperature": 2.5}, "temperature"),
        (flash, {"temperature": -0.1}, "temperature"),
        (flash, {"top_p": 1.5}, "top_p"),
        (flash, {"max_output_tokens": 0}, "max_output_tokens"),
        (flash, {"max_output_tokens": 70000}, "max_output_tokens"),
        (flash, {"thinking_budget": 30000}, "thinking_budget"),
        (pro, {"thinking_budget": 0}, "thinking_budget"),  # 2.5 Pro cannot stop thinking
        (pro, {"thinking_budget": 64}, "thinking_budget"),
        (flash, {"stop_sequences": ["a", "b", "c", "d", "e", "f"]}, "stop_sequences"),
        (flash, {"stop_sequences": [""]}, "stop_sequences"),
        (flash, {"temperature": "hot"}, "temperature"),
        (flash, {"top_k": 3}, "top_k"),
    ]
    for chat, settings, field in cases:
        answer = alice.http.patch(f"/chats/{chat['id']}", json={"settings": settings})
        assert answer.status_code == 422, (settings, answer.text)
        assert field in answer.text, answer.text
    # What each model does accept.
    for chat, settings in [
        (flash, {"thinking_budget": 0}),
        (flash, {"thinking_budget": -1, "include_thoughts": True}),
        (pro, {"thinking_budget": 32768, "temperature": 2}),
    ]:
        answer = alice.http.patch(f"/chats/{chat['id']}", json={"settings": settings})
        assert answer.status_code == 200, (settings, answer.text)
    # A new chat is checked the same way.
    answer = alice.http.post(
        "/chats", json={"model": "gemini-2.5-pro", "settings": {"thinking_budget": 0}}
    )
    assert answer.status_code == 422 and "thinking_budget" in answer.text


def test_changing_the_model_rechecks_the_settings(alice: Api) -> None:
    chat = alice.new_chat(model="gemini-2.5-flash", settings={"thinking_budget": 0})
    assert chat["settings"]["thinking_budget"] == 0
    answer = alice.http.patch(f"/chats/{chat['id']}", json={"model": "gemini-2.5-pro"})
    assert answer.status_code == 422 and "thinking_budget" in answer.text
    assert alice.http.get(f"/chats/{chat['id']}").json()["model"] == "gemini-2.5-flash"
    answer = alice.http.patch(
        f"/chats/{chat['id']}",
        json={"model": "gemini-2.5-pro", "settings": {"thinking_budget": 128}},
    )
    assert answer.status_code == 200 and answer.json()["settings"]["thinking_budget"] == 128


def test_models_lists_each_models_ranges(alice: Api) -> None:
    ranges = alice.http.get("/models").json()["ranges"]
    assert ranges["gemini-2.5-pro"]["thinking_budget"] == [128, 32768]
    assert ranges["gemini-2.5-pro"]["thinking_off"] is False
    assert ranges["gemini-2.5-flash"]["thinking_off"] is True
    assert ranges["gemini-2.5-flash"]["temperature"] == [0, 2]


def test_thoughts_are_stored_apart_and_never_sent_back(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat(settings={"include_thoughts": True})
    reply = alice.send(chat["id"], "Think about 2 + 2")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    worker.respond(request, "completed", "It is 4.", thoughts="Adding two and two.")
    stored = alice.wait_status(chat["id"], reply["id"], "completed")
    assert (stored["content"], stored["thoughts"]) == ("It is 4.", "Adding two and two.")
    assert alice.messages(chat["id"])[0]["thoughts"] is None  # the question has none

    second = alice.send(chat["id"], "And now?")["assistant_message"]
    request, _ = worker.take_request(second["id"])
    assert request["contents"] == [
        {"role": "user", "text": "Think about 2 + 2"},
        {"role": "model", "text": "It is 4."},
        {"role": "user", "text": "And now?"},
    ]
    worker.respond(request, "completed", "Still 4.")
    # A regenerate starts without the old thoughts.
    alice.wait_status(chat["id"], second["id"], "completed")
    again = alice.http.post(f"/chats/{chat['id']}/messages/{second['id']}/retry")
    assert again.status_code == 202, again.text
    assert again.json()["thoughts"] is None


def _title_response(worker: WorkerRole, request: dict, title: str) -> None:
    worker.respond(
        {**request, "request_id": str(uuid.uuid4())},
        "completed",
        title,
        kind="title",
        model="gemini-2.5-flash-lite",
    )


def test_the_first_reply_asks_for_a_title_and_the_title_is_announced(
    alice: Api, worker: WorkerRole, run: RunNames
) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "What is the capital of France?")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    # Until the title comes, the first question names the chat, as before.
    assert alice.http.get(f"/chats/{chat['id']}").json()["title"] == (
        "What is the capital of France?"
    )
    assert request["title"]["model"] == "gemini-2.5-flash-lite"
    assert request["title"]["system_instruction"].startswith("You name conversations")
    worker.respond(request, "completed", "Paris.")
    alice.wait_status(chat["id"], reply["id"], "completed")

    stream = SseStream(alice, chat["id"])
    try:
        _title_response(worker, request, '"Capital of France."\nmore text')
        event = stream.until(lambda e: e["event"] == "chat.title")[-1]
    finally:
        stream.close()
    assert event["data"] == {"chat_id": chat["id"], "title": "Capital of France"}
    assert alice.http.get(f"/chats/{chat['id']}").json()["title"] == "Capital of France"
    # Only once: a second title (a redelivery, a late one) changes nothing.
    _title_response(worker, request, "Another title")
    wait_for(worker.responses_settled, "the second title to be handled")
    assert alice.http.get(f"/chats/{chat['id']}").json()["title"] == "Capital of France"
    titles = [e for e, _ in _events(worker, run, chat["id"]) if e == "chat.title"]
    assert len(titles) == 1
    # The message itself is untouched by a title response.
    assert alice.message(chat["id"], reply["id"])["content"] == "Paris."

    second = alice.send(chat["id"], "And of Spain?")["assistant_message"]
    request, _ = worker.take_request(second["id"])
    assert "title" not in request


def test_a_title_given_by_hand_wins_even_while_one_is_generated(
    alice: Api, worker: WorkerRole
) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "hello there")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    worker.respond(request, "completed", "Hi!")
    # The user renames the chat while the title request is in flight.
    assert alice.http.patch(f"/chats/{chat['id']}", json={"title": "Mine"}).status_code == 200
    _title_response(worker, request, "Generated title")
    wait_for(worker.responses_settled, "the title response to be handled")
    assert alice.http.get(f"/chats/{chat['id']}").json()["title"] == "Mine"

    named = alice.new_chat(title="Named at birth")
    reply = alice.send(named["id"], "hello")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    assert "title" not in request  # nothing to generate
    assert alice.http.get(f"/chats/{named['id']}").json()["title"] == "Named at birth"


def test_a_failed_title_changes_nothing(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "keep my question as the title")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    worker.respond(request, "completed", "Sure.")
    error = {"code": "keys_busy", "message": "No key was free for a title.", "retryable": False}
    worker.respond(
        {**request, "request_id": str(uuid.uuid4())}, "failed", kind="title", error=error
    )
    wait_for(worker.responses_settled, "the failed title to be handled")
    assert alice.message(chat["id"], reply["id"])["status"] == "completed"
    assert alice.http.get(f"/chats/{chat['id']}").json()["title"] == (
        "keep my question as the title"
    )


def test_a_withdrawn_models_settings_are_fitted_to_the_model_that_answers() -> None:
    """A chat keeps its model when GEMINI_MODELS drops it, and replies with GEMINI_MODEL: what
    that model would refuse is clamped or left out rather than failing every reply."""
    from app.services import generation

    stored = {"temperature": 1.5, "max_output_tokens": 60000, "thinking_budget": 0}
    assert generation.generation_config(stored, "gemini-2.5-pro") == {
        "temperature": 1.5,
        "max_output_tokens": 60000,
    }  # 2.5 Pro cannot turn thinking off
    assert generation.generation_config(stored, "gemini-2.0-flash") == {
        "temperature": 1.5,
        "max_output_tokens": 8192,
    }
    assert generation.generation_config(None, "gemini-2.5-flash") == {}
    # A dated variant has its family's ranges.
    assert generation.ranges_for("gemini-2.5-flash-lite-preview-06-17").thinking_budget == (
        512,
        24576,
    )
