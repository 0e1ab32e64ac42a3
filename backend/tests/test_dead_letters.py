"""The dead-letter queue of responses is bounded, on new installs and, through a policy, old ones."""

import asyncio
import subprocess
import uuid

import aio_pika

from tests.support import AMQP_URL, RunNames, Server, wait_for


def _queue_arguments(name: str) -> str | None:
    listing = subprocess.run(
        ["rabbitmqctl", "list_queues", "-q", "name", "arguments"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return next((line for line in listing.splitlines() if line.split()[0] == name), None)


async def _queues(declare: list[str], delete: list[str]) -> None:
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for name in declare:
            await channel.declare_queue(name, durable=True)
        for name in delete:
            await channel.queue_delete(name)


def test_the_dead_queue_is_bounded(server: Server, run: RunNames) -> None:
    arguments = _queue_arguments(run.response_queue + ".dead")
    assert arguments is not None
    assert "x-max-length" in arguments and "10000" in arguments and "drop-head" in arguments


def test_a_dead_queue_from_before_the_bound_is_kept_and_named(run: RunNames, logs) -> None:
    """RabbitMQ refuses new arguments on an existing queue: the backend starts anyway and its
    log says how to bound the queue in place."""
    responses = f"{run.response_queue}.old{uuid.uuid4().hex[:6]}"
    asyncio.run(_queues([responses + ".dead"], []))
    backend = Server(run.env(RESPONSE_QUEUE=responses), logs)
    try:
        backend.wait_ready()
        wait_for(lambda: "bound it in place" in backend.log_path.read_text(), "the warning")
        assert "rabbitmqctl set_policy" in backend.log_path.read_text()
    finally:
        backend.stop()
        asyncio.run(_queues([], [responses, responses + ".dead"]))
