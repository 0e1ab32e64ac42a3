"""Sign-in under attack: failed logins and sign-ups are limited (shared by every backend
process through Redis), and a flood of logins leaves the database pool to everyone else."""

import asyncio
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import Api, RunNames, Server, SseStream, register

PASSWORD = "correct horse"
ACCOUNT_LIMIT = 3
ADDRESS_LIMIT = 5
SIGNUP_LIMIT = 4
RECHECK_SECONDS = 2


@pytest.fixture(scope="module")
def limited(run: RunNames, server: Server, admin: Api, logs) -> Iterator[list[Server]]:
    """Two backend processes with small limits, so the tests show the window is shared.
    (`admin`: the run's first account is made first, as the other files expect.)"""
    settings = run.env(
        LOGIN_FAILURES_PER_ACCOUNT=ACCOUNT_LIMIT,
        LOGIN_FAILURES_PER_ADDRESS=ADDRESS_LIMIT,
        SIGNUPS_PER_ADDRESS_PER_HOUR=SIGNUP_LIMIT,
        LOGIN_WINDOW_SECONDS=600,
        STREAM_SESSION_CHECK_SECONDS=RECHECK_SECONDS,
    )
    servers = [Server(settings, logs), Server(settings, logs)]
    try:
        yield [s.wait_ready() for s in servers]
    finally:
        for s in servers:
            s.stop()


def _address() -> str:
    # The servers trust 127.0.0.1 as their proxy (uvicorn's default), as the backend trusts
    # nginx: X-Forwarded-For is how a test comes from an address of its own.
    return "10." + ".".join(str(secrets.randbelow(250) + 1) for _ in range(3))


def _login(server: Server, email: str, password: str, address: str) -> httpx.Response:
    return httpx.post(
        server.url + "/api/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": address},
        timeout=15,
    )


def test_failed_logins_per_account_answer_429_on_every_process(
    server: Server, limited: list[Server]
) -> None:
    victim = register(server.url).user["email"]
    bystander = register(server.url).user["email"]
    for attempt in range(ACCOUNT_LIMIT):
        wrong = _login(limited[attempt % 2], victim, f"guess {attempt}", _address())
        assert wrong.status_code == 401
    for target in limited:  # counted in Redis: the other process refuses too
        blocked = _login(target, victim, "one more guess", _address())
        assert blocked.status_code == 429, blocked.text
        assert 1 <= int(blocked.headers["retry-after"]) <= 600
        assert "too many failed sign-ins for this account" in blocked.json()["detail"]
    # Even the right password waits for the window: the guesser cannot test it either.
    assert _login(limited[0], victim, PASSWORD, _address()).status_code == 429
    assert _login(limited[1], bystander, PASSWORD, _address()).status_code == 200


def test_failed_logins_per_address_answer_429(server: Server, limited: list[Server]) -> None:
    address = _address()
    for attempt in range(ADDRESS_LIMIT):
        # A new (unknown) account each time: only the address is shared.
        email = f"nobody-{secrets.token_hex(4)}@example.com"
        assert _login(limited[attempt % 2], email, "password", address).status_code == 401
    user = register(server.url).user["email"]
    blocked = _login(limited[0], user, PASSWORD, address)
    assert blocked.status_code == 429
    assert "from this address" in blocked.json()["detail"]
    assert int(blocked.headers["retry-after"]) >= 1
    assert _login(limited[0], user, PASSWORD, _address()).status_code == 200


def test_a_good_login_never_counts(server: Server, limited: list[Server]) -> None:
    user = register(server.url).user["email"]
    address = _address()
    for _ in range(ADDRESS_LIMIT + ACCOUNT_LIMIT + 2):
        assert _login(limited[0], user, PASSWORD, address).status_code == 200


def test_sign_ups_per_address_are_limited(limited: list[Server]) -> None:
    address = _address()

    def sign_up(target: Server) -> httpx.Response:
        return httpx.post(
            target.url + "/api/auth/register",
            json={"email": f"new-{secrets.token_hex(4)}@example.com", "password": PASSWORD},
            headers={"X-Forwarded-For": address},
            timeout=15,
        )

    for attempt in range(SIGNUP_LIMIT):
        assert sign_up(limited[attempt % 2]).status_code == 201
    refused = sign_up(limited[1])
    assert refused.status_code == 429
    assert "too many sign-ups" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) >= 1


def test_a_login_flood_leaves_the_database_to_other_requests(
    run: RunNames, server: Server, admin: Api, logs
) -> None:
    """Logins used to hold a pooled connection through argon2: 30 in flight filled the pool and
    every other request answered 503. Now the pool is released before hashing, and hashing
    itself is bounded (a full queue answers 503 at once)."""
    flooded = Server(
        run.env(
            DB_POOL_SIZE=2,
            DB_MAX_OVERFLOW=0,
            DB_POOL_TIMEOUT_SECONDS=5,
            ARGON2_CONCURRENCY=1,
            ARGON2_QUEUE=8,
        ),
        logs,
    ).wait_ready()
    try:
        flooder = register(server.url)
        reader = Api(flooded.url, register(server.url).token)
        reader.new_chat(title="still here")

        async def flood() -> tuple[list[int], list[int]]:
            async with httpx.AsyncClient(base_url=flooded.url + "/api", timeout=30) as http:

                async def login() -> int:
                    body = {"email": flooder.user["email"], "password": PASSWORD}
                    answer = await http.post("/auth/login", json=body)
                    if answer.status_code == 503:
                        assert answer.headers["retry-after"] == "1"
                        assert "too many sign-ins at once" in answer.json()["detail"]
                    return answer.status_code

                async def read() -> list[int]:
                    statuses = []
                    headers = {"Authorization": f"Bearer {reader.token}"}
                    for _ in range(15):
                        statuses.append((await http.get("/chats", headers=headers)).status_code)
                        await asyncio.sleep(0.1)
                    return statuses

                reading = asyncio.create_task(read())
                logins = await asyncio.gather(*(login() for _ in range(60)))
                return list(logins), await reading

        logins, reads = asyncio.run(flood())
        assert reads == [200] * len(reads), reads
        assert set(logins) <= {200, 503}, logins
        assert 200 in logins
        assert 503 in logins  # more than concurrency + queue at once: refused, not queued
    finally:
        flooded.stop()


def _stream_ends(stream: SseStream) -> float:
    """Seconds until the open stream `stream` is closed by the server."""
    started = time.monotonic()
    with pytest.raises(AssertionError, match="event stream ended"):
        while True:
            stream.next()
    return time.monotonic() - started


@pytest.mark.parametrize("ending", ["password change", "log out everywhere"])
def test_an_open_stream_of_an_ended_session_closes(limited: list[Server], ending: str) -> None:
    target = limited[0]
    user = register(target.url)
    chat = user.new_chat()["id"]
    stream = SseStream(user, chat, read_timeout=RECHECK_SECONDS * 3 + 20)
    try:
        assert stream.response.status_code == 200
        device = Api(
            target.url,
            _login(target, user.user["email"], PASSWORD, _address()).json()["access_token"],
        )
        if ending == "password change":
            body = {"current_password": PASSWORD, "new_password": "another secret"}
            assert device.post("/auth/password", json=body).status_code == 204
        else:
            assert device.post("/auth/logout-all").status_code == 204
        assert _stream_ends(stream) < RECHECK_SECONDS * 3 + 5
        assert user.get(f"/chats/{chat}/events").status_code == 401
    finally:
        stream.close()
