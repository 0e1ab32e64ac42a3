import base64
import json
import uuid

import psycopg

from tests.support import Api, RunNames, WorkerRole

NO_SUCH = "00000000-0000-4000-8000-000000000000"


def test_create_with_defaults_and_with_choices(alice: Api) -> None:
    plain = alice.new_chat()
    fields = {"id", "title", "model", "model_in_use", "system_prompt", "created_at", "updated_at"}
    assert set(plain) == fields | {"settings"}  # generation settings (test_render_settings.py)
    assert plain["model_in_use"] == plain["model"]
    assert plain["title"] == "New chat"
    assert plain["model"] == "gemini-2.5-flash"
    assert plain["system_prompt"] is None
    chosen = alice.new_chat(title="  Plans  ", model="gemini-2.5-pro", system_prompt="Be brief.")
    assert (chosen["title"], chosen["model"], chosen["system_prompt"]) == (
        "Plans",
        "gemini-2.5-pro",
        "Be brief.",
    )
    assert alice.post("/chats").status_code == 201  # no body at all


def test_create_rejects_bad_input(alice: Api) -> None:
    for body in [
        {"model": "gpt-4"},
        {"title": 5},
        {"title": "x" * 201},
        {"colour": "red"},
        {"system_prompt": ["a"]},
        {"title": "nul\x00byte"},
        {"system_prompt": "nul\x00byte"},
    ]:
        answer = alice.post("/chats", json=body)
        assert answer.status_code == 422, (body, answer.text)
    unknown = alice.post("/chats", json={"model": "gpt-4"}).json()["detail"]
    assert "gpt-4" in unknown and "gemini-2.5-flash" in unknown
    malformed = alice.post("/chats", content=b"{", headers={"content-type": "application/json"})
    assert malformed.status_code == 422


def test_list_pages_by_latest_activity(alice: Api, worker: WorkerRole) -> None:
    ids = [alice.new_chat(title=f"chat {i}")["id"] for i in range(5)]
    # A new message is activity: chat 1 moves to the top.
    sent = alice.send(ids[1], "bump")
    worker.take_request(sent["assistant_message"]["id"])
    expected = [ids[1], ids[4], ids[3], ids[2], ids[0]]

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"before": cursor} if cursor else {})}
        page = alice.get("/chats", params=params)
        assert page.status_code == 200
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [chat["id"] for chat in body["items"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == expected
    assert alice.get("/chats").json()["next"] is None


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_list_rejects_bad_paging(alice: Api) -> None:
    for params in [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"before": "garbage!"}]:
        answer = alice.get("/chats", params=params)
        assert answer.status_code == 422, (params, answer.text)
    crafted = [
        ["2024-01-01T00:00:00+00:00", 1],  # a number where the chat id belongs
        [1, str(uuid.uuid4())],
        ["2024-01-01T00:00:00+00:00", ["nested"]],
        ["2024-01-01T00:00:00+00:00", str(uuid.uuid4()), "extra"],
        {"a": 1, "b": 2},
        "just a string",
        None,
        ["0001-01-01T00:00:00+14:00", str(uuid.uuid4())],  # out of range once in UTC
        ["2024-01-01T00:00:00", str(uuid.uuid4())],  # no time zone
    ]
    for value in crafted:
        answer = alice.get("/chats", params={"before": _cursor(value)})
        assert answer.status_code == 422, (value, answer.text)
        assert "cursor" in answer.json()["detail"]


def test_get_patch_and_delete(alice: Api, run: RunNames, worker: WorkerRole) -> None:
    chat = alice.new_chat(title="Old")
    assert alice.get(f"/chats/{chat['id']}").json() == chat
    patched = alice.patch(f"/chats/{chat['id']}", json={"title": "New", "system_prompt": "Pirate"})
    assert patched.status_code == 200
    assert patched.json()["title"] == "New"
    assert patched.json()["system_prompt"] == "Pirate"
    assert patched.json()["model"] == chat["model"]
    assert patched.json()["updated_at"] > chat["updated_at"]
    model = alice.patch(f"/chats/{chat['id']}", json={"model": "gemini-2.5-flash-lite"})
    assert model.json()["model"] == "gemini-2.5-flash-lite"
    for body in [{"model": "nope"}, {"title": 1}, {"owner": "me"}]:
        assert alice.patch(f"/chats/{chat['id']}", json=body).status_code == 422

    reply = alice.send(chat["id"], "hello")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    assert alice.delete(f"/chats/{chat['id']}").status_code == 204
    # The reply in progress is called off: the worker need not spend a key on it.
    assert worker.redis.get(f"{run.prefix}cancel:{request['request_id']}") == "1"
    assert alice.get(f"/chats/{chat['id']}").status_code == 404
    assert alice.get(f"/chats/{chat['id']}/messages").status_code == 404
    assert alice.delete(f"/chats/{chat['id']}").status_code == 404
    with psycopg.connect(run.database_url()) as db:
        left = db.execute("SELECT count(*) FROM messages WHERE chat_id = %s", (chat["id"],))
        assert left.fetchone()[0] == 0


def test_unknown_and_malformed_ids(alice: Api) -> None:
    assert alice.get(f"/chats/{NO_SUCH}").status_code == 404
    assert alice.get(f"/chats/{NO_SUCH}").json() == {"detail": "chat not found"}
    for path in [
        "/chats/not-a-uuid",
        "/chats/123/messages",
        f"/chats/{NO_SUCH}/messages/xyz/cancel",
    ]:
        method = "POST" if path.endswith("cancel") else "GET"
        answer = alice.request(method, path)
        assert answer.status_code == 422, (path, answer.text)


def test_another_users_chat_is_not_found(alice: Api, bob: Api) -> None:
    chat = alice.new_chat(title="private")
    sent = alice.send(chat["id"], "secret")
    reply = sent["assistant_message"]["id"]
    base = f"/chats/{chat['id']}"
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"title": "mine now"}),
        ("DELETE", base, None),
        ("GET", f"{base}/messages", None),
        ("POST", f"{base}/messages", {"content": "hi", "role": "user"}),
        ("GET", f"{base}/events", None),
        ("POST", f"{base}/messages/{reply}/cancel", None),
        ("POST", f"{base}/messages/{reply}/retry", None),
    ]:
        answer = bob.request(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    assert [c["id"] for c in bob.get("/chats").json()["items"]] == []
    assert alice.get(base).json()["title"] == "private"
    assert alice.message(chat["id"], reply)["status"] == "pending"


def test_a_chat_whose_model_was_withdrawn_uses_the_default(
    alice: Api, worker: WorkerRole, run: RunNames
) -> None:
    """GEMINI_MODELS no longer lists the model an old chat picked: its replies use the default,
    and the chat says so."""
    default = alice.get("/models").json()["default"]
    chat = alice.new_chat(model="gemini-2.5-pro")
    assert chat["model_in_use"] == "gemini-2.5-pro"
    with psycopg.connect(run.database_url(), autocommit=True) as db:
        db.execute("UPDATE chats SET model = 'gemini-1.0-pro' WHERE id = %s", (chat["id"],))
    shown = alice.get(f"/chats/{chat['id']}").json()
    assert (shown["model"], shown["model_in_use"]) == ("gemini-1.0-pro", default)
    listed = next(c for c in alice.get("/chats").json()["items"] if c["id"] == chat["id"])
    assert listed["model_in_use"] == default
    reply = alice.send(chat["id"], "hello")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    assert request["model"] == default
    worker.respond(request, "failed", error={"code": "x", "message": "x", "retryable": False})
    alice.wait_status(chat["id"], reply["id"], "failed")
    assert alice.post(f"/chats/{chat['id']}/messages/{reply['id']}/retry").status_code == 202
    again, _ = worker.take_request(reply["id"])
    assert again["model"] == default
    assert alice.message(chat["id"], reply["id"])["model"] == default
