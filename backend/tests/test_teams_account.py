"""The settings page's account calls: sessions with their devices, revoking one, deleting
the account with its data."""

import httpx
import psycopg

from tests.support import Api, RunNames, Server, register

PASSWORD = "correct horse"


def _login(server: Server, email: str, device: str, password: str = PASSWORD) -> Api:
    answer = httpx.post(
        server.url + "/api/auth/login",
        json={"email": email, "password": password},
        headers={"User-Agent": device},
        timeout=15,
    )
    assert answer.status_code == 200, answer.text
    api = Api(server.url, answer.json()["access_token"])
    api.user = answer.json()["user"]
    return api


def test_sessions_list_their_device_and_one_can_be_revoked(server: Server, alice: Api) -> None:
    laptop = _login(server, alice.user["email"], "Laptop Firefox")
    phone = _login(server, alice.user["email"], "Phone Safari")
    listed = laptop.get("/auth/sessions").json()
    devices = {s["device"]: s for s in listed}
    assert devices["Laptop Firefox"]["current"] is True
    assert devices["Phone Safari"]["current"] is False
    assert devices["Phone Safari"]["last_seen_at"]
    assert sum(s["current"] for s in listed) == 1
    assert laptop.delete(f"/auth/sessions/{devices['Phone Safari']['id']}").status_code == 204
    assert phone.get("/auth/me").status_code == 401
    assert laptop.get("/auth/me").status_code == 200
    # Someone else's session is not found, so not revoked.
    bob = register(server.url)
    theirs = bob.get("/auth/sessions").json()[0]["id"]
    assert laptop.delete(f"/auth/sessions/{theirs}").status_code == 404
    assert bob.get("/auth/me").status_code == 200


def test_delete_my_account_takes_the_chats_with_it(
    server: Server, alice: Api, run: RunNames, anon: Api
) -> None:
    chat = alice.new_chat(title="mine")
    wrong = alice.request("DELETE", "/auth/me", json={"password": "not my password"})
    assert wrong.status_code == 403
    assert alice.request("DELETE", "/auth/me", json={}).status_code == 403
    done = alice.request("DELETE", "/auth/me", json={"password": PASSWORD})
    assert done.status_code == 204
    assert alice.get("/auth/me").status_code == 401
    with psycopg.connect(run.database_url()) as db:
        assert (
            db.execute("SELECT count(*) FROM chats WHERE id = %s", (chat["id"],)).fetchone()[0] == 0
        )
    login = anon.post("/auth/login", json={"email": alice.user["email"], "password": PASSWORD})
    assert login.status_code == 401


def test_the_last_admin_cannot_delete_their_own_account(admin: Api) -> None:
    answer = admin.request("DELETE", "/auth/me", json={"password": PASSWORD})
    assert answer.status_code == 409
    assert admin.get("/auth/me").status_code == 200


def test_account_calls_need_a_session(anon: Api) -> None:
    assert anon.get("/auth/sessions").status_code == 401
    assert anon.delete("/auth/sessions/00000000-0000-0000-0000-000000000000").status_code == 401
    assert anon.request("DELETE", "/auth/me", json={}).status_code == 401
