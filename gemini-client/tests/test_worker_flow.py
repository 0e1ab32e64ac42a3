"""A request through a real worker: events in Redis, one response on the queue, then the ack.

These tests share one worker (and its queues and Redis prefix): each uses its own chat, message
and request ids, and the stand-in is reset before each."""

import json

from standin.replies import reply_text

from .conftest import shared_worker
from .support import key_id, request, wait_for

env, bus, worker, _fresh = shared_worker()


async def test_reply_streams_into_events_and_completes(worker, bus, events, standin, redis, env):
    body = request(
        "and now?", system_instruction="Answer in French.",
        contents=[
            {"role": "user", "text": "hi"}, {"role": "model", "text": "salut"},
            {"role": "user", "text": "and now?"},
        ],
        generation_config={"temperature": 0.4, "max_output_tokens": 256},
    )
    await bus.send(body)
    done = await bus.final(body["request_id"])
    expected = reply_text("and now?", turns=3, system_instruction="Answer in French.")
    assert done["status"] == "completed"
    assert done["content"] == expected
    assert done["chat_id"] == body["chat_id"] and done["message_id"] == body["message_id"]
    assert done["finish_reason"] == "STOP" and done["error"] is None
    assert done["usage"]["completion_tokens"] > 0 and done["usage"]["total_tokens"] > 0
    assert done["key_id"] in {key_id(k) for k in env["GEMINI_API_KEYS"].split(",")}
    # The run's end, right after the response's publish: the done marker and the claim freed;
    # the key's token estimate was replaced by Gemini's count before it.
    p, run = env["REDIS_KEY_PREFIX"], f"{body['request_id']}:0"
    await wait_for(lambda: redis.exists(f"{p}done:{run}"), 5, "the run's end")
    assert not await redis.exists(f"{p}claim:{run}")
    tokens = await redis.zrange(f"{p}keys:{done['key_id']}:m:{done['model']}:tokens", 0, -1)
    assert [t.rsplit(b":", 1)[1] for t in tokens] == [str(done["usage"]["total_tokens"]).encode()]

    stream = await events.of(body["chat_id"])
    assert stream[0] == ("message.status", {
        "message_id": body["message_id"], "status": "streaming", "attempt": 0,
        "next_attempt_at": None, "error": None,
    })
    deltas = [data for event, data in stream if event == "message.delta"]
    # A worker's first reply may coalesce chunks while its Redis connection warms up.
    assert [d["seq"] for d in deltas] == list(range(len(deltas))) and deltas
    assert await events.text(body["chat_id"]) == expected
    assert not [e for e, _ in stream if e == "message.reset"]
    assert 0 < await redis.ttl(f"{env['REDIS_KEY_PREFIX']}events:{body['chat_id']}") <= 86400

    seen = standin.requests()[-1]
    assert seen["systemInstruction"]["parts"][0]["text"] == "Answer in French."
    assert seen["generationConfig"] == {"temperature": 0.4, "maxOutputTokens": 256}
    assert [c["parts"][0]["text"] for c in seen["contents"]] == ["hi", "salut", "and now?"]
    # The request was acked: nothing left on the queue.
    queue = await bus.channel.declare_queue(bus.request_queue, durable=True)
    assert queue.declaration_result.message_count == 0
    assert "test-key" not in worker.log_text()


async def test_each_request_reaches_gemini_with_its_own_instruction_and_settings(
    worker, bus, standin
):
    """The worker keeps the converted settings of earlier requests: they must never leak into
    a request whose own differ."""
    variants = [
        ("Answer in French.", {"temperature": 0.4}),
        ("Answer in German.", {"temperature": 0.4}),
        ("Answer in French.", {"temperature": 0.9}),
        (None, {}),
        ("Answer in French.", {"temperature": 0.4}),
    ]
    for i, (instruction, config) in enumerate(variants):
        body = request(f"which {i}?", system_instruction=instruction, generation_config=config)
        await bus.send(body)
        assert (await bus.final(body["request_id"]))["status"] == "completed"
        seen = standin.requests()[-1]
        assert [c["parts"][0]["text"] for c in seen["contents"]] == [f"which {i}?"]
        sent = seen.get("systemInstruction")
        assert (sent["parts"][0]["text"] if sent else None) == instruction
        assert seen.get("generationConfig", {}) == config


async def test_many_requests_in_flight_at_once(worker, bus, standin):
    standin.config(first_chunk_ms=1000, chunk_ms=20)
    bodies = [request(f"parallel {i}") for i in range(20)]
    for body in bodies:
        await bus.send(body)
    for body in bodies:
        done = await bus.final(body["request_id"])
        assert done["content"] == reply_text(body["contents"][-1]["text"])
    assert standin.stats()["max_in_flight"] >= 10


async def test_bad_request_fails_at_once_without_blaming_a_key(worker, bus, redis, env, standin):
    body = request("hi", model="gemini-0.1-nano")
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "model_not_found" and done["error"]["retryable"] is False
    assert "gemini-0.1-nano" in done["error"]["message"]
    assert not bus.of(body["request_id"], "retrying")
    assert standin.stats()["total_calls"] == 1
    for key in env["GEMINI_API_KEYS"].split(","):
        state = await redis.hgetall(f"{env['REDIS_KEY_PREFIX']}keys:{key_id(key)}")
        assert state[b"failures"] == b"0" and state[b"disabled"] == b"0"


async def test_safety_block_is_a_readable_failure(worker, bus):
    body = request("something bad [[standin:safety]]")
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "blocked"
    assert "SAFETY" in done["error"]["message"]


async def test_reply_without_text_is_a_readable_failure(worker, bus):
    body = request("think hard [[standin:empty]]")
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "empty_reply"
    assert "MAX_TOKENS" in done["error"]["message"] and done["finish_reason"] == "MAX_TOKENS"


async def test_unparseable_request_goes_to_dead_queue_with_reason(worker, bus):
    await bus.send(b"{not json", message_id="garbage-1")
    unknown_version = request("hi", v=7)
    await bus.send(unknown_version)
    done = await bus.final(unknown_version["request_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "invalid_request"
    dead = await wait_for(bus.dead_letters, 10, "two dead letters")
    while len(dead) < 2:
        dead += await wait_for(bus.dead_letters, 10, "the second dead letter")
    reasons = {m.body: m.headers["x-dead-reason"] for m in dead}
    assert "invalid request" in reasons[b"{not json"]
    assert "v" in reasons[json.dumps(unknown_version).encode()]
    # The worker carries on.
    ok = request("still there?")
    await bus.send(ok)
    assert (await bus.final(ok["request_id"]))["status"] == "completed"
    assert worker.proc.poll() is None


async def test_cancel_before_the_call_publishes_cancelled(worker, bus, redis, env, standin):
    body = request("never mind")
    await redis.set(f"{env['REDIS_KEY_PREFIX']}cancel:{body['request_id']}", "1", ex=60)
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "cancelled" and done["content"] == ""
    assert standin.stats()["total_calls"] == 0


async def test_cancel_stops_the_stream_between_chunks(worker, bus, redis, env, events, standin):
    standin.config(first_chunk_ms=20, chunk_ms=300, chunks=10)
    body = request("a long story please")

    async def first_delta() -> bool:
        return any(e == "message.delta" for e, _ in await events.of(body["chat_id"]))

    await bus.send(body)
    await wait_for(first_delta, 10, "the first delta")
    await redis.set(f"{env['REDIS_KEY_PREFIX']}cancel:{body['request_id']}", "1", ex=60)
    done = await bus.final(body["request_id"])
    full = reply_text("a long story please")
    assert done["status"] == "cancelled"
    assert done["content"] and full.startswith(done["content"]) and done["content"] != full
    assert done["content"] == await events.text(body["chat_id"])
    await wait_for(lambda: standin.stats()["in_flight"] == 0, 5, "the upstream call to end")
    assert standin.stats()["completed"] == 0


async def test_a_burst_of_chunks_is_written_as_fewer_deltas(worker, bus, events, standin):
    """Chunks arriving while a delta is being written go out together in the next one: seq
    stays contiguous and the text whole, with fewer Redis calls."""
    standin.config(first_chunk_ms=0, chunk_ms=0, chunks=60)
    body = request("a burst")
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed"
    deltas = [data for event, data in await events.of(body["chat_id"]) if event == "message.delta"]
    assert [d["seq"] for d in deltas] == list(range(len(deltas)))
    assert len(deltas) < 60
    assert await events.text(body["chat_id"]) == done["content"] == reply_text("a burst")


async def test_chunks_apart_in_time_are_each_shown_at_once(worker, bus, events, standin):
    standin.config(first_chunk_ms=0, chunk_ms=150, chunks=5)
    body = request("slowly")
    await bus.send(body)
    done = await bus.final(body["request_id"])
    deltas = [data for event, data in await events.of(body["chat_id"]) if event == "message.delta"]
    assert [d["seq"] for d in deltas] == list(range(5))
    assert "".join(d["text"] for d in deltas) == done["content"] == reply_text("slowly")
