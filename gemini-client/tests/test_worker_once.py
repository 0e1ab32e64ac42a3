"""Each (request_id, attempt) runs once, a stopped request stays stopped, and model text that
a store refuses never wedges a reply (issue 11, "Replies that always reach a final state")."""

import asyncio
import json

from standin.replies import reply_text

from .conftest import shared_worker
from .support import request, wait_for

env, bus, worker, _fresh = shared_worker()


async def test_a_request_delivered_twice_is_answered_once(worker, bus, events, standin):
    """A late publish confirm makes the backend's relay send the same request again."""
    standin.config(chunk_ms=100)
    body = request("only once please")
    await bus.send(body)
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed" and done["content"] == reply_text("only once please")
    await asyncio.sleep(1.5)
    assert len(bus.of(body["request_id"])) == 1
    assert standin.stats()["total_calls"] == 1
    stream = await events.of(body["chat_id"])
    assert [e for e, d in stream if e == "message.status"] == ["message.status"]
    assert await events.text(body["chat_id"]) == done["content"]
    queue = await bus.channel.declare_queue(bus.request_queue, durable=True)
    assert queue.declaration_result.message_count == 0


async def test_a_copy_arriving_after_the_answer_is_dropped(worker, bus, events, standin):
    body = request("answered already")
    await bus.send(body)
    await bus.final(body["request_id"])
    await bus.send(body)
    await wait_for(
        lambda: any(line.get("event") == "request_duplicate" for line in worker.log_lines()),
        10, "the duplicate to be dropped",
    )
    assert len(bus.of(body["request_id"])) == 1
    assert standin.stats()["total_calls"] == 1
    # The next attempt of the same request is not a duplicate.
    retry = {**body, "attempt": 1}
    await bus.send(retry)
    await wait_for(lambda: len(bus.of(body["request_id"])) == 2, 10, "attempt 1's answer")
    assert standin.stats()["total_calls"] == 2


async def test_a_stopped_request_stays_stopped_after_a_retry(worker, bus, redis, env, standin):
    """Stop cancels the request, Retry sends a new one for the same reply: only the new one runs."""
    stopped = request("stop me")
    await redis.set(f"{env['REDIS_KEY_PREFIX']}cancel:{stopped['request_id']}", "1", ex=60)
    fresh = request("stop me", chat_id=stopped["chat_id"], message_id=stopped["message_id"])
    await bus.send(fresh)
    await bus.send(stopped)
    assert (await bus.final(stopped["request_id"]))["status"] == "cancelled"
    done = await bus.final(fresh["request_id"])
    assert done["status"] == "completed" and done["content"] == reply_text("stop me")
    assert standin.stats()["total_calls"] == 1


async def test_text_postgresql_refuses_is_stripped(worker, bus, events, standin):
    # As JSON escapes: httpx's own encoder cannot carry a lone surrogate.
    raw = '{"reply_suffix": " nul:\\u0000 lone:\\ud800 end", "chunks": 1}'
    standin.http.post("/_standin/config", content=raw).raise_for_status()
    body = request("odd characters")
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed"
    assert done["content"] == reply_text("odd characters") + " nul: lone: end"
    assert await events.text(body["chat_id"]) == done["content"]


async def test_a_copy_waits_for_a_live_claim_then_takes_over_cleanly(
    worker, bus, events, redis, env
):
    """Another worker holds the attempt (and has shown part of it); the copy here waits, and when
    that worker lets go without an answer it runs the attempt from a reset screen."""
    body = request("taken over")
    prefix = env["REDIS_KEY_PREFIX"]
    claim = f"{prefix}claim:{body['request_id']}:0"
    await redis.set(claim, "another-worker", px=60_000)
    await redis.xadd(f"{prefix}events:{body['chat_id']}", {
        "event": "message.delta",
        "data": json.dumps({"message_id": body["message_id"], "seq": 0, "text": "half a rep"}),
    })
    await bus.send(body)
    await asyncio.sleep(1.5)
    assert not bus.of(body["request_id"])  # waiting while the claim lives
    await redis.delete(claim)
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed" and done["content"] == reply_text("taken over")
    assert await events.text(body["chat_id"]) == done["content"]
