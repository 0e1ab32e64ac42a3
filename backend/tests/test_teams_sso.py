"""Single sign-on against a real OpenID Connect provider over HTTP (tests/oidc/provider.py):
the code flow with PKCE, state and nonce, and what a careful client refuses."""

import secrets
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.oidc.provider import Identity, Provider
from tests.support import Api, RunNames, Server, register

CLIENT_ID = "gemini-chat"
CLIENT_SECRET = "s3cret-" + secrets.token_hex(8)
ADMIN_GROUP = "chat-admins"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    running = Provider(CLIENT_ID, CLIENT_SECRET).start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _honest(provider: Provider) -> None:
    provider.bad_signature = provider.expired = False


@pytest.fixture(scope="module")
def sso(run: RunNames, server: Server, admin: Api, provider: Provider, logs) -> Iterator[Server]:
    backend = Server(
        run.env(
            OIDC_ISSUER=provider.issuer,
            OIDC_CLIENT_ID=CLIENT_ID,
            OIDC_CLIENT_SECRET=CLIENT_SECRET,
            OIDC_ADMIN_GROUPS=ADMIN_GROUP,
            PASSWORD_LOGIN="false",
        ),
        logs,
    )
    try:
        yield backend.wait_ready()
    finally:
        backend.stop()


def _identity(**overrides) -> Identity:
    tag = secrets.token_hex(4)
    return Identity(sub=f"sub-{tag}", email=f"sso-{tag}@example.com", **overrides)


def _to_provider(sso: Server, browser: httpx.Client) -> str:
    start = browser.get(sso.url + "/api/auth/oidc/login")
    assert start.status_code == 302, start.text
    location = start.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert query["state"] and query["nonce"]
    return location


def _back_from_provider(browser: httpx.Client, authorize_url: str) -> str:
    answer = browser.get(authorize_url)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def _sign_in(sso: Server, provider: Provider, who: Identity) -> tuple[httpx.Client, httpx.Response]:
    provider.next_identity = who
    browser = httpx.Client(timeout=15)
    callback = _back_from_provider(browser, _to_provider(sso, browser))
    return browser, browser.get(callback)


def test_first_sign_in_creates_the_account_and_signs_in(sso: Server, provider: Provider) -> None:
    who = _identity()
    browser, done = _sign_in(sso, provider, who)
    assert done.status_code == 303 and done.headers["location"] == "/"
    me = browser.get(sso.url + "/api/auth/me")
    assert me.status_code == 200, me.text
    assert me.json()["email"] == who.email and me.json()["is_admin"] is False
    # The second sign-in finds the same account by its subject.
    again, done = _sign_in(sso, provider, who)
    assert again.get(sso.url + "/api/auth/me").json()["id"] == me.json()["id"]


def test_a_verified_email_links_the_existing_account(
    server: Server, sso: Server, provider: Provider
) -> None:
    existing = register(server.url)
    who = _identity()
    who.email = existing.user["email"]
    browser, done = _sign_in(sso, provider, who)
    assert done.status_code == 303
    assert browser.get(sso.url + "/api/auth/me").json()["id"] == existing.user["id"]


def test_an_unverified_email_is_refused(server: Server, sso: Server, provider: Provider) -> None:
    existing = register(server.url)
    who = _identity(email_verified=False)
    who.email = existing.user["email"]
    browser, done = _sign_in(sso, provider, who)
    assert done.status_code == 403
    assert "verified" in done.json()["detail"]
    assert "chat_session" not in browser.cookies


def test_admin_rights_come_from_the_group_claim(sso: Server, provider: Provider) -> None:
    who = _identity(groups=["staff", ADMIN_GROUP])
    browser, _ = _sign_in(sso, provider, who)
    assert browser.get(sso.url + "/api/auth/me").json()["is_admin"] is True
    assert browser.get(sso.url + "/api/admin/users").status_code == 200
    who.groups = ["staff"]
    browser, _ = _sign_in(sso, provider, who)
    assert browser.get(sso.url + "/api/auth/me").json()["is_admin"] is False


def test_a_forged_state_is_refused(sso: Server, provider: Provider) -> None:
    provider.next_identity = _identity()
    browser = httpx.Client(timeout=15)
    callback = _back_from_provider(browser, _to_provider(sso, browser))
    parts = urlsplit(callback)
    code = parse_qs(parts.query)["code"][0]
    forged = browser.get(
        sso.url + "/api/auth/oidc/callback", params={"code": code, "state": "forged"}
    )
    assert forged.status_code == 403 and "state" in forged.json()["detail"]
    # Another browser with the genuine callback (a login CSRF) is refused too.
    stranger = httpx.Client(timeout=15)
    assert stranger.get(callback).status_code == 403
    # The flow's state is spent once: a replay after a real sign-in fails.
    assert browser.get(callback).status_code == 303
    assert browser.get(callback).status_code == 403


def test_a_bad_signature_is_refused(sso: Server, provider: Provider) -> None:
    provider.bad_signature = True
    browser, done = _sign_in(sso, provider, _identity())
    assert done.status_code == 403 and "ID token" in done.json()["detail"]
    assert browser.get(sso.url + "/api/auth/me").status_code == 401


def test_an_expired_token_is_refused(sso: Server, provider: Provider) -> None:
    provider.expired = True
    browser, done = _sign_in(sso, provider, _identity())
    assert done.status_code == 403 and "ID token" in done.json()["detail"]
    assert browser.get(sso.url + "/api/auth/me").status_code == 401


def test_password_login_can_be_turned_off(server: Server, sso: Server) -> None:
    user = register(server.url)
    options = httpx.get(sso.url + "/api/auth/options").json()
    assert options == {"registration": "true", "password_login": False, "sso": True}
    login = httpx.post(
        sso.url + "/api/auth/login", json={"email": user.user["email"], "password": "correct horse"}
    )
    assert login.status_code == 403 and "single sign-on" in login.json()["detail"]


def test_sso_answers_404_when_not_set_up(anon: Api) -> None:
    answer = anon.get("/auth/oidc/login", follow_redirects=False)
    assert answer.status_code == 404
    assert anon.get("/auth/options").json()["sso"] is False
