"""User administration, invites, reset links and the audit log, against the real stack."""

import secrets
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.support import Api, RunNames, Server, WorkerRole, register, wait_for

PASSWORD = "correct horse"
ANY_ID = str(uuid.uuid4())

ADMIN_CALLS = [
    ("GET", "/admin/users", None),
    ("PATCH", f"/admin/users/{ANY_ID}", {"disabled": True}),
    ("DELETE", f"/admin/users/{ANY_ID}", None),
    ("POST", f"/admin/users/{ANY_ID}/reset-link", None),
    ("POST", "/admin/invites", {}),
    ("GET", "/admin/invites", None),
    ("DELETE", f"/admin/invites/{ANY_ID}", None),
    ("GET", "/admin/audit", None),
]


def _users(api: Api, **params) -> dict:
    answer = api.get("/admin/users", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _find(api: Api, email: str) -> dict:
    items = _users(api, q=email)["items"]
    assert len(items) == 1, items
    return items[0]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
def test_every_admin_call_refuses_anonymous_and_non_admins(
    anon: Api, alice: Api, method: str, path: str, body
) -> None:
    assert anon.request(method, path, json=body).status_code == 401
    refused = alice.request(method, path, json=body)
    assert refused.status_code == 403, refused.text
    assert "admin" in refused.json()["detail"]


def test_users_list_searches_and_pages_with_a_cursor(admin: Api) -> None:
    tag = secrets.token_hex(4)
    made = [register(admin.url, f"page-{tag}-{i}@example.com").user["email"] for i in range(5)]
    first = _users(admin, q=f"page-{tag}", limit=2)
    assert [u["email"] for u in first["items"]] == made[::-1][:2]  # newest first
    second = _users(admin, q=f"page-{tag}", limit=2, before=first["next"])
    third = _users(admin, q=f"page-{tag}", limit=2, before=second["next"])
    seen = [u["email"] for page in (first, second, third) for u in page["items"]]
    assert seen == made[::-1]
    assert third["next"] is None
    row = first["items"][0]
    assert set(row) >= {
        "id",
        "email",
        "is_admin",
        "disabled",
        "created_at",
        "last_seen_at",
        "usage_today",
        "limits",
    }
    assert row["usage_today"] == {"messages": 0, "tokens": 0}
    assert set(row["limits"]) == {"messages_per_day", "tokens_per_day"}
    # A LIKE wildcard is searched for as itself.
    assert _users(admin, q=f"page_{tag}")["items"] == []
    assert admin.get("/admin/users", params={"limit": 0}).status_code == 422
    assert admin.get("/admin/users", params={"before": "nope"}).status_code == 422


def test_usage_today_counts_the_users_messages(admin: Api, alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "count me")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    worker.respond(request, "completed", "Echo: count me")
    alice.wait_status(chat["id"], reply["id"], "completed")
    assert _find(admin, alice.user["email"])["usage_today"]["messages"] == 1


def test_the_last_admin_cannot_be_demoted_disabled_or_deleted(admin: Api, alice: Api) -> None:
    me = admin.user["id"]
    for body in ({"is_admin": False}, {"disabled": True}):
        answer = admin.patch(f"/admin/users/{me}", json=body)
        assert answer.status_code == 409, answer.text
        assert "last admin" in answer.json()["detail"]
    assert admin.delete(f"/admin/users/{me}").status_code == 409
    # With a second admin, either may step down; then the other is the last again.
    promoted = admin.patch(f"/admin/users/{alice.user['id']}", json={"is_admin": True})
    assert promoted.status_code == 200 and promoted.json()["is_admin"] is True
    assert alice.get("/admin/users").status_code == 200  # the cached session knows at once
    demoted = alice.patch(f"/admin/users/{alice.user['id']}", json={"is_admin": False})
    assert demoted.status_code == 200
    assert alice.get("/admin/users").status_code == 403
    assert admin.patch(f"/admin/users/{me}", json={"is_admin": False}).status_code == 409


def test_patch_rejects_bad_input_and_unknown_users(admin: Api, alice: Api) -> None:
    target = f"/admin/users/{alice.user['id']}"
    for body in (
        {"disabled": "yes"},
        {"is_admin": 1},
        {"limits": {"messages_per_day": -1}},
        {"limits": {"bogus": 3}},
        {"email": "x@y.z"},
    ):
        assert admin.patch(target, json=body).status_code == 422, body
    assert admin.patch(f"/admin/users/{ANY_ID}", json={"disabled": True}).status_code == 404
    assert admin.patch("/admin/users/not-a-uuid", json={}).status_code == 422
    limited = admin.patch(target, json={"limits": {"messages_per_day": 5}})
    assert limited.status_code == 200, limited.text


def test_disabling_ends_sessions_and_keeps_queued_replies(
    admin: Api, alice: Api, worker: WorkerRole, run: RunNames
) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "finish me")["assistant_message"]
    answer = admin.patch(f"/admin/users/{alice.user['id']}", json={"disabled": True})
    assert answer.status_code == 200 and answer.json()["disabled"] is True
    assert alice.get("/auth/me").status_code == 401
    login = httpx.post(
        alice.url + "/api/auth/login", json={"email": alice.user["email"], "password": PASSWORD}
    )
    assert login.status_code == 403 and "disabled" in login.json()["detail"]
    # The reply queued before still finishes and is kept.
    request, _ = worker.take_request(reply["id"])
    worker.respond(request, "completed", "Echo: finish me")
    with psycopg.connect(run.database_url()) as db:
        wait_for(
            lambda: (
                db.execute("SELECT status FROM messages WHERE id = %s", (reply["id"],)).fetchone()[
                    0
                ]
                == "completed"
            ),
            "the disabled user's reply to complete",
        )
    # Enabled again, the account signs in as before.
    assert (
        admin.patch(f"/admin/users/{alice.user['id']}", json={"disabled": False}).status_code == 200
    )
    login = httpx.post(
        alice.url + "/api/auth/login", json={"email": alice.user["email"], "password": PASSWORD}
    )
    assert login.status_code == 200


def test_delete_removes_the_user_and_their_chats(admin: Api, alice: Api, run: RunNames) -> None:
    chat = alice.new_chat(title="to be deleted")
    assert admin.delete(f"/admin/users/{alice.user['id']}").status_code == 204
    assert alice.get("/auth/me").status_code == 401
    with psycopg.connect(run.database_url()) as db:
        assert (
            db.execute("SELECT count(*) FROM chats WHERE id = %s", (chat["id"],)).fetchone()[0] == 0
        )
        assert (
            db.execute("SELECT count(*) FROM users WHERE id = %s", (alice.user["id"],)).fetchone()[
                0
            ]
            == 0
        )
    assert admin.delete(f"/admin/users/{alice.user['id']}").status_code == 404


def test_a_reset_link_works_once_and_ends_the_sessions(admin: Api, alice: Api, anon: Api) -> None:
    made = admin.post(f"/admin/users/{alice.user['id']}/reset-link")
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["url"].endswith(f"/reset?token={link['token']}")
    assert (
        anon.post(
            "/auth/reset", json={"token": "forged", "new_password": "new password"}
        ).status_code
        == 403
    )
    assert (
        anon.post("/auth/reset", json={"token": link["token"], "new_password": "short"}).status_code
        == 422
    )
    done = anon.post("/auth/reset", json={"token": link["token"], "new_password": "brand new pw"})
    assert done.status_code == 204
    assert alice.get("/auth/me").status_code == 401
    again = anon.post("/auth/reset", json={"token": link["token"], "new_password": "another pw1"})
    assert again.status_code == 403
    login = anon.post(
        "/auth/login", json={"email": alice.user["email"], "password": "brand new pw"}
    )
    assert login.status_code == 200
    assert link["token"] not in admin.get("/admin/audit").text


def test_the_audit_log_names_who_did_what(admin: Api, bob: Api) -> None:
    admin.patch(f"/admin/users/{bob.user['id']}", json={"disabled": True})
    admin.patch(f"/admin/users/{bob.user['id']}", json={"disabled": False})
    page = admin.get("/admin/audit", params={"limit": 2}).json()
    assert [e["action"] for e in page["items"]] == ["user.enable", "user.disable"]
    assert {e["actor_email"] for e in page["items"]} == {admin.user["email"]}
    assert {e["target"] for e in page["items"]} == {bob.user["email"]}
    older = admin.get("/admin/audit", params={"limit": 2, "before": page["next"]}).json()
    assert all(e["id"] < page["items"][-1]["id"] for e in older["items"])


@pytest.fixture(scope="module")
def invite_only(run: RunNames, server: Server, admin: Api, logs) -> Iterator[Server]:
    backend = Server(
        run.env(ALLOW_REGISTRATION="invite", SIGNUPS_PER_ADDRESS_PER_HOUR=0, INVITE_TTL_HOURS=2),
        logs,
    )
    try:
        yield backend.wait_ready()
    finally:
        backend.stop()


def _signup(server: Server, email: str, invite: str | None = None) -> httpx.Response:
    body = {"email": email, "password": PASSWORD}
    if invite is not None:
        body["invite"] = invite
    return httpx.post(server.url + "/api/auth/register", json=body, timeout=15)


def test_invite_only_sign_up_needs_a_valid_single_use_invite(
    invite_only: Server, admin: Api
) -> None:
    staff = Api(invite_only.url, admin.token)
    assert httpx.get(invite_only.url + "/api/auth/options").json()["registration"] == "invite"
    email = f"invited-{secrets.token_hex(4)}@example.com"
    assert _signup(invite_only, email).status_code == 403
    assert _signup(invite_only, email, "forged-invite").status_code == 403
    made = staff.post("/admin/invites", json={})
    assert made.status_code == 201, made.text
    invite = made.json()
    assert set(invite) >= {"token", "url", "expires_at"}
    assert invite["url"].endswith(f"/signup?invite={invite['token']}")
    assert _signup(invite_only, email, invite["token"]).status_code == 201
    # Single use: the second sign-up with it is refused, and no account is made.
    other = f"second-{secrets.token_hex(4)}@example.com"
    assert _signup(invite_only, other, invite["token"]).status_code == 403
    listed = {i["id"]: i for i in staff.get("/admin/invites").json()}
    assert listed[invite["id"]]["status"] == "used"
    assert listed[invite["id"]]["used_by"] == email
    assert "token" not in listed[invite["id"]]
    assert staff.get("/admin/users", params={"q": other}).json()["items"] == []


def test_an_invite_for_one_email_expires_and_can_be_withdrawn(
    invite_only: Server, admin: Api, run: RunNames
) -> None:
    staff = Api(invite_only.url, admin.token)
    for_carol = staff.post("/admin/invites", json={"email": "Carol@Example.com"}).json()
    assert for_carol["email"] == "carol@example.com"
    assert _signup(invite_only, "mallory@example.com", for_carol["token"]).status_code == 403
    withdrawn = staff.post("/admin/invites", json={"expires_hours": 1}).json()
    assert staff.delete(f"/admin/invites/{withdrawn['id']}").status_code == 204
    assert staff.delete(f"/admin/invites/{withdrawn['id']}").status_code == 404
    assert _signup(invite_only, "late@example.com", withdrawn["token"]).status_code == 403
    stale = staff.post("/admin/invites", json={}).json()
    with psycopg.connect(run.database_url()) as db:
        db.execute(
            "UPDATE invites SET expires_at = now() - interval '1 minute' WHERE id = %s",
            (stale["id"],),
        )
    assert _signup(invite_only, "stale@example.com", stale["token"]).status_code == 403
    statuses = {i["id"]: i["status"] for i in staff.get("/admin/invites").json()}
    assert statuses[stale["id"]] == "expired" and statuses[for_carol["id"]] == "open"
    assert staff.post("/admin/invites", json={"expires_hours": 0}).status_code == 422
    assert staff.post("/admin/invites", json={"email": "nope"}).status_code == 422
