"""Escalating retries through the per-delay TTL queues, the dead queue, resets after failures."""

from datetime import datetime

from standin.replies import reply_text

from .conftest import shared_worker
from .support import request

# Gemini calls time out after 1 s in this module (the timeout test holds a reply back 3 s).
env, bus, worker, _fresh = shared_worker(GEMINI_TIMEOUT_SECONDS="1")


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_retries_escalate_then_fail_into_the_dead_queue(worker, bus, standin, events):
    standin.config(faults=[{"kind": "503", "count": 10}])
    body = request("are you there?")
    await bus.send(body)
    done = await bus.final(body["request_id"])
    retrying = bus.of(body["request_id"], "retrying")
    assert [r["attempt"] for r in retrying] == [1, 2]
    assert all(r["error"]["code"] == "upstream_unavailable" for r in retrying)
    assert all(r["error"]["retryable"] for r in retrying)
    # next_attempt_at follows QUEUE_RETRY_DELAYS (0.3 s, then 0.6 s).
    first, second = (_at(r["next_attempt_at"]) for r in retrying)
    assert 0.5 <= (second - first).total_seconds() <= 3
    assert done["status"] == "failed" and done["attempt"] == 2
    assert done["error"]["code"] == "upstream_unavailable"
    assert "after 3 attempts" in done["error"]["message"]
    # Each attempt: the call and its two quick tries on other keys.
    assert standin.stats()["total_calls"] == 9

    dead = await bus.dead_letters()
    assert len(dead) == 1
    assert dead[0].message_id == body["request_id"]
    assert dead[0].headers["x-dead-reason"].startswith("retries exhausted")
    assert dead[0].body.decode().count(body["request_id"]) == 1

    statuses = [(e, d.get("attempt")) for e, d in await events.of(body["chat_id"])]
    assert statuses == [
        ("message.status", 0),
        ("message.status", 1), ("message.reset", None),
        ("message.status", 2), ("message.reset", None),
    ]


async def test_error_mid_stream_resets_and_a_quick_try_completes(worker, bus, standin, events):
    standin.config(faults=[{"kind": "midstream", "after_chunks": 3}])
    body = request("tell me a story")
    await bus.send(body)
    done = await bus.final(body["request_id"])
    expected = reply_text("tell me a story")
    assert done["status"] == "completed" and done["attempt"] == 0
    assert done["content"] == expected
    assert not bus.of(body["request_id"], "retrying")
    kinds = [e for e, _ in await events.of(body["chat_id"])]
    # The failed call's deltas, the quick try's status and reset, its deltas (chunks that
    # arrive together may share a delta).
    retry_at = kinds.index("message.status", 1)
    assert kinds[0] == "message.status" and set(kinds[1:retry_at]) == {"message.delta"}
    assert kinds[retry_at:retry_at + 2] == ["message.status", "message.reset"]
    assert set(kinds[retry_at + 2:]) == {"message.delta"}
    assert await events.text(body["chat_id"]) == expected


async def test_timeout_is_tried_again_at_once(worker, bus, standin):
    standin.config(faults=[{"kind": "hang", "ms": 3000}])
    body = request("slow one")
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert not bus.of(body["request_id"], "retrying")
    assert done["status"] == "completed" and done["content"] == reply_text("slow one")
    assert done["latency_ms"] < 3000
