"""PostgreSQL, Redis and RabbitMQ going away under a running backend, and coming back.
Each dependency is reached through a TCP proxy the test cuts (connections reset, new ones
refused), so the machine's shared servers keep running for everyone else."""

import contextlib
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from app.db.session import PING_AFTER_IDLE_SECONDS
from tests.support import (
    Api,
    RunNames,
    Server,
    SseStream,
    WorkerRole,
    migrated_run,
    register,
    wait_for,
)
from tests.tcpproxy import TcpProxy


@dataclass
class Faulty:
    server: Server
    worker: WorkerRole
    names: RunNames
    postgres: TcpProxy
    redis: TcpProxy
    rabbitmq: TcpProxy


@pytest.fixture(scope="module")
def faulty(run: RunNames, logs) -> Iterator[Faulty]:
    # Its own database too: another backend's relay would publish these outbox rows to its queue.
    with migrated_run(RunNames(tag=run.tag + "f")) as names:
        postgres, redis, rabbitmq = (
            TcpProxy("127.0.0.1", 5432),
            TcpProxy("127.0.0.1", 6379),
            TcpProxy("127.0.0.1", 5672),
        )
        worker = WorkerRole(names)
        rabbitmq.pause()
        server = Server(
            names.env(
                DATABASE_URL=names.database_url(port=postgres.port),
                REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
                RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:{rabbitmq.port}/",
                OUTBOX_RELAY_INTERVAL_SECONDS=0.5,
            ),
            logs,
        )
        try:
            # RabbitMQ is unreachable from the start: the first test needs the backend that way.
            yield Faulty(server.wait_ready(healthy=False), worker, names, postgres, redis, rabbitmq)
        finally:
            server.stop()
            for proxy in (postgres, redis, rabbitmq):
                proxy.close()
            with contextlib.suppress(Exception):
                worker.delete_queues()
            worker.close()


@pytest.fixture
def user(faulty: Faulty) -> Api:
    return register(faulty.server.url)


def _health(faulty: Faulty) -> httpx.Response:
    return httpx.get(faulty.server.url + "/api/health", timeout=10)


def test_started_before_rabbitmq_it_serves_then_connects(faulty: Faulty) -> None:
    user = register(faulty.server.url)
    chat = user.new_chat()
    try:
        assert _health(faulty).json()["checks"]["rabbitmq"] != "ok"
        reply = user.send(chat["id"], "early bird")["assistant_message"]
    finally:
        faulty.rabbitmq.resume()
    request, _ = faulty.worker.take_request(reply["id"], timeout=40)
    assert request["contents"] == [{"role": "user", "text": "early bird"}]
    faulty.worker.respond(request, "completed", "worm")
    assert user.wait_status(chat["id"], reply["id"], "completed")["content"] == "worm"
    wait_for(lambda: _health(faulty).status_code == 200, "health to recover")


def test_accepted_while_rabbitmq_is_down_is_published_when_it_is_back(
    faulty: Faulty, user: Api
) -> None:
    chat = user.new_chat()
    faulty.rabbitmq.pause()
    try:
        wait_for(
            lambda: _health(faulty).json()["checks"]["rabbitmq"] != "ok", "RabbitMQ to look down"
        )
        health = _health(faulty)
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
        reply = user.send(chat["id"], "are you there?")["assistant_message"]
        assert reply["status"] == "pending"
        with psycopg.connect(faulty.names.database_url()) as db:
            row = db.execute(
                "SELECT published_at FROM outbox WHERE message_id = %s", (reply["id"],)
            ).fetchone()
        assert row == (None,)
        assert faulty.worker.queued_requests() == 0
    finally:
        faulty.rabbitmq.resume()
    request, _ = faulty.worker.take_request(reply["id"], timeout=40)
    assert request["contents"] == [{"role": "user", "text": "are you there?"}]
    with psycopg.connect(faulty.names.database_url()) as db:
        published = wait_for(
            lambda: db.execute(
                "SELECT published_at FROM outbox WHERE message_id = %s", (reply["id"],)
            ).fetchone()[0],
            "the outbox row to be marked published",
        )
    assert published is not None
    # The response consumer is back too.
    faulty.worker.respond(request, "completed", "yes")
    assert user.wait_status(chat["id"], reply["id"], "completed")["content"] == "yes"
    wait_for(lambda: _health(faulty).status_code == 200, "health to recover")


def test_postgres_down_answers_503_and_keeps_responses_queued(faulty: Faulty, user: Api) -> None:
    chat = user.new_chat()
    reply = user.send(chat["id"], "hello")["assistant_message"]
    request, _ = faulty.worker.take_request(reply["id"])
    assert user.get("/auth/me").status_code == 200  # login cached in Redis
    faulty.postgres.pause()
    try:
        answer = user.get(f"/chats/{chat['id']}/messages")
        assert answer.status_code == 503
        assert "database is unavailable" in answer.json()["detail"]
        health = _health(faulty)
        assert health.status_code == 503
        assert health.json()["checks"]["database"] != "ok"
        assert health.json()["checks"]["redis"] == "ok"
        # The worker's answer arrives while PostgreSQL is away: it must wait, unacked.
        faulty.worker.respond(request, "completed", "stored later")
        wait_for(lambda: not faulty.worker.responses_settled(), "the response to be held")
    finally:
        faulty.postgres.resume()
    stored = user.wait_status(chat["id"], reply["id"], "completed")
    assert stored["content"] == "stored later"
    wait_for(faulty.worker.responses_settled, "the response to be acked")


def test_pooled_connections_cut_while_idle_are_replaced_unnoticed(
    faulty: Faulty, user: Api
) -> None:
    """PostgreSQL restarted while the pool sat idle: the next request still answers 200. The
    pool pings a connection only after it sat idle (not on every checkout, which cost 2.5
    round trips per reply)."""
    chat = user.new_chat()
    assert user.get(f"/chats/{chat['id']}/messages").status_code == 200  # a pooled connection
    faulty.postgres.pause()  # every pooled connection is reset, as a restart does
    faulty.postgres.resume()
    idle_until = time.monotonic() + PING_AFTER_IDLE_SECONDS + 0.2
    while time.monotonic() < idle_until:  # the connections must have sat idle that long
        time.sleep(0.05)
    for _ in range(3):
        answer = user.get(f"/chats/{chat['id']}/messages")
        assert answer.status_code == 200, answer.text


def test_redis_down_degrades_and_recovers(faulty: Faulty, user: Api) -> None:
    chat = user.new_chat()
    faulty.redis.pause()
    try:
        # Logins fall back to PostgreSQL, sending still works (no rate limit, no events).
        assert user.get("/auth/me").status_code == 200
        fresh = register(faulty.server.url)
        assert fresh.get("/auth/me").status_code == 200
        reply = user.send(chat["id"], "hi")["assistant_message"]
        events = user.get(f"/chats/{chat['id']}/events")
        assert events.status_code == 503 and "Redis" in events.json()["detail"]
        health = _health(faulty)
        assert health.status_code == 503 and health.json()["checks"]["redis"] != "ok"
        # The answer is stored at once, but its event cannot be written yet.
        request, _ = faulty.worker.take_request(reply["id"])
        faulty.worker.respond(request, "completed", "ok")
        assert user.wait_status(chat["id"], reply["id"], "completed")["content"] == "ok"
    finally:
        faulty.redis.resume()
    wait_for(lambda: _health(faulty).status_code == 200, "health to recover")
    # Once Redis is back, the held response announces the stored reply: no one is left
    # waiting on "generating" (an SSE client that joined after the gap reads it from the id
    # it last saw).
    stream_key = f"{faulty.names.prefix}events:{chat['id']}"
    completed = wait_for(
        lambda: [
            fields
            for _, fields in faulty.worker.redis.xrange(stream_key)
            if fields["event"] == "message.completed"
        ],
        "the message.completed event after Redis came back",
    )
    assert json.loads(completed[0]["data"])["message"]["content"] == "ok"
    wait_for(faulty.worker.responses_settled, "the response to be acked")
    with (
        httpx.Client(
            base_url=user.url + "/api", headers={"Authorization": f"Bearer {user.token}"}
        ) as c,
        c.stream("GET", f"/chats/{chat['id']}/events", timeout=10) as stream,
    ):
        assert stream.status_code == 200


def test_an_open_stream_ends_when_redis_goes_and_resumes_exactly_after(
    faulty: Faulty, user: Api
) -> None:
    chat = user.new_chat()["id"]
    stream = SseStream(user, chat, read_timeout=20)
    try:
        seen = faulty.worker.delta(chat, "m", 0, "before")
        assert stream.next()["id"] == seen
        faulty.redis.pause()
        try:
            # The stream ends, so the browser reconnects; meanwhile a worker keeps writing.
            with pytest.raises(AssertionError, match="stream ended"):
                stream.next()
            missed = faulty.worker.delta(chat, "m", 1, "during")
            assert user.get(f"/chats/{chat}/events").status_code == 503
        finally:
            faulty.redis.resume()
    finally:
        stream.close()
    wait_for(lambda: _health(faulty).status_code == 200, "health to recover")
    again = SseStream(user, chat, last_event_id=seen)
    try:
        assert again.next()["id"] == missed
        live = faulty.worker.delta(chat, "m", 2, "after")
        assert again.next()["id"] == live
    finally:
        again.close()


def test_a_stop_signal_ends_open_streams(faulty: Faulty, user: Api) -> None:
    # Last in this module: it stops the server. Without the stop watch, uvicorn's graceful
    # shutdown would wait for the open event stream forever.
    stream = SseStream(user, user.new_chat()["id"])
    try:
        faulty.server.process.send_signal(signal.SIGTERM)
        faulty.server.process.wait(timeout=10)
        with pytest.raises(AssertionError, match="stream ended"):
            stream.next()
    finally:
        stream.close()
