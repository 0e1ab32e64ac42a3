"""A disabled user is locked out within a second on every backend process: requests answer
401 and open event streams close, although sessions are rechecked only every 30 s."""

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import Api, RunNames, Server, SseStream, register

PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def pair(run: RunNames, server: Server, admin: Api, logs) -> Iterator[list[Server]]:
    settings = run.env(STREAM_SESSION_CHECK_SECONDS=30, SIGNUPS_PER_ADDRESS_PER_HOUR=0)
    servers = [Server(settings, logs), Server(settings, logs)]
    try:
        yield [s.wait_ready() for s in servers]
    finally:
        for s in servers:
            s.stop()


def _login(server: Server, email: str) -> Api:
    answer = httpx.post(
        server.url + "/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=15
    )
    assert answer.status_code == 200, answer.text
    api = Api(server.url, answer.json()["access_token"])
    api.user = answer.json()["user"]
    return api


def test_disabling_locks_the_user_out_of_both_processes_within_a_second(
    pair: list[Server], admin: Api
) -> None:
    one, two = pair
    email = register(one.url).user["email"]
    here, there = _login(one, email), _login(two, email)
    chat = here.new_chat()
    # Both sessions answer on both processes, and their answers are cached.
    for api in (here, there):
        for server in pair:
            assert Api(server.url, api.token).get("/auth/me").status_code == 200
    streams = [
        SseStream(here, chat["id"], read_timeout=5),
        SseStream(there, chat["id"], read_timeout=5),
    ]
    assert all(s.response.status_code == 200 for s in streams)
    staff = Api(one.url, admin.token)
    assert (
        staff.patch(f"/admin/users/{here.user['id']}", json={"disabled": True}).status_code == 200
    )
    disabled = time.monotonic()  # from here on, nothing of the user's may work
    for stream in streams:
        with pytest.raises(AssertionError, match="event stream ended"):
            stream.next()
    ended = time.monotonic() - disabled
    for api in (here, there):
        for server in pair:
            assert Api(server.url, api.token).get("/auth/me").status_code == 401
    print(f"streams ended {ended:.3f} s after the disable answered")
    assert ended < 1.0
    for stream in streams:
        stream.close()
    assert Api(two.url, there.token).get(f"/chats/{chat['id']}/events").status_code == 401
