import secrets

import httpx
import psycopg

from tests.support import Api, RunNames, Server, register, wait_for


def test_first_account_is_admin_later_ones_are_not(admin: Api, alice: Api) -> None:
    assert admin.user["is_admin"] is True
    assert alice.user["is_admin"] is False
    me = alice.get("/auth/me")
    assert me.status_code == 200
    assert set(me.json()) == {"id", "email", "is_admin", "created_at"}
    assert me.json()["email"] == alice.user["email"]


def test_register_answers_the_user_and_never_the_password(anon: Api) -> None:
    email = f"New-{secrets.token_hex(4)}@Example.com"
    answer = anon.post("/auth/register", json={"email": email, "password": "long enough"})
    assert answer.status_code == 201
    body = answer.json()
    assert body["email"] == email.lower()
    assert "password" not in answer.text and "long enough" not in answer.text


def test_register_twice_is_a_conflict_whatever_the_case(anon: Api) -> None:
    email = f"twice-{secrets.token_hex(4)}@example.com"
    assert (
        anon.post("/auth/register", json={"email": email, "password": "password1"}).status_code
        == 201
    )
    again = anon.post("/auth/register", json={"email": email.upper(), "password": "password2"})
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]


def test_register_rejects_bad_input(anon: Api) -> None:
    cases = [
        {"email": "not-an-email", "password": "password1"},
        {"email": "a@example.com", "password": "tiny7"},
        {"email": "a@example.com"},
        {"email": 5, "password": "password1"},
        {"email": "a@example.com", "password": "password1", "is_admin": True},
        {"email": "nul\x00@example.com", "password": "password1"},
    ]
    for body in cases:
        answer = anon.post("/auth/register", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["detail"]
        assert "tiny7" not in answer.text  # a password is never echoed back
    malformed = anon.post(
        "/auth/register",
        content=b'{"email": "x@y.z",',
        headers={"content-type": "application/json"},
    )
    assert malformed.status_code == 422


def test_login_sets_an_http_only_lax_cookie_that_works_alone(server: Server, alice: Api) -> None:
    answer = httpx.post(
        server.url + "/api/auth/login",
        json={"email": alice.user["email"], "password": "correct horse"},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer" and body["user"]["id"] == alice.user["id"]
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    with httpx.Client(base_url=server.url + "/api", cookies=answer.cookies) as browser:
        assert browser.get("/auth/me").json()["id"] == alice.user["id"]


def test_login_with_a_wrong_password_or_unknown_email_is_401(anon: Api, alice: Api) -> None:
    wrong = anon.post("/auth/login", json={"email": alice.user["email"], "password": "nope nope"})
    unknown = anon.post("/auth/login", json={"email": "nobody@example.com", "password": "x" * 10})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_logout_revokes_that_token_only(server: Server, alice: Api) -> None:
    second = Api(
        server.url,
        httpx.post(
            server.url + "/api/auth/login",
            json={"email": alice.user["email"], "password": "correct horse"},
        ).json()["access_token"],
    )
    assert alice.get("/auth/me").status_code == 200  # cached in Redis now
    answer = alice.post("/auth/logout")
    assert answer.status_code == 204
    assert "chat_session=" in answer.headers["set-cookie"]
    gone = alice.get("/auth/me")
    assert gone.status_code == 401 and gone.headers["www-authenticate"] == "Bearer"
    assert second.get("/auth/me").status_code == 200


def test_endpoints_need_a_login(anon: Api) -> None:
    chat = "00000000-0000-0000-0000-000000000000"
    for method, path in [
        ("GET", "/auth/me"),
        ("POST", "/auth/logout"),
        ("GET", "/chats"),
        ("POST", "/chats"),
        ("GET", f"/chats/{chat}"),
        ("PATCH", f"/chats/{chat}"),
        ("DELETE", f"/chats/{chat}"),
        ("GET", f"/chats/{chat}/messages"),
        ("POST", f"/chats/{chat}/messages"),
        ("GET", f"/chats/{chat}/events"),
        ("POST", f"/chats/{chat}/messages/{chat}/cancel"),
        ("POST", f"/chats/{chat}/messages/{chat}/retry"),
        ("GET", "/models"),
        ("GET", "/admin/keys"),
    ]:
        answer = anon.request(method, path, json={})
        assert answer.status_code == 401, (method, path, answer.status_code)
    forged = Api(anon.url, "forged-token").get("/auth/me")
    assert forged.status_code == 401


def test_closed_registration_answers_403(run: RunNames, server: Server, logs) -> None:
    closed = Server(run.env(ALLOW_REGISTRATION="false"), logs).wait_ready()
    try:
        answer = httpx.post(
            closed.url + "/api/auth/register",
            json={"email": "late@example.com", "password": "password1"},
        )
        assert answer.status_code == 403
        assert "closed" in answer.json()["detail"]
        assert httpx.get(closed.url + "/api/config").json()["allow_registration"] is False
        # Existing accounts still log in.
        user = register(server.url)
        login = httpx.post(
            closed.url + "/api/auth/login",
            json={"email": user.user["email"], "password": "correct horse"},
        )
        assert login.status_code == 200
    finally:
        closed.stop()


def test_an_email_that_grows_when_lowercased_is_refused(anon: Api) -> None:
    # 306 characters as sent, 606 once lowercased: more than the column holds.
    email = "İ" * 300 + "@x.com"
    for path in ("/auth/register", "/auth/login"):
        answer = anon.post(path, json={"email": email, "password": "password1"})
        assert answer.status_code == 422, (path, answer.text)
        assert "320" in answer.text


def _login(server: Server, email: str, password: str = "correct horse") -> httpx.Response:
    return httpx.post(
        server.url + "/api/auth/login", json={"email": email, "password": password}, timeout=15
    )


def test_password_change_ends_the_other_sessions(server: Server, alice: Api) -> None:
    email = alice.user["email"]
    other = Api(server.url, _login(server, email).json()["access_token"])
    assert other.get("/auth/me").status_code == 200  # cached in Redis now

    wrong = alice.post(
        "/auth/password", json={"current_password": "not mine", "new_password": "new secret 1"}
    )
    assert wrong.status_code == 403 and "current password" in wrong.json()["detail"]
    short = alice.post(
        "/auth/password", json={"current_password": "correct horse", "new_password": "short"}
    )
    assert short.status_code == 422
    assert other.get("/auth/me").status_code == 200

    changed = alice.post(
        "/auth/password",
        json={"current_password": "correct horse", "new_password": "new secret 1"},
    )
    assert changed.status_code == 204, changed.text
    assert alice.get("/auth/me").status_code == 200  # the session that changed it stays
    assert other.get("/auth/me").status_code == 401
    assert _login(server, email).status_code == 401
    assert _login(server, email, "new secret 1").status_code == 200


def test_logout_everywhere_ends_every_session(server: Server, alice: Api, bob: Api) -> None:
    others = [Api(server.url, _login(server, alice.user["email"]).json()["access_token"])]
    for api in (alice, *others, bob):
        assert api.get("/auth/me").status_code == 200  # each cached in Redis
    answer = alice.post("/auth/logout-all")
    assert answer.status_code == 204
    assert "chat_session=" in answer.headers["set-cookie"]
    for api in (alice, *others):
        assert api.get("/auth/me").status_code == 401
    assert bob.get("/auth/me").status_code == 200  # another user's sessions are untouched
    assert _login(server, alice.user["email"]).status_code == 200


def test_expired_sessions_are_removed_on_a_schedule(run: RunNames, alice: Api) -> None:
    # An expired session of a user who never logs in again: nothing but the schedule removes it.
    with psycopg.connect(run.database_url(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO login_sessions (id, user_id, token_hash, expires_at)"
            " VALUES (gen_random_uuid(), %s, %s, now() - interval '1 hour')",
            (alice.user["id"], secrets.token_hex(32)),
        )

        def expired() -> int:
            query = "SELECT count(*) FROM login_sessions WHERE expires_at <= now()"
            return conn.execute(query).fetchone()[0]

        assert expired() >= 1
        wait_for(lambda: expired() == 0, "the expired session to be removed", timeout=10)
    assert alice.get("/auth/me").status_code == 200  # live sessions stay
