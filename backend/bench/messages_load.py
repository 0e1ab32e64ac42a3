"""Load on GET /api/chats/{id}/messages against one uvicorn process on loopback.

    cd backend && .venv/bin/python -m bench.messages_load [--seconds 10] [--concurrency 16]

Starts its own backend with a throw-away database, Redis prefix and queues (removed after),
fills one chat with 20 messages, then keeps `concurrency` requests in flight for `seconds`
and prints requests/s and latency percentiles."""

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.support import (
    RunNames,
    Server,
    WorkerRole,
    alembic,
    create_database,
    delete_redis_keys,
    drop_database,
    register,
)


async def _load(url: str, token: str, path: str, seconds: float, concurrency: int) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=10
    ) as client:

        async def one_client() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                answer = await client.get(path)
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise RuntimeError(f"{answer.status_code}: {answer.text}")

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return latencies


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process: unlike requests/s, barely moved by other load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()

    names = RunNames()
    create_database(names.database)
    worker = None
    server = None
    try:
        assert alembic(names.env(), "upgrade", "head").returncode == 0
        worker = WorkerRole(names)
        server = Server(
            names.env(USER_MESSAGES_PER_MINUTE=0, LOG_LEVEL="WARNING"),
            Path(tempfile.mkdtemp(prefix="bench-")),
        ).wait_ready()
        user = register(server.url)
        chat = user.new_chat()
        for i in range(args.messages // 2):
            reply = user.send(chat["id"], f"question {i} " + "lorem ipsum " * 20)
            request, _ = worker.take_request(reply["assistant_message"]["id"])
            worker.respond(request, "completed", f"answer {i} " + "dolor sit amet " * 40)
            user.wait_status(chat["id"], reply["assistant_message"]["id"], "completed")
        path = f"/api/chats/{chat['id']}/messages"
        asyncio.run(_load(server.url, user.token, path, 1, args.concurrency))  # warm-up
        cpu_before = _cpu_seconds(server.process.pid)
        latencies = asyncio.run(_load(server.url, user.token, path, args.seconds, args.concurrency))
        cpu_ms = 1000 * (_cpu_seconds(server.process.pid) - cpu_before) / len(latencies)
        print(
            f"GET {path.replace(chat['id'], '{id}')} ({len(user.messages(chat['id']))} messages), "
            f"{args.concurrency} in flight for {args.seconds:g}s, one uvicorn process:\n"
            f"  {len(latencies) / args.seconds:.0f} requests/s, "
            f"p50 {1000 * statistics.median(latencies):.1f} ms, "
            f"p99 {1000 * _percentile(latencies, 0.99):.1f} ms, "
            f"max {1000 * max(latencies):.1f} ms ({len(latencies)} requests)\n"
            f"  backend CPU per request: {cpu_ms:.2f} ms (user + system)"
        )
    finally:
        if server is not None:
            server.stop()
        if worker is not None:
            with contextlib.suppress(Exception):
                worker.delete_queues()
            worker.close()
        drop_database(names.database)
        delete_redis_keys(names.prefix)


if __name__ == "__main__":
    main()
