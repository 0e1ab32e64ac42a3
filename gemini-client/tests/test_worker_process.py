"""The worker as a process: bad settings, SIGTERM, kill -9 mid-reply, three replicas under load."""

import asyncio
import signal
import subprocess
import time

from standin.replies import reply_text

from .conftest import KEYS
from .support import PYTHON, ROOT, clean_env, key_id, request, wait_for


def test_bad_setting_stops_start_with_one_line_naming_it(env):
    placeholder = "replace-with-a-long-random-hex-string"  # .env.example's
    for name, value in [("SECRET_KEY", ""), ("HTTP_PROXY", "ftp://proxy:21"),
                        ("KEYS_LIMITS", "gemini-2.5-pro:5"),
                        ("QUEUE_RETRY_DELAYS", "1,soon"), ("KEYS_MAX_PER_MINUTE", "0"),
                        ("GEMINI_API_KEYS", "replace-with-key-1,replace-with-key-2"),
                        ("SECRET_KEY", placeholder),
                        ("RABBITMQ_URL", f"amqp://chat:{placeholder}@rabbitmq:5672/"),
                        ("REDIS_URL", f"redis://:{placeholder}@redis:6379/0")]:
        done = subprocess.run(
            [PYTHON, "-m", "src.main"], cwd=ROOT, env=clean_env({**env, name: value}),
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0], done.stderr
        assert placeholder not in lines[0]


async def first_delta(events, chat_id: str) -> bool:
    return any(e == "message.delta" for e, _ in await events.of(chat_id))


async def test_sigterm_finishes_the_reply_in_flight_and_exits_0(spawn, bus, standin, events):
    standin.config(chunk_ms=150)
    worker = await spawn().started()
    body = request("finish me first")
    await bus.send(body)
    await wait_for(lambda: first_delta(events, body["chat_id"]), 10, "the first delta")
    worker.signal(signal.SIGTERM)
    assert await worker.wait_exit(10) == 0
    (done,) = bus.of(body["request_id"])
    assert done["status"] == "completed" and done["content"] == reply_text("finish me first")
    assert [line["event"] for line in worker.log_lines()][-1] == "worker_stopped"


async def test_sigterm_past_the_bound_hands_the_request_back(spawn, bus, standin, events):
    standin.config(chunk_ms=400)
    worker = await spawn(WORKER_SHUTDOWN_SECONDS="0.3").started()
    body = request("too long to wait for")
    await bus.send(body)
    await wait_for(lambda: first_delta(events, body["chat_id"]), 10, "the first delta")
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert await worker.wait_exit(10) == 0
    assert time.monotonic() - started < 5
    assert not bus.of(body["request_id"])
    standin.config(chunk_ms=5)
    await spawn().started()
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed" and done["content"] == reply_text("too long to wait for")
    assert "message.reset" in [e for e, _ in await events.of(body["chat_id"])]
    assert await events.text(body["chat_id"]) == done["content"]


async def test_kill_9_mid_stream_completes_exactly_once(spawn, bus, standin, events):
    standin.config(chunk_ms=300)
    first = await spawn().started()
    body = request("survive a crash")
    await bus.send(body)
    await wait_for(lambda: first_delta(events, body["chat_id"]), 10, "the first delta")
    first.kill()
    standin.config(chunk_ms=5)
    await spawn().started()
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed" and done["content"] == reply_text("survive a crash")
    kinds = [e for e, _ in await events.of(body["chat_id"])]
    reset_at = kinds.index("message.reset")
    assert kinds[reset_at - 1] == "message.status" and "message.delta" in kinds[:reset_at]
    assert await events.text(body["chat_id"]) == done["content"]
    # Nothing more arrives for it: exactly one response in all, the request queue is empty.
    await asyncio.sleep(1)
    assert len(bus.of(body["request_id"])) == 1
    queue = await bus.channel.declare_queue(bus.request_queue, durable=True)
    assert queue.declaration_result.message_count == 0


async def test_three_replicas_never_exceed_a_keys_limit(spawn, bus, standin, record_property):
    """3 keys x 6 calls/min, 3 worker processes, 30 requests at once: the 18 calls the quota
    allows all go out within the minute, Google never answers 429, the rest wait in the retry
    queue."""
    limit, total = 6, 30
    standin.config(rpm=limit, first_chunk_ms=50, chunk_ms=10)
    settings = dict(KEYS_MAX_PER_MINUTE=str(limit), KEYS_MAX_WAIT_SECONDS="0.5",
                    QUEUE_RETRY_DELAYS="120", QUEUE_MAX_RETRIES="1", WORKER_PREFETCH="8")
    workers = [spawn(**settings) for _ in range(3)]
    for worker in workers:
        await worker.started()
    bodies = [request(f"overload {i}") for i in range(total)]
    started = time.monotonic()
    for body in bodies:
        await bus.send(body)

    def settled() -> bool:
        return len(bus.responses) >= total

    await wait_for(settled, 30, "every request to complete or go to the retry queue")
    elapsed = time.monotonic() - started
    completed = [r for r in bus.responses if r["status"] == "completed"]
    retrying = [r for r in bus.responses if r["status"] == "retrying"]
    stats = standin.stats()
    record_property("quota_used", f"{len(completed)}/{limit * len(KEYS)}")
    record_property("upstream_429", stats["total_429"])
    print(f"\nthree replicas: {len(completed)} of {limit * len(KEYS)} calls of quota used in "
          f"{elapsed:.1f}s, {stats['total_429']} upstream 429s, {len(retrying)} sent to retry")
    assert stats["total_429"] == 0
    assert len(completed) == limit * len(KEYS)
    assert stats["calls"] == {key_id(k): limit for k in KEYS}
    assert len(retrying) == total - len(completed)
    assert {r["error"]["code"] for r in retrying} == {"keys_busy"}
    served_by = {line.get("key_id") for w in workers for line in w.log_lines()
                 if line.get("event") == "request_done" and line.get("outcome") == "completed"}
    assert served_by == {key_id(k) for k in KEYS}
    assert sum(any(line.get("outcome") == "completed" for line in w.log_lines())
               for w in workers) >= 2


def _queue_arguments(name: str) -> str:
    listing = subprocess.run(
        ["rabbitmqctl", "list_queues", "-q", "name", "arguments"],
        capture_output=True, text=True, timeout=60,
    ).stdout
    return next((line for line in listing.splitlines() if line.split()[0] == name), "")


async def test_the_dead_queue_is_bounded(spawn, bus):
    await spawn().started()
    arguments = _queue_arguments(bus.dead_queue)
    assert "x-max-length" in arguments and "10000" in arguments and "drop-head" in arguments


async def test_a_dead_queue_from_before_the_bound_is_kept_and_named(spawn, bus):
    """RabbitMQ refuses new arguments on an existing queue: the worker starts anyway and says
    how to bound it in place."""
    await bus.channel.declare_queue(bus.dead_queue, durable=True)
    worker = await spawn().started()
    warning = next(line for line in worker.log_lines() if line["event"] == "dead_queue_unbounded")
    assert warning["queue"] == bus.dead_queue and "rabbitmqctl set_policy" in warning["fix"]
    body = request("still works")
    await bus.send(body)
    assert (await bus.final(body["request_id"]))["status"] == "completed"
