"""Test helpers: a live backend process, API clients, an SSE reader, and the worker's role."""

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import httpx
import psycopg
import redis

from tests.tcpproxy import free_port

BACKEND = Path(__file__).resolve().parents[1]
# The environment running the tests (uv's .venv, or a pip user's venv) has the tools too.
VENV_BIN = Path(sys.executable).parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

T = TypeVar("T")


def wait_for(check: Callable[[], T], what: str, timeout: float = 15.0, interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # the condition may raise until it holds
            last_error = error
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})"
    )


@dataclass
class RunNames:
    """Names that isolate this test run from every other one on the machine."""

    tag: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def database(self) -> str:
        return f"backend_test_{self.tag}"

    @property
    def prefix(self) -> str:
        return f"betest:{self.tag}:"

    @property
    def request_queue(self) -> str:
        return f"gemini.requests.betest.{self.tag}"

    @property
    def response_queue(self) -> str:
        return f"gemini.responses.betest.{self.tag}"

    def database_url(
        self, host: str = "127.0.0.1", port: int = 5432, name: str | None = None
    ) -> str:
        return f"postgresql://postgres@{host}:{port}/{name or self.database}"

    def env(self, **overrides: Any) -> dict[str, str]:
        settings = {
            "DATABASE_URL": self.database_url(),
            "REDIS_URL": REDIS_URL,
            "RABBITMQ_URL": AMQP_URL,
            "REDIS_KEY_PREFIX": self.prefix,
            "REQUEST_QUEUE": self.request_queue,
            "RESPONSE_QUEUE": self.response_queue,
            "LOG_LEVEL": "INFO",
            "SECRET_KEY": f"test-secret-{self.tag}-0123456789",
        }
        settings.update({k: str(v) for k, v in overrides.items()})
        return settings


def child_env(settings: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**base, **settings}


def create_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delete_redis_keys(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def alembic(settings: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "alembic"), *args],
        cwd=BACKEND,
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextlib.contextmanager
def migrated_run(names: RunNames) -> Iterator[RunNames]:
    """The run's own database, migrated; it and the run's Redis keys are removed afterwards."""
    create_database(names.database)
    try:
        migrated = alembic(names.env(), "upgrade", "head")
        assert migrated.returncode == 0, migrated.stderr
        yield names
    finally:
        drop_database(names.database)
        delete_redis_keys(names.prefix)


class Server:
    """One backend process under uvicorn on a free loopback port."""

    def __init__(self, settings: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"backend-{self.port}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                str(VENV_BIN / "uvicorn"),
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=BACKEND,
            env=child_env(settings),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, healthy: bool = True) -> "Server":
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"backend exited:\n{self.log_path.read_text()[-3000:]}")
            path = "/api/health" if healthy else "/api/config"
            return httpx.get(self.url + path, timeout=2).status_code == 200

        wait_for(ready, f"backend on port {self.port} to be ready", timeout=40, interval=0.2)
        return self

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log.close()


class Api:
    """A logged-in (or anonymous) client of one server."""

    def __init__(self, server_url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = server_url
        self.token = token
        self.user: dict[str, Any] = {}
        self.http = httpx.Client(base_url=server_url + "/api", headers=headers, timeout=15)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)

    def new_chat(self, **body: Any) -> dict[str, Any]:
        answer = self.http.post("/chats", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def send(self, chat_id: str, content: str) -> dict[str, Any]:
        answer = self.http.post(
            f"/chats/{chat_id}/messages", json={"content": content, "role": "user"}
        )
        assert answer.status_code == 202, answer.text
        return answer.json()

    def messages(self, chat_id: str) -> list[dict[str, Any]]:
        answer = self.http.get(f"/chats/{chat_id}/messages")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def message(self, chat_id: str, message_id: str) -> dict[str, Any]:
        return next(m for m in self.messages(chat_id) if m["id"] == message_id)

    def wait_status(self, chat_id: str, message_id: str, status: str) -> dict[str, Any]:
        return wait_for(
            lambda: (m := self.message(chat_id, message_id))["status"] == status and m,
            f"message {message_id} to become {status}",
        )


def register(server_url: str, email: str | None = None, password: str = "correct horse") -> Api:
    email = email or f"user-{secrets.token_hex(6)}@example.com"
    answer = httpx.post(
        server_url + "/api/auth/register", json={"email": email, "password": password}, timeout=15
    )
    assert answer.status_code == 201, answer.text
    login = httpx.post(
        server_url + "/api/auth/login", json={"email": email, "password": password}, timeout=15
    )
    assert login.status_code == 200, login.text
    api = Api(server_url, login.json()["access_token"])
    api.user = login.json()["user"]
    return api


class SseStream:
    """Reads GET /api/chats/{id}/events over a real HTTP connection."""

    def __init__(
        self, api: Api, chat_id: str, last_event_id: str | None = None, read_timeout: float = 10
    ) -> None:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self._client = httpx.Client(
            base_url=api.url + "/api",
            headers={"Authorization": f"Bearer {api.token}", **headers},
            timeout=httpx.Timeout(10, read=read_timeout),
        )
        self._context = self._client.stream("GET", f"/chats/{chat_id}/events")
        self.response = self._context.__enter__()
        self._lines = self.response.iter_lines()

    def next(self) -> dict[str, Any]:
        """The next event (comments skipped); a read timeout fails the test."""
        frame: dict[str, Any] = {}
        for line in self._lines:
            if line == "":
                if "event" in frame or "data" in frame:
                    frame["data"] = json.loads(frame["data"]) if "data" in frame else None
                    return frame
                frame = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            frame[name] = value[1:] if value.startswith(" ") else value
        raise AssertionError("event stream ended")

    def next_line(self) -> str:
        """The next raw line, comments included; a read timeout fails the test."""
        return next(self._lines)

    def take(self, count: int) -> list[dict[str, Any]]:
        return [self.next() for _ in range(count)]

    def until(
        self, predicate: Callable[[dict[str, Any]], bool], limit: int = 200
    ) -> list[dict[str, Any]]:
        events = []
        for _ in range(limit):
            events.append(self.next())
            if predicate(events[-1]):
                return events
        raise AssertionError(f"no matching event in {limit}: {events[-5:]}")

    def close(self) -> None:
        self._context.__exit__(None, None, None)
        self._client.close()


class _Loop:
    """An asyncio loop in a thread, so sync tests can drive aio-pika."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


class WorkerRole:
    """Plays the gemini-client worker's side of docs/CONTRACTS.md: takes requests from
    REQUEST_QUEUE, writes its events to the chat's Redis stream, publishes responses."""

    def __init__(self, run: RunNames) -> None:
        self.run = run
        self.redis = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        self._loop = _Loop()
        self._loop.run(self._open())

    async def _open(self) -> None:
        self._connection = await aio_pika.connect_robust(AMQP_URL)
        self._channel = await self._connection.channel(publisher_confirms=True)
        self.requests = await self._channel.declare_queue(self.run.request_queue, durable=True)
        await self._channel.declare_queue(self.run.response_queue, durable=True)

    def close(self) -> None:
        self._loop.run(self._connection.close())
        self._loop.close()
        self.redis.close()

    def take_request(self, message_id: str, timeout: float = 15) -> tuple[dict[str, Any], Any]:
        """The request for reply `message_id` (requests for other replies are discarded)."""

        async def get() -> Any:
            return await self.requests.get(no_ack=True, fail=False)

        def found() -> Any:
            while (message := self._loop.run(get())) is not None:
                body = json.loads(message.body)
                if body["message_id"] == message_id:
                    return body, message
            return None

        return wait_for(found, f"a request for message {message_id}", timeout=timeout)

    def queued_requests(self) -> int:
        async def count() -> int:
            queue = await self._channel.declare_queue(self.run.request_queue, passive=True)
            return queue.declaration_result.message_count

        return self._loop.run(count())

    def responses_settled(self) -> bool:
        """Every response published so far has been consumed and acked by the backend."""
        listing = subprocess.run(
            [
                "rabbitmqctl",
                "list_queues",
                "-q",
                "name",
                "messages_ready",
                "messages_unacknowledged",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        for line in listing.splitlines():
            name, *counts = line.split()
            if name == self.run.response_queue:
                return counts == ["0", "0"]
        return False

    def publish(self, body: bytes, queue: str | None = None, message_id: str | None = None) -> None:
        message = aio_pika.Message(
            body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=message_id,
        )
        self._loop.run(
            self._channel.default_exchange.publish(
                message, routing_key=queue or self.run.response_queue
            )
        )

    def respond(
        self, request: dict[str, Any], status: str, content: str = "", **extra: Any
    ) -> dict[str, Any]:
        response = {
            "v": 1,
            "request_id": request["request_id"],
            "chat_id": request["chat_id"],
            "message_id": request["message_id"],
            "status": status,
            "content": content,
            "error": None,
            "attempt": 0,
            "next_attempt_at": None,
            "usage": {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33},
            "finish_reason": "STOP" if status == "completed" else None,
            "key_id": "3f9a1c2e",
            "latency_ms": 150,
        }
        response.update(extra)
        self.publish(json.dumps(response).encode(), message_id=request["request_id"])
        return response

    def emit(self, chat_id: str, event: str, data: dict[str, Any]) -> str:
        key = f"{self.run.prefix}events:{chat_id}"
        entry_id = self.redis.xadd(
            key, {"event": event, "data": json.dumps(data)}, maxlen=10000, approximate=True
        )
        self.redis.expire(key, 86400)
        return entry_id

    def streaming(
        self, chat_id: str, message_id: str, attempt: int = 0, request_id: str | None = None
    ) -> str:
        """With `request_id`, also holds the worker's claim on that attempt, as a live worker
        does while it runs one; without it, the stream looks like a dead worker's."""
        if request_id is not None:
            self.redis.set(f"{self.run.prefix}claim:{request_id}:{attempt}", "test", px=60_000)
        return self.emit(
            chat_id,
            "message.status",
            {
                "message_id": message_id,
                "status": "streaming",
                "attempt": attempt,
                "next_attempt_at": None,
                "error": None,
            },
        )

    def delta(self, chat_id: str, message_id: str, seq: int, text: str) -> str:
        return self.emit(
            chat_id, "message.delta", {"message_id": message_id, "seq": seq, "text": text}
        )

    def dead_letters(self) -> list[Any]:
        async def drain() -> list[Any]:
            # Passive: the backend declared it, with arguments this must not contradict.
            queue = await self._channel.declare_queue(
                self.run.response_queue + ".dead", passive=True
            )
            found = []
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                found.append(message)
            return found

        return self._loop.run(drain())

    def delete_queues(self) -> None:
        async def delete() -> None:
            for name in (
                self.run.request_queue,
                self.run.response_queue,
                self.run.response_queue + ".dead",
            ):
                channel = await self._connection.channel()
                try:
                    await channel.queue_delete(name)
                finally:
                    if not channel.is_closed:
                        await channel.close()

        self._loop.run(delete())
