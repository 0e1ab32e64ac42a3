"""Export (Markdown, JSON, the whole account) and import (ours, ChatGPT's conversations.json)."""

import json
from typing import Any

from tests.support import Api, RunNames, WorkerRole


def export_document(*chats: dict[str, Any]) -> dict[str, Any]:
    return {"format": "gemini-chat-export", "version": 1, "chats": list(chats)}


def chain(*turns: tuple[str, str]) -> list[dict[str, Any]]:
    """Messages as our export writes them: each one's parent is the one before."""
    messages, previous = [], None
    for index, (role, content) in enumerate(turns):
        ident = f"00000000-0000-4000-8000-{index:012d}"
        messages.append({"id": ident, "parent_id": previous, "role": role, "content": content})
        previous = ident
    return messages


def upload(api: Api, payload: bytes | str | dict | list, name: str = "export.json"):
    body = (
        payload
        if isinstance(payload, bytes)
        else (payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
    )
    return api.post("/import", files={"file": (name, body, "application/json")})


def import_ok(api: Api, payload: Any) -> dict[str, Any]:
    answer = upload(api, payload)
    assert answer.status_code == 201, answer.text
    return answer.json()


def chat_count(api: Api) -> int:
    return len(api.get("/chats", params={"limit": 100}).json()["items"])


def completed_chat(api: Api, worker: WorkerRole, question: str, reply: str) -> dict[str, Any]:
    chat = api.new_chat(title="Trip planning")
    sent = api.send(chat["id"], question)
    request, _ = worker.take_request(sent["assistant_message"]["id"])
    worker.respond(request, "completed", reply, model="gemini-2.5-flash")
    api.wait_status(chat["id"], sent["assistant_message"]["id"], "completed")
    return chat


def test_json_export_is_a_download_with_the_chain_models_and_tokens(
    alice: Api, worker: WorkerRole
) -> None:
    chat = completed_chat(alice, worker, "Where to in May?", "Lisbon is lovely in May.")
    answer = alice.get(f"/chats/{chat['id']}/export", params={"format": "json"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["content-disposition"].startswith(
        'attachment; filename="trip-planning.json"'
    )
    document = answer.json()
    assert document["format"] == "gemini-chat-export" and document["version"] == 1
    (exported,) = document["chats"]
    question, reply = exported["messages"]
    assert question["parent_id"] is None and reply["parent_id"] == question["id"]
    assert exported["active_leaf_id"] == reply["id"]
    assert reply["content"] == "Lisbon is lovely in May."
    assert reply["model"] == "gemini-2.5-flash"
    assert (reply["prompt_tokens"], reply["completion_tokens"]) == (11, 22)
    assert reply["created_at"] and reply["completed_at"]


def test_markdown_export_has_the_conversation(alice: Api, worker: WorkerRole) -> None:
    chat = completed_chat(alice, worker, "Where to in June?", "Try **Porto**.")
    answer = alice.get(f"/chats/{chat['id']}/export", params={"format": "markdown"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/markdown")
    assert 'filename="trip-planning.md"' in answer.headers["content-disposition"]
    text = answer.text
    assert text.startswith("# Trip planning\n")
    assert text.index("## You\n\nWhere to in June?") < text.index(
        "## Gemini (gemini-2.5-flash)\n\nTry **Porto**."
    )


def test_another_users_chat_cannot_be_exported(alice: Api, bob: Api) -> None:
    chat = alice.new_chat(title="Private")
    for format_ in ("json", "markdown"):
        assert bob.get(f"/chats/{chat['id']}/export", params={"format": format_}).status_code == 404
    assert alice.get(f"/chats/{chat['id']}/export", params={"format": "pdf"}).status_code == 422


def test_export_all_round_trips_through_import(alice: Api, bob: Api) -> None:
    import_ok(
        alice,
        export_document(
            {
                "title": "Rust lifetimes",
                "messages": chain(("user", "What is 'a?"), ("assistant", "A lifetime.")),
            },
            {
                "title": "Soup",
                "system_prompt": "Be brief.",
                "messages": chain(("user", "Leek soup?")),
            },
        ),
    )
    with alice.http.stream("GET", "/export") as answer:
        assert answer.status_code == 200
        assert "attachment" in answer.headers["content-disposition"]
        body = b"".join(answer.iter_bytes())
    everything = json.loads(body)
    titles = {chat["title"] for chat in everything["chats"]}
    assert {"Rust lifetimes", "Soup"} <= titles
    assert "email" not in body.decode()

    made = import_ok(bob, everything)
    assert made["imported"] == len(everything["chats"])
    by_title = {chat["title"]: chat["id"] for chat in made["chats"]}
    messages = bob.messages(by_title["Rust lifetimes"])
    assert [(m["role"], m["content"], m["status"]) for m in messages] == [
        ("user", "What is 'a?", "completed"),
        ("assistant", "A lifetime.", "completed"),
    ]
    assert bob.get(f"/chats/{by_title['Soup']}").json()["system_prompt"] == "Be brief."


def test_import_of_our_export_keeps_the_active_branch(alice: Api) -> None:
    messages = chain(("user", "Q"), ("assistant", "old answer"))
    messages.append(
        {
            "id": "branch-b",
            "parent_id": messages[0]["id"],
            "role": "assistant",
            "content": "new answer",
        }
    )
    made = import_ok(
        alice,
        export_document({"title": "Branches", "active_leaf_id": "branch-b", "messages": messages}),
    )
    contents = [m["content"] for m in alice.messages(made["chats"][0]["id"])]
    assert contents == ["Q", "new answer"]


def chatgpt_conversation() -> dict[str, Any]:
    """The shape of ChatGPT's conversations.json: a tree in `mapping`, the shown leaf in
    `current_node`; the question was edited, so there are two branches."""

    def node(ident, parent, children, role=None, text=None, **extra):
        message = None
        if role:
            message = {
                "id": ident,
                "author": {"role": role},
                "create_time": 1_700_000_000 + len(ident),
                "content": {"content_type": "text", "parts": [text]},
                "metadata": extra,
            }
        return {"id": ident, "message": message, "parent": parent, "children": children}

    mapping = {
        "root": node("root", None, ["sys"]),
        "sys": node(
            "sys", "root", ["q1", "q2"], "system", "", is_visually_hidden_from_conversation=True
        ),
        "q1": node("q1", "sys", ["a1"], "user", "First wording"),
        "a1": node("a1", "q1", [], "assistant", "Answer to the first", model_slug="gpt-4o"),
        "q2": node("q2", "sys", ["a2"], "user", "Second wording"),
        "a2": node("a2", "q2", ["t1"], "assistant", "Answer to the second", model_slug="gpt-4o"),
        "t1": node("t1", "a2", [], "tool", "tool output"),
    }
    return {
        "title": "Edited question",
        "create_time": 1_700_000_000.5,
        "update_time": 1_700_000_100.5,
        "mapping": mapping,
        "current_node": "t1",
    }


def test_chatgpt_import_takes_the_current_branch(alice: Api) -> None:
    made = import_ok(alice, [chatgpt_conversation(), {**chatgpt_conversation(), "title": "Twice"}])
    assert made["imported"] == 2
    assert [c["title"] for c in made["chats"]] == ["Edited question", "Twice"]
    messages = alice.messages(made["chats"][0]["id"])
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Second wording"),
        ("assistant", "Answer to the second"),
    ]
    assert messages[1]["model"] == "gpt-4o"
    assert messages[0]["created_at"].startswith("2023-11-14")


def test_bad_files_get_a_4xx_that_names_the_problem(alice: Api) -> None:
    before = chat_count(alice)
    cases = [
        (b"\xff\xfe not utf-8", 422, "UTF-8"),
        (b"{not json", 422, "not JSON"),
        (b"", 422, "empty"),
        (b'{"hello": "world"}', 422, "neither a Gemini Chat export nor a ChatGPT"),
        (
            json.dumps(export_document({"title": "x", "messages": "nope"})).encode(),
            422,
            "chats[0].messages",
        ),
        (json.dumps({**export_document(), "version": 9}).encode(), 422, "version 9"),
        (json.dumps([{"mapping": {}, "current_node": "gone"}]).encode(), 422, "current_node"),
        (
            json.dumps(
                export_document({"title": "nul", "messages": chain(("user", "a\u0000b"))})
            ).encode(),
            422,
            "NUL",
        ),
    ]
    for payload, status_code, words in cases:
        answer = upload(alice, payload)
        assert answer.status_code == status_code, (payload[:40], answer.text)
        assert words in answer.json()["detail"], answer.text
    no_file = alice.post("/import", files={"other": ("x.json", b"{}")})
    assert no_file.status_code == 422 and "file" in no_file.json()["detail"]
    not_multipart = alice.post("/import", json=export_document())
    assert not_multipart.status_code == 422
    assert chat_count(alice) == before


def test_an_oversized_file_gets_413_and_imports_nothing(alice: Api) -> None:
    before = chat_count(alice)
    huge = b"[" + b" " * (21 * 1024 * 1024) + b"]"
    answer = upload(alice, huge)
    assert answer.status_code == 413
    assert "IMPORT_MAX_BYTES" in answer.json()["detail"]
    assert chat_count(alice) == before


def test_a_half_bad_file_imports_nothing(alice: Api) -> None:
    before = chat_count(alice)
    answer = upload(
        alice,
        export_document(
            {"title": "good", "messages": chain(("user", "fine"))},
            {"title": "bad", "messages": chain(("system", "not a role we keep"))},
        ),
    )
    assert answer.status_code == 422 and "system" in answer.json()["detail"]
    half_chatgpt = [chatgpt_conversation(), {"title": "broken", "mapping": "nope"}]
    assert upload(alice, half_chatgpt).status_code == 422
    assert chat_count(alice) == before


def test_import_needs_a_login(anon: Api) -> None:
    assert upload(anon, export_document()).status_code == 401
    assert anon.get("/export").status_code == 401


def test_imported_chats_are_the_importers_only(alice: Api, bob: Api, run: RunNames) -> None:
    made = import_ok(alice, export_document({"title": "Mine", "messages": chain(("user", "hi"))}))
    chat_id = made["chats"][0]["id"]
    assert bob.get(f"/chats/{chat_id}").status_code == 404
    assert alice.get(f"/chats/{chat_id}").status_code == 200
