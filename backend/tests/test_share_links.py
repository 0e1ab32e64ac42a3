"""Share links: a frozen, read-only copy anyone with the token may open; revoked is gone."""

import hashlib

import psycopg

from tests.support import Api, RunNames, WorkerRole
from tests.test_share_transfer import completed_chat


def share(api: Api, chat_id: str) -> dict:
    answer = api.post(f"/chats/{chat_id}/share")
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_shared_chat_opens_without_login_and_tells_nothing_of_its_owner(
    alice: Api, anon: Api, worker: WorkerRole
) -> None:
    chat = completed_chat(alice, worker, "Best beach in Lisbon?", "Carcavelos, for surfing.")
    link = share(alice, chat["id"])
    assert link["url"].endswith(f"/s/{link['token']}")
    assert len(link["token"]) >= 22  # >= 128 bits in URL-safe base64
    assert link["message_count"] == 2
    answer = anon.get(f"/shared/{link['token']}")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert set(body) == {"title", "messages", "shared_at"}
    assert body["title"] == "Trip planning"
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "Best beach in Lisbon?"),
        ("assistant", "Carcavelos, for surfing."),
    ]
    assert all(set(m) == {"role", "content", "created_at"} for m in body["messages"])
    assert alice.user["email"] not in answer.text and alice.user["id"] not in answer.text
    assert chat["id"] not in answer.text


def test_the_snapshot_stays_as_it_was_shared(alice: Api, anon: Api, worker: WorkerRole) -> None:
    chat = completed_chat(alice, worker, "First question", "First answer")
    link = share(alice, chat["id"])
    alice.patch(f"/chats/{chat['id']}", json={"title": "Renamed later"})
    sent = alice.send(chat["id"], "A later question")
    request, _ = worker.take_request(sent["assistant_message"]["id"])
    worker.respond(request, "completed", "A later answer")
    alice.wait_status(chat["id"], sent["assistant_message"]["id"], "completed")
    body = anon.get(f"/shared/{link['token']}").json()
    assert body["title"] == "Trip planning"
    assert [m["content"] for m in body["messages"]] == ["First question", "First answer"]


def test_links_are_listed_and_revoked_by_their_owner_only(
    alice: Api, bob: Api, anon: Api, worker: WorkerRole
) -> None:
    chat = completed_chat(alice, worker, "Q", "A")
    first, second = share(alice, chat["id"]), share(alice, chat["id"])
    assert first["token"] != second["token"]
    listed = alice.get(f"/chats/{chat['id']}/share").json()
    assert [s["id"] for s in listed] == [second["id"], first["id"]]
    assert all("token" not in s and "url" not in s for s in listed)

    assert bob.get(f"/chats/{chat['id']}/share").status_code == 404
    assert bob.post(f"/chats/{chat['id']}/share").status_code == 404
    assert bob.delete(f"/chats/{chat['id']}/share/{first['id']}").status_code == 404
    assert anon.get(f"/shared/{first['token']}").status_code == 200

    assert alice.delete(f"/chats/{chat['id']}/share/{first['id']}").status_code == 204
    assert anon.get(f"/shared/{first['token']}").status_code == 404
    assert alice.delete(f"/chats/{chat['id']}/share/{first['id']}").status_code == 404
    assert anon.get(f"/shared/{second['token']}").status_code == 200
    assert [s["id"] for s in alice.get(f"/chats/{chat['id']}/share").json()] == [second["id"]]


def test_unknown_tokens_and_deleted_chats_answer_404(
    alice: Api, anon: Api, worker: WorkerRole
) -> None:
    chat = completed_chat(alice, worker, "Q", "A")
    link = share(alice, chat["id"])
    for token in [
        "nope",
        link["token"][:-1] + ("A" if link["token"][-1] != "A" else "B"),
        "x" * 500,
    ]:
        assert anon.get(f"/shared/{token}").status_code == 404
    assert alice.delete(f"/chats/{chat['id']}").status_code == 204
    assert anon.get(f"/shared/{link['token']}").status_code == 404


def test_only_a_hash_of_the_token_is_stored(alice: Api, run: RunNames, worker: WorkerRole) -> None:
    chat = completed_chat(alice, worker, "Q", "A")
    link = share(alice, chat["id"])
    with psycopg.connect(run.database_url()) as db:
        (stored,) = db.execute(
            "SELECT token_hash FROM shared_chats WHERE id = %s", (link["id"],)
        ).fetchone()
        dump = db.execute("SELECT row_to_json(s)::text FROM shared_chats s").fetchall()
    assert stored == hashlib.sha256(link["token"].encode()).hexdigest()
    assert all(link["token"] not in row for (row,) in dump)


def test_sharing_needs_a_login(anon: Api, alice: Api) -> None:
    chat = alice.new_chat()
    assert anon.post(f"/chats/{chat['id']}/share").status_code == 401
    assert anon.get(f"/chats/{chat['id']}/share").status_code == 401
