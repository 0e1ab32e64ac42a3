"""Real processes and real services for the tests: the stand-in, workers, RabbitMQ, Redis."""

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
AMQP_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Settings of ours that must not leak from the caller's shell into the processes under test.
_OWN_SETTINGS = (
    "GEMINI_", "REDIS_", "RABBITMQ_", "REQUEST_QUEUE", "RESPONSE_QUEUE", "KEYS_", "QUEUE_",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
    "WORKER_", "STANDIN_", "LOG_LEVEL",
)


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_SETTINGS)}
    env.update(extra)
    return env


async def wait_for(check: Callable[[], Any], within: float, what: str, every: float = 0.05):
    """Polls `check` (sync or async) until it returns something truthy, for `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(every)


class StandIn:
    """The offline Gemini stand-in as a real subprocess on a free port."""

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_dir / f"standin-{self.port}.log", "w")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "standin", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=clean_env(env or {}), stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=self.url, timeout=5, trust_env=False)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.http.get("/")
                break
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the stand-in did not start") from None
                time.sleep(0.1)

    def config(self, **dials: Any) -> dict:
        answer = self.http.post("/_standin/config", json=dials)
        answer.raise_for_status()
        return answer.json()

    def stats(self) -> dict:
        return self.http.get("/_standin/stats").json()

    def requests(self) -> list[dict]:
        return self.http.get("/_standin/requests").json()

    def reset(self) -> None:
        self.http.post("/_standin/reset").raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.http.close()
        self._log.close()


class Worker:
    """`python -m src.main` as a real subprocess."""

    def __init__(
        self, env: dict[str, str], log_path: Path, wrapper: list[str] | None = None
    ) -> None:
        self.env = env
        self.log_path = log_path
        self.wrapper = wrapper or []  # a command the worker runs under (valgrind)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Worker":
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [*self.wrapper, PYTHON, "-m", "src.main"], cwd=ROOT, env=clean_env(self.env),
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"event": "raw", "text": raw})
        return lines

    def log_text(self) -> str:
        return self.log_path.read_text()

    async def started(self, within: float = 30) -> "Worker":
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log_text()}")
            return any(line.get("event") == "worker_started" for line in self.log_lines())

        await wait_for(ready, within, "the worker to start")
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self, within: float) -> int:
        assert self.proc is not None
        proc = self.proc
        await wait_for(lambda: proc.poll() is not None, within, "the worker to exit")
        return proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


class Bus:
    """The backend's side of the queues: publishes requests, collects responses."""

    def __init__(self, env: dict[str, str]) -> None:
        self.request_queue = env["REQUEST_QUEUE"]
        self.response_queue = env["RESPONSE_QUEUE"]
        self.dead_queue = f"{self.request_queue}.dead"
        self.responses: list[dict] = []
        self.queue_names = {self.request_queue, self.response_queue, self.dead_queue}

    async def open(self) -> "Bus":
        self.connection = await aio_pika.connect_robust(AMQP_URL)
        self.channel = await self.connection.channel()
        await self.channel.declare_queue(self.request_queue, durable=True)
        queue = await self.channel.declare_queue(self.response_queue, durable=True)
        await queue.consume(self._on_response)
        return self

    async def _on_response(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            assert message.content_type == "application/json"
            body = json.loads(message.body)
            assert message.message_id == body["request_id"]
            self.responses.append(body)

    async def send(self, body: dict | bytes, message_id: str | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        if message_id is None and isinstance(body, dict):
            message_id = body.get("request_id")
        await self.channel.default_exchange.publish(
            aio_pika.Message(
                raw, content_type="application/json", message_id=message_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=self.request_queue,
        )

    def of(self, request_id: str, status: str | None = None) -> list[dict]:
        return [
            r for r in self.responses
            if r["request_id"] == request_id and (status is None or r["status"] == status)
        ]

    async def final(self, request_id: str, within: float = 20) -> dict:
        finals = ("completed", "failed", "cancelled")
        found = await wait_for(
            lambda: [r for r in self.of(request_id) if r["status"] in finals],
            within, f"a final response to {request_id}",
        )
        return found[0]

    async def dead_letters(self) -> list[aio_pika.abc.AbstractIncomingMessage]:
        # Passive: the worker declared it, with arguments this declare must not contradict.
        queue = await self.channel.declare_queue(self.dead_queue, passive=True)
        found = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            found.append(message)
        return found

    async def close(self, queue_names: list[str]) -> None:
        for name in queue_names:
            try:
                await self.channel.queue_delete(name)
            except aio_pika.exceptions.AMQPError:
                self.channel = await self.connection.channel()
        await self.connection.close()


def request(text: str = "hello", **fields: Any) -> dict:
    body = {
        "v": 1,
        "request_id": str(uuid.uuid4()),
        "chat_id": str(uuid.uuid4()),
        "message_id": str(uuid.uuid4()),
        "model": "gemini-2.5-flash",
        "system_instruction": None,
        "contents": [{"role": "user", "text": text}],
        "generation_config": {},
        "attempt": 0,
    }
    body.update(fields)
    return body


class Events:
    """Reads a chat's Redis event stream the way the backend does."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def of(self, chat_id: str) -> list[tuple[str, dict]]:
        entries = await self.redis.xrange(f"{self.prefix}events:{chat_id}")
        return [(f[b"event"].decode(), json.loads(f[b"data"])) for _, f in entries]

    async def text(self, chat_id: str) -> str:
        """The reply as a client applying deltas and resets would show it."""
        shown: list[str] = []
        for event, data in await self.of(chat_id):
            if event == "message.reset":
                shown = []
            elif event == "message.delta":
                assert data["seq"] == len(shown), "deltas out of order"
                shown.append(data["text"])
        return "".join(shown)


class Relay:
    """A TCP relay in front of a real service that a test can cut and restore (an outage)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._pairs: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> "Relay":
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._pairs |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._pairs -= {writer, up_writer}

    async def cut(self) -> None:
        """Drops every connection and refuses new ones."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._pairs):
            writer.transport.abort()
        self._pairs.clear()
        await self._server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    async def stop(self) -> None:
        if self._server is not None and self._server.is_serving():
            await self.cut()
