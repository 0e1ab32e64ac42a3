"""The message tree: edits and regenerations branch, the chat shows one branch at a time, and
Gemini only ever hears the branch being answered."""

from typing import Any

from tests.support import Api, SseStream, WorkerRole, wait_for


def _send(api: Api, chat_id: str, content: str, **extra: Any) -> dict[str, Any]:
    answer = api.post(
        f"/chats/{chat_id}/messages", json={"content": content, "role": "user", **extra}
    )
    assert answer.status_code == 202, answer.text
    return answer.json()


def _tree(api: Api, chat_id: str) -> list[dict[str, Any]]:
    answer = api.get(f"/chats/{chat_id}/messages", params={"view": "tree"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _answer(api: Api, worker: WorkerRole, chat_id: str, reply: dict[str, Any]) -> dict[str, Any]:
    """Lets the worker answer `reply` (on any branch); returns the request it was sent."""
    request, _ = worker.take_request(reply["id"])
    worker.respond(request, "completed", f"Echo: {request['contents'][-1]['text']}")
    wait_for(
        lambda: any(
            m["id"] == reply["id"] and m["status"] == "completed" for m in _tree(api, chat_id)
        ),
        f"reply {reply['id']} to complete",
    )
    return request


def _texts(request: dict[str, Any]) -> list[str]:
    return [turn["text"] for turn in request["contents"]]


def _conversation(api: Api, worker: WorkerRole) -> tuple[str, list[dict[str, Any]]]:
    """A chat with two questions answered: [q1, r1, q2, r2]."""
    chat = api.new_chat()
    messages = []
    for question in ("one", "two"):
        sent = _send(api, chat["id"], question)
        _answer(api, worker, chat["id"], sent["assistant_message"])
        messages += [sent["user_message"], sent["assistant_message"]]
    return chat["id"], messages


def test_a_linear_chat_is_a_single_branch(alice: Api, worker: WorkerRole) -> None:
    chat_id, (q1, r1, q2, r2) = _conversation(alice, worker)
    path = alice.messages(chat_id)
    assert [m["id"] for m in path] == [q1["id"], r1["id"], q2["id"], r2["id"]]
    assert [m["parent_id"] for m in path] == [None, q1["id"], r1["id"], q2["id"]]
    assert [m["sibling_ids"] for m in path] == [[m["id"]] for m in path]
    assert q1["parent_id"] is None and q1["sibling_ids"] == [q1["id"]]
    assert r1["parent_id"] == q1["id"] and r1["sibling_ids"] == [r1["id"]]


def test_editing_a_question_branches_and_sends_only_that_branch(
    alice: Api, worker: WorkerRole
) -> None:
    chat_id, (q1, r1, q2, r2) = _conversation(alice, worker)
    edited = _send(alice, chat_id, "two, better", parent_id=r1["id"])
    question, reply = edited["user_message"], edited["assistant_message"]
    assert question["parent_id"] == r1["id"]
    assert question["sibling_ids"] == [q2["id"], question["id"]]
    assert reply["parent_id"] == question["id"] and reply["sibling_ids"] == [reply["id"]]

    request = _answer(alice, worker, chat_id, reply)
    assert _texts(request) == ["one", "Echo: one", "two, better"]  # never the old "two"

    path = alice.messages(chat_id)
    assert [m["id"] for m in path] == [q1["id"], r1["id"], question["id"], reply["id"]]
    assert path[2]["sibling_ids"] == [q2["id"], question["id"]]
    tree = _tree(alice, chat_id)
    assert [m["id"] for m in tree] == [
        q1["id"],
        r1["id"],
        q2["id"],
        r2["id"],
        question["id"],
        reply["id"],
    ]
    by_id = {m["id"]: m for m in tree}
    assert by_id[q2["id"]]["sibling_ids"] == [q2["id"], question["id"]]
    assert by_id[r2["id"]]["status"] == "completed"  # the old answer is kept

    # A send without parent_id follows the new branch.
    follow = _send(alice, chat_id, "three")
    assert follow["user_message"]["parent_id"] == reply["id"]
    request = _answer(alice, worker, chat_id, follow["assistant_message"])
    assert _texts(request) == ["one", "Echo: one", "two, better", "Echo: two, better", "three"]


def test_parent_null_edits_the_first_question(alice: Api, worker: WorkerRole) -> None:
    chat_id, (q1, *_rest) = _conversation(alice, worker)
    title = alice.get(f"/chats/{chat_id}").json()["title"]
    edited = _send(alice, chat_id, "uno", parent_id=None)
    question = edited["user_message"]
    assert question["parent_id"] is None
    assert question["sibling_ids"] == [q1["id"], question["id"]]
    request = _answer(alice, worker, chat_id, edited["assistant_message"])
    assert _texts(request) == ["uno"]
    assert [m["content"] for m in alice.messages(chat_id)] == ["uno", "Echo: uno"]
    assert alice.get(f"/chats/{chat_id}").json()["title"] == title  # named once, by the first


def test_regenerating_any_reply_keeps_the_old_one(alice: Api, worker: WorkerRole) -> None:
    chat_id, (q1, r1, _q2, r2) = _conversation(alice, worker)
    answer = alice.post(f"/chats/{chat_id}/messages/{r1['id']}/retry")
    assert answer.status_code == 202, answer.text
    again = answer.json()
    assert again["id"] != r1["id"]
    assert (again["status"], again["content"], again["parent_id"]) == ("pending", "", q1["id"])
    assert again["sibling_ids"] == [r1["id"], again["id"]]

    request = _answer(alice, worker, chat_id, again)
    assert _texts(request) == ["one"]  # the path down to its question, nothing after it
    path = alice.messages(chat_id)
    assert [m["id"] for m in path] == [q1["id"], again["id"]]
    assert path[1]["sibling_ids"] == [r1["id"], again["id"]]
    old = {m["id"]: m for m in _tree(alice, chat_id)}
    assert old[r1["id"]]["content"] == "Echo: one" and old[r2["id"]]["status"] == "completed"

    # The newest reply too, a third time.
    third = alice.post(f"/chats/{chat_id}/messages/{again['id']}/retry").json()
    assert third["sibling_ids"] == [r1["id"], again["id"], third["id"]]


def test_a_failed_reply_is_tried_again_in_place(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat()
    reply = _send(alice, chat["id"], "hi")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    worker.respond(request, "failed", error={"code": "blocked", "message": "blocked"})
    alice.wait_status(chat["id"], reply["id"], "failed")
    again = alice.post(f"/chats/{chat['id']}/messages/{reply['id']}/retry")
    assert again.status_code == 202, again.text
    assert again.json()["id"] == reply["id"] and again.json()["sibling_ids"] == [reply["id"]]
    _answer(alice, worker, chat["id"], reply)
    assert [m["content"] for m in alice.messages(chat["id"])] == ["hi", "Echo: hi"]


def test_switching_branches(alice: Api, bob: Api, worker: WorkerRole) -> None:
    chat_id, (q1, r1, q2, r2) = _conversation(alice, worker)
    edited = _send(alice, chat_id, "two, better", parent_id=r1["id"])
    _answer(alice, worker, chat_id, edited["assistant_message"])

    # Back to the old question: its branch down to its newest message.
    answer = alice.post(f"/chats/{chat_id}/active", json={"message_id": q2["id"]})
    assert answer.status_code == 200, answer.text
    assert [m["id"] for m in answer.json()] == [q1["id"], r1["id"], q2["id"], r2["id"]]
    assert [m["id"] for m in alice.messages(chat_id)] == [q1["id"], r1["id"], q2["id"], r2["id"]]
    # A send follows the branch shown.
    follow = _send(alice, chat_id, "three")
    assert follow["user_message"]["parent_id"] == r2["id"]
    request = _answer(alice, worker, chat_id, follow["assistant_message"])
    assert _texts(request) == ["one", "Echo: one", "two", "Echo: two", "three"]

    # An inner message: the newest leaf below it, here the edited branch.
    edited_reply = edited["assistant_message"]
    answer = alice.post(
        f"/chats/{chat_id}/active", json={"message_id": edited["user_message"]["id"]}
    )
    assert [m["id"] for m in answer.json()][-1] == edited_reply["id"]
    answer = alice.post(f"/chats/{chat_id}/active", json={"message_id": r1["id"]})
    assert [m["id"] for m in answer.json()][-1] == follow["assistant_message"]["id"]

    other_chat = alice.new_chat()
    assert (
        alice.post(f"/chats/{other_chat['id']}/active", json={"message_id": q1["id"]}).status_code
        == 404
    )
    assert bob.post(f"/chats/{chat_id}/active", json={"message_id": q1["id"]}).status_code == 404
    for body in ({}, {"message_id": "nope"}, {"message_id": q1["id"], "x": 1}):
        assert alice.post(f"/chats/{chat_id}/active", json=body).status_code == 422, body


def test_a_bad_parent_is_refused(alice: Api, worker: WorkerRole) -> None:
    chat_id, (_q1, _r1, q2, _r2) = _conversation(alice, worker)
    _other_id, (_, other_reply, _, _) = _conversation(alice, worker)
    path = f"/chats/{chat_id}/messages"
    refused = {
        q2["id"]: 422,  # a question cannot be followed by a question
        other_reply["id"]: 404,  # another chat's
        "00000000-0000-0000-0000-000000000000": 404,
        "not-a-uuid": 422,
    }
    for parent_id, code in refused.items():
        answer = alice.post(path, json={"content": "x", "role": "user", "parent_id": parent_id})
        assert answer.status_code == code, (parent_id, answer.text)
        assert answer.json()["detail"]
    assert len(_tree(alice, chat_id)) == 4  # nothing was stored


def test_one_reply_in_flight_per_chat_whatever_the_branch(alice: Api, worker: WorkerRole) -> None:
    chat_id, (_q1, r1, _q2, _r2) = _conversation(alice, worker)
    open_reply = _send(alice, chat_id, "three")["assistant_message"]
    path = f"/chats/{chat_id}/messages"
    busy = [
        alice.post(path, json={"content": "elsewhere", "role": "user", "parent_id": r1["id"]}),
        alice.post(path, json={"content": "root", "role": "user", "parent_id": None}),
        alice.post(f"{path}/{r1['id']}/retry"),
    ]
    for answer in busy:
        assert answer.status_code == 409, answer.text
        assert "still being generated" in answer.json()["detail"]
    # Following an open reply, or branching from it, is refused too.
    answer = alice.post(path, json={"content": "x", "role": "user", "parent_id": open_reply["id"]})
    assert answer.status_code == 409
    _answer(alice, worker, chat_id, open_reply)
    assert len(_tree(alice, chat_id)) == 6


def test_events_carry_the_parent(alice: Api, worker: WorkerRole) -> None:
    chat_id, (_q1, _r1, q2, r2) = _conversation(alice, worker)
    stream = SseStream(alice, chat_id)
    try:
        again = alice.post(f"/chats/{chat_id}/messages/{r2['id']}/retry").json()
        pending = stream.next()
        assert pending["event"] == "message.status"
        assert pending["data"]["message_id"] == again["id"]
        assert pending["data"]["parent_id"] == q2["id"]
        request, _ = worker.take_request(again["id"])
        worker.respond(request, "completed", "Echo: two")
        done = stream.until(lambda e: e["event"] == "message.completed")[-1]["data"]["message"]
        assert done["id"] == again["id"] and done["parent_id"] == q2["id"]
        assert done["sibling_ids"] == [r2["id"], again["id"]]
    finally:
        stream.close()


def test_a_chat_with_branches_can_be_deleted(alice: Api, worker: WorkerRole) -> None:
    chat_id, (_q1, r1, _q2, _r2) = _conversation(alice, worker)
    edited = _send(alice, chat_id, "two, better", parent_id=r1["id"])
    _answer(alice, worker, chat_id, edited["assistant_message"])
    assert alice.delete(f"/chats/{chat_id}").status_code == 204
    assert alice.get(f"/chats/{chat_id}/messages").status_code == 404
