"""A backend whose database pool has a single connection: sends on many chats at once all go
through and are published at once (one send never needs two connections), and a request that
finds no connection free in time is told the server is busy, not that the database is down."""

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from tests.support import (
    Api,
    RunNames,
    Server,
    WorkerRole,
    migrated_run,
    register,
    wait_for,
)

POOL_TIMEOUT_SECONDS = 3
CONCURRENT_CHATS = 8


@dataclass
class OnePool:
    server: Server
    worker: WorkerRole
    names: RunNames


@pytest.fixture(scope="module")
def one_pool(run: RunNames, logs) -> Iterator[OnePool]:
    # Its own database and queues: another backend's relay would publish these rows itself.
    with migrated_run(RunNames(tag=run.tag + "p")) as names:
        worker = WorkerRole(names)
        server = Server(
            names.env(
                DB_POOL_SIZE=1,
                DB_MAX_OVERFLOW=0,
                DB_POOL_TIMEOUT_SECONDS=POOL_TIMEOUT_SECONDS,
                USER_MESSAGES_PER_MINUTE=0,
                OUTBOX_RELAY_INTERVAL_SECONDS=30,  # sends must not need the relay
            ),
            logs,
        )
        try:
            yield OnePool(server.wait_ready(), worker, names)
        finally:
            server.stop()
            with contextlib.suppress(Exception):
                worker.delete_queues()
            worker.close()


def test_concurrent_sends_share_one_connection_and_are_published_at_once(
    one_pool: OnePool,
) -> None:
    user = register(one_pool.server.url)
    chats = [user.new_chat()["id"] for _ in range(CONCURRENT_CHATS)]
    start = threading.Barrier(CONCURRENT_CHATS)

    def send(chat_id: str) -> httpx.Response:
        start.wait(10)
        return user.post(f"/chats/{chat_id}/messages", json={"content": "all at once"}, timeout=30)

    with ThreadPoolExecutor(CONCURRENT_CHATS) as pool:
        answers = list(pool.map(send, chats))
    assert [answer.status_code for answer in answers] == [202] * CONCURRENT_CHATS
    # The relay's next round is 30 s away: only the sends themselves can have published.
    wait_for(lambda: _unpublished(one_pool) == 0, "every request to be published", timeout=10)
    log = one_pool.server.log_path.read_text()
    assert "left to the outbox relay" not in log
    assert "no database connection free" not in log


def test_no_connection_free_in_time_answers_busy_503(one_pool: OnePool) -> None:
    user = register(one_pool.server.url)
    chat = user.new_chat()
    with psycopg.connect(one_pool.names.database_url()) as blocker:
        # The send waits on this row lock holding the pool's only connection.
        blocker.execute("SELECT id FROM chats WHERE id = %s FOR UPDATE", (chat["id"],))
        with ThreadPoolExecutor(1) as pool:
            sending = pool.submit(
                user.post,
                f"/chats/{chat['id']}/messages",
                json={"content": "wait for me"},
                timeout=30,
            )
            answer = _first_busy(user)
            blocker.rollback()
            assert sending.result().status_code == 202
    assert answer.status_code == 503
    assert "busy" in answer.json()["detail"]
    assert "database" not in answer.json()["detail"]
    assert int(answer.headers["Retry-After"]) >= 1


def _unpublished(one_pool: OnePool) -> int:
    with psycopg.connect(one_pool.names.database_url()) as db:
        return db.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()[0]


def _first_busy(user: Api) -> httpx.Response:
    """GET /api/chats until one waits out the pool timeout (the send holds the connection)."""
    for _ in range(20):
        answer = user.get("/chats", timeout=POOL_TIMEOUT_SECONDS + 10)
        if answer.status_code != 200:
            return answer
    raise AssertionError("no request was kept waiting for a connection")
