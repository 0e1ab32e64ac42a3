"""RabbitMQ or Redis drops out in the middle of a reply: the reply still completes, once."""

import asyncio

from standin.replies import reply_text

from .support import Relay, request, wait_for


async def _outage_mid_reply(spawn, bus, standin, events, *, service: str, port: int):
    relay = await Relay(port).start()
    url = {
        "rabbitmq": f"amqp://guest:guest@127.0.0.1:{relay.port}/",
        "redis": f"redis://127.0.0.1:{relay.port}/0",
    }[service]
    setting = {"rabbitmq": "RABBITMQ_URL", "redis": "REDIS_URL"}[service]
    try:
        standin.config(chunk_ms=250)
        await spawn(**{setting: url}).started()
        body = request(f"{service} goes away")

        async def streaming() -> bool:
            return any(e == "message.delta" for e, _ in await events.of(body["chat_id"]))

        await bus.send(body)
        await wait_for(streaming, 10, "the first delta")
        await relay.cut()
        await asyncio.sleep(2)
        standin.config(chunk_ms=5)
        await relay.restore()
        done = await bus.final(body["request_id"], within=30)
        assert done["status"] == "completed"
        assert done["content"] == reply_text(f"{service} goes away")
        assert await events.text(body["chat_id"]) == done["content"]
        await asyncio.sleep(1)
        assert [r["status"] for r in bus.of(body["request_id"])] == ["completed"]
        # The worker is still consuming after the outage.
        after = request("and after?")
        await bus.send(after)
        assert (await bus.final(after["request_id"]))["status"] == "completed"
    finally:
        await relay.stop()


async def test_rabbitmq_outage_mid_reply(spawn, bus, standin, events):
    await _outage_mid_reply(spawn, bus, standin, events, service="rabbitmq", port=5672)


async def test_redis_outage_mid_reply(spawn, bus, standin, events):
    await _outage_mid_reply(spawn, bus, standin, events, service="redis", port=6379)


async def test_worker_started_before_rabbitmq_and_redis_waits_for_them(spawn, bus):
    amqp, redis = Relay(5672), Relay(6379)  # not listening yet: both services "down"
    worker = spawn(
        RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:{amqp.port}/",
        REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
    )
    try:
        await wait_for(
            lambda: any(line.get("event") == "start_failed" for line in worker.log_lines()),
            30, "a failed start attempt",
        )
        await redis.start()
        await amqp.start()
        await worker.started()
        body = request("finally")
        await bus.send(body)
        assert (await bus.final(body["request_id"]))["status"] == "completed"
    finally:
        await amqp.stop()
        await redis.stop()
