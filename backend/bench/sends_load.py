"""Many chats sending at once against one uvicorn process on loopback, replies applied at once.

    cd backend && .venv/bin/python -m bench.sends_load [--chats 100] [--rounds 3] [--capacity N]

Starts its own backend (default pool settings) with a throw-away database, Redis prefix and
queues (removed after). Each round sends one message in every chat at the same moment, takes
the published requests from the queue, publishes a `completed` response for each at once and
waits until every reply is stored. Prints the answers' status codes, send latency, how often
the log met an exhausted pool or left a request to the relay, and backend CPU per reply.
`--capacity N` publishes a key-pool capacity of N calls a minute before each round, as the
workers do, so every send goes through the whole admission check (MAX_QUEUE_WAIT_SECONDS).
`--profile out.txt` records the backend meanwhile with py-spy (on PATH) as collapsed stacks."""

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import aio_pika
import httpx
import psycopg
from redis.asyncio import Redis

from bench.messages_load import _cpu_seconds, _percentile
from tests.support import (
    AMQP_URL,
    REDIS_URL,
    RunNames,
    Server,
    alembic,
    create_database,
    delete_redis_keys,
    drop_database,
    register,
)


async def _round(
    client: httpx.AsyncClient,
    channel: aio_pika.abc.AbstractChannel,
    names: RunNames,
    chats: list,
    capacity: float | None = None,
) -> tuple[Counter, list[float]]:
    if capacity is not None:
        fields = {
            "per_minute": capacity,
            "waiting": 0,
            "next_free_at": 0,
            "updated_at": time.time(),
        }
        async with Redis.from_url(REDIS_URL) as redis:
            await redis.hset(f"{names.prefix}pool:capacity:gemini-2.5-flash", mapping=fields)

    async def send(chat_id: str) -> tuple[int, float]:
        started = time.perf_counter()
        answer = await client.post(f"/chats/{chat_id}/messages", json={"content": "hello there"})
        return answer.status_code, time.perf_counter() - started

    results = await asyncio.gather(*(send(chat) for chat in chats))
    codes = Counter(code for code, _ in results)
    queue = await channel.declare_queue(names.request_queue, durable=True)
    requests: list[dict] = []
    deadline = time.monotonic() + 60
    while len(requests) < codes[202] and time.monotonic() < deadline:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        requests.append(json.loads(message.body))
    for request in requests:
        response = {
            "v": 1,
            **{k: request[k] for k in ("request_id", "chat_id", "message_id")},
            "status": "completed",
            "content": "Echo: hello there " + "lorem ipsum " * 50,
            "error": None,
            "attempt": 0,
            "next_attempt_at": None,
            "usage": {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33},
            "finish_reason": "STOP",
            "key_id": "3f9a1c2e",
            "latency_ms": 150,
        }
        await channel.default_exchange.publish(
            aio_pika.Message(json.dumps(response).encode(), message_id=request["request_id"]),
            routing_key=names.response_queue,
        )

    async def open_replies() -> int:
        # Read from PostgreSQL directly: polling the API would add to the backend CPU measured.
        async with await psycopg.AsyncConnection.connect(names.database_url()) as db:
            query = (
                "SELECT count(*) FROM messages WHERE role = 'assistant' AND status <> 'completed'"
            )
            return (await (await db.execute(query)).fetchone())[0]

    while time.monotonic() < deadline:
        if not await open_replies():
            break
        await asyncio.sleep(0.2)
    return codes, [latency for _, latency in results]


async def _run(
    server: Server,
    names: RunNames,
    token: str,
    chats: list,
    rounds: int,
    profile: str | None,
    capacity: float | None,
) -> None:
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends them under a reused one.
    limits = httpx.Limits(
        max_connections=len(chats), max_keepalive_connections=len(chats), keepalive_expiry=2
    )
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with httpx.AsyncClient(
        base_url=server.url + "/api",
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=60,
    ) as client:
        channel = await connection.channel()
        await channel.declare_queue(names.response_queue, durable=True)
        codes: Counter = Counter()
        latencies: list[float] = []
        await _round(client, channel, names, chats, capacity)  # warm-up
        spy = None
        if profile:
            command = ["py-spy", "record", "--format", "raw", "-o", profile]
            spy = await asyncio.create_subprocess_exec(*command, "--pid", str(server.process.pid))
        cpu_before = _cpu_seconds(server.process.pid)
        for _ in range(rounds):
            round_codes, round_latencies = await _round(client, channel, names, chats, capacity)
            codes += round_codes
            latencies += round_latencies
        cpu_ms = 1000 * (_cpu_seconds(server.process.pid) - cpu_before) / max(1, codes[202])
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
    await connection.close()
    log = server.log_path.read_text()
    print(
        f"{len(chats)} chats sending at once, {rounds} rounds, one uvicorn process:\n"
        f"  answers {dict(codes)}; send p50 {1000 * statistics.median(latencies):.0f} ms, "
        f"p99 {1000 * _percentile(latencies, 0.99):.0f} ms, max {1000 * max(latencies):.0f} ms\n"
        f"  log: {log.count('QueuePool limit')} pool timeouts, "
        f"{log.count('left to the outbox relay')} requests left to the relay\n"
        f"  backend CPU per reply (send + publish + apply): {cpu_ms:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="write py-spy's collapsed stacks of the backend here")
    parser.add_argument("--capacity", type=float, help="key-pool calls a minute to publish")
    args = parser.parse_args()

    names = RunNames()
    create_database(names.database)
    server = None
    try:
        assert alembic(names.env(), "upgrade", "head").returncode == 0
        server = Server(
            names.env(USER_MESSAGES_PER_MINUTE=0), Path(tempfile.mkdtemp(prefix="bench-"))
        ).wait_ready()
        user = register(server.url)
        chats = [user.new_chat()["id"] for _ in range(args.chats)]
        asyncio.run(
            _run(server, names, user.token, chats, args.rounds, args.profile, args.capacity)
        )
    finally:
        if server is not None:
            server.stop()
        with contextlib.suppress(Exception):
            asyncio.run(_delete_queues(names))
        drop_database(names.database)
        delete_redis_keys(names.prefix)


async def _delete_queues(names: RunNames) -> None:
    connection = await aio_pika.connect_robust(AMQP_URL)
    channel = await connection.channel()
    for queue in (names.request_queue, names.response_queue, names.response_queue + ".dead"):
        await channel.queue_delete(queue)
    await connection.close()


if __name__ == "__main__":
    main()
