"""Hand-written bad input against the whole stack behind nginx: every case gets a clear 4xx (or
is stored and returned exactly as given), never a 5xx."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from harness.api import ChatClient
from harness.expected import expected_replies
from harness.launch import running_stack, wait_healthy

pytestmark = pytest.mark.system


@pytest.fixture
def user(deployed):
    """A logged-in user with one chat, over a plain (sync) httpx client."""

    async def make():
        async with ChatClient(deployed.url) as c:
            await c.register_and_login()
            return c.token, (await c.create_chat("bad input"))["id"]

    token, chat_id = asyncio.run(make())
    with httpx.Client(
        base_url=f"{deployed.url}/api", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        http.chat_id = chat_id
        yield http


def assert_clear_4xx(r: httpx.Response, *allowed: int) -> None:
    assert 400 <= r.status_code < 500, f"HTTP {r.status_code}: {r.text[:300]}"
    if allowed:
        assert r.status_code in allowed, f"HTTP {r.status_code}: {r.text[:300]}"
    if r.headers.get("content-type", "").startswith("application/json"):
        detail = r.json().get("detail")
        assert detail, r.text
        assert "Traceback" not in r.text


def stored_messages(http: httpx.Client) -> list[dict]:
    r = http.get(f"/chats/{http.chat_id}/messages")
    assert r.status_code == 200, r.text
    return r.json()


def wait_final(http: httpx.Client, message_id: str, deadline: float = 30) -> dict:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for m in stored_messages(http):
            if m["id"] == message_id and m["status"] in ("completed", "failed", "cancelled"):
                return m
        time.sleep(0.2)
    raise AssertionError(f"reply {message_id} not final within {deadline}s")


def test_oversized_bodies(user, deployed):
    limit = httpx.get(f"{deployed.url}/api/config").json()["max_message_chars"]
    url = f"/chats/{user.chat_id}/messages"
    assert_clear_4xx(user.post(url, json={"content": "x" * (limit + 1), "role": "user"}), 422)
    assert_clear_4xx(user.post(url, json={"content": "x" * 3_000_000, "role": "user"}), 413, 422)
    # The backend itself, without nginx's body limit in front of it.
    direct = f"http://127.0.0.1:{deployed.stack.ports['backend']}/api{url}"
    r = httpx.post(
        direct, json={"content": "y" * 3_000_000, "role": "user"}, headers=user.headers, timeout=30
    )
    assert_clear_4xx(r, 413, 422)
    assert stored_messages(user) == [], "an oversized message was stored"


def test_bad_uploads_through_nginx(user):
    """The issue's bad files through nginx: each a clear 4xx with the backend's JSON detail."""
    cases = [
        (b"\0" * (25 * 1024 * 1024), "big.png", 413),  # past MAX_UPLOAD_MB (20)
        (b"", "empty.txt", 422),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>', "a.svg", 415),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "cut.png", 422),
    ]
    for data, name, status in cases:
        r = user.post("/uploads", files={"file": (name, data, "application/octet-stream")})
        assert r.headers["content-type"].startswith("application/json"), (name, r.text[:200])
        assert_clear_4xx(r, status)
    # Attaching what is not one's own upload, or no upload at all.
    r = user.post(
        f"/chats/{user.chat_id}/messages",
        json={"content": "x", "attachments": ["00000000-0000-0000-0000-000000000000"]},
    )
    assert_clear_4xx(r, 404)
    r = user.post(f"/chats/{user.chat_id}/messages", json={"content": "x", "attachments": ["nope"]})
    assert_clear_4xx(r, 422)
    assert stored_messages(user) == []


def test_deep_and_malformed_json(user):
    url = f"/chats/{user.chat_id}/messages"
    json_headers = {"Content-Type": "application/json"}
    deep = "[" * 100_000 + "]" * 100_000
    assert_clear_4xx(user.post(url, content=deep, headers=json_headers), 400, 422)
    nested = '{"content": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + ', "role": "user"}'
    assert_clear_4xx(user.post(url, content=nested, headers=json_headers), 400, 422)
    for body in (
        '{"content": "unterminated',
        "",
        "null",
        "[]",
        '{"content": 5, "role": "user"}',
        '{"content": "hi", "role": "assistant"}',
        '{"role": "user"}',
    ):
        assert_clear_4xx(user.post(url, content=body, headers=json_headers), 400, 422)
    assert_clear_4xx(user.post("/chats", content=deep, headers=json_headers), 400, 422)
    assert stored_messages(user) == []


def test_invalid_utf8(user):
    url = f"/chats/{user.chat_id}/messages"
    headers = {"Content-Type": "application/json"}
    for body in (
        b'{"content": "\xff\xfe\xfd", "role": "user"}',
        b'{"content": "ok\xc3", "role": "user"}',
        b'{"content": "\xed\xa0\x80 lone surrogate", "role": "user"}',
        b'{"content": "\\ud800 escaped lone surrogate", "role": "user"}',
    ):
        assert_clear_4xx(user.post(url, content=body, headers=headers), 400, 422)
    for body in (b'{"title": "\\udfff"}', b'{"system_prompt": "\xed\xb0\x80"}'):
        assert_clear_4xx(user.post("/chats", content=body, headers=headers), 400, 422)
        assert_clear_4xx(
            user.patch(f"/chats/{user.chat_id}", content=body, headers=headers), 400, 422
        )
    r = user.post(
        "/auth/register",
        content=b'{"email": "a@x.io", "password": "\\ud800 long enough pass"}',
        headers=headers,
    )
    assert_clear_4xx(r, 400, 422)
    assert stored_messages(user) == []


HOSTILE_TEXTS = [
    "'; DROP TABLE messages; --",
    "1' OR '1'='1' UNION SELECT email, password_hash FROM users --",
    '<script>alert("x")</script><img src=x onerror=alert(1)>',
    "</textarea><svg/onload=alert(document.cookie)> &amp; &lt;b&gt; {{7*7}} ${7*7}",
    "emoji 🧪 and RTL \u202e txet and zero\u200bwidth and 漢字",
]


def test_hostile_text_is_stored_and_returned_verbatim(user):
    """SQL- and HTML-looking text is data: stored, sent to the model and shown back exactly."""
    title = HOSTILE_TEXTS[2]
    r = user.patch(f"/chats/{user.chat_id}", json={"title": title})
    assert r.status_code == 200, r.text
    assert user.get(f"/chats/{user.chat_id}").json()["title"] == title
    turns = []
    for text in HOSTILE_TEXTS:
        r = user.post(f"/chats/{user.chat_id}/messages", json={"content": text, "role": "user"})
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["user_message"]["content"] == text
        reply = wait_final(user, body["assistant_message"]["id"])
        assert reply["status"] == "completed", reply
        turns.append((text, reply["content"]))
    stored = stored_messages(user)
    assert [m["content"] for m in stored if m["role"] == "user"] == HOSTILE_TEXTS
    contents: list[dict] = []
    requests = []
    for text, reply in turns:
        contents.append({"role": "user", "text": text})
        requests.append({"contents": list(contents)})
        contents.append({"role": "model", "text": reply})
    assert [reply for _, reply in turns] == expected_replies(requests)


def test_nul_character_is_refused_or_kept(user):
    """PostgreSQL text cannot hold NUL: the API must say so (4xx) or keep it, never a 500."""
    r = user.post(f"/chats/{user.chat_id}/messages", json={"content": "a\u0000b", "role": "user"})
    if r.status_code == 202:
        assert r.json()["user_message"]["content"] == "a\u0000b"
    else:
        assert_clear_4xx(r, 400, 422)
    r = user.post("/chats", json={"title": "nul\u0000title"})
    assert r.status_code < 500, r.text


def test_hostile_last_event_id(user, deployed):
    url = f"/chats/{user.chat_id}/events"
    direct = f"http://127.0.0.1:{deployed.stack.ports['backend']}/api{url}"
    for value in (
        b"9" * 4000 + b"-0",
        b"garbage",
        b"-1--1",
        b"1-" + b"9" * 40,
        "💥".encode(),
        b"\xff\xfe",
        b"18446744073709551616-18446744073709551616",
    ):
        for target in (str(user.base_url) + url, direct):
            with httpx.stream(
                "GET",
                target,
                headers={**user.headers, "Last-Event-ID": value},
                timeout=httpx.Timeout(5.0),
            ) as r:
                if r.status_code == 200:
                    assert r.headers["content-type"].startswith("text/event-stream")
                else:
                    r.read()
                    assert_clear_4xx(r)
    assert httpx.get(f"{deployed.url}/api/health").status_code == 200
    # A header far larger than any id: refused by nginx or the backend, not a crash.
    r = httpx.get(
        str(user.base_url) + url,
        headers={**user.headers, "Last-Event-ID": "1" * 200_000},
        timeout=10,
    )
    assert_clear_4xx(r)


def test_forged_and_revoked_tokens(deployed):
    api = f"{deployed.url}/api"
    forged = [
        "not-a-token",
        "A" * 43,
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwiaXNfYWRtaW4iOnRydWV9.",
        "x" * 6000,
        "' OR 1=1 --",
    ]
    for token in forged:
        r = httpx.get(f"{api}/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert_clear_4xx(r, 401)
        r = httpx.get(f"{api}/chats", cookies={"session": token})
        assert_clear_4xx(r, 401)
    for header in ("Bearer", "Basic dXNlcjpwYXNz", "Bearer a b", "bearer " + "z" * 30):
        assert_clear_4xx(httpx.get(f"{api}/auth/me", headers={"Authorization": header}), 401)

    async def revoked():
        async with ChatClient(deployed.url) as c:
            await c.register_and_login()
            me = await c.http.get("/auth/me", headers=c.auth)
            assert me.status_code == 200
            assert (await c.http.post("/auth/logout", headers=c.auth)).status_code == 204
            return await c.http.get("/auth/me", headers=c.auth)

    assert_clear_4xx(asyncio.run(revoked()), 401)


def test_expired_token():
    """A session past SESSION_TTL_HOURS is refused with 401 (a backend of its own with a
    two-second session lifetime)."""
    with running_stack(
        "sysexpiry", components=("backend",), env={"SESSION_TTL_HOURS": str(2 / 3600)}
    ) as stack:
        wait_healthy(stack.url)

        async def expire():
            async with ChatClient(stack.url) as c:
                await c.register_and_login()
                assert (await c.http.get("/auth/me", headers=c.auth)).status_code == 200
                end = time.monotonic() + 15
                while time.monotonic() < end:
                    r = await c.http.get("/auth/me", headers=c.auth)
                    if r.status_code != 200:
                        return r
                    await asyncio.sleep(0.25)
                raise AssertionError("the session never expired")

        assert_clear_4xx(asyncio.run(expire()), 401)
