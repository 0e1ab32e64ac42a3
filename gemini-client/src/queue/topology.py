"""Queue names and declarations (docs/CONTRACTS.md, "RabbitMQ")."""

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractQueue
from aio_pika.exceptions import ChannelPreconditionFailed

# Dead letters are kept for inspection, not forever: past this many the oldest go.
DEAD_LETTER_ARGUMENTS = {"x-max-length": 10_000, "x-overflow": "drop-head"}
# What an install whose dead queue predates the bound runs once (RabbitMQ refuses to change a
# queue's arguments, a policy bounds it in place).
DEAD_LETTER_POLICY = (
    "rabbitmqctl set_policy --apply-to queues dead-letters '\\.dead$' '{\"max-length\":10000}'"
)


def delay_label(seconds: float) -> str:
    """`60s` for whole seconds, `500ms` for sub-second test delays."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


class Topology:
    def __init__(self, request_queue: str, response_queue: str, delays: list[float]) -> None:
        self.request = request_queue
        self.response = response_queue
        self.dead = f"{request_queue}.dead"
        self.retry = {d: f"{request_queue}.retry.{delay_label(d)}" for d in delays}

    def all_names(self) -> list[str]:
        return [self.request, self.response, self.dead, *self.retry.values()]

    async def declare(
        self, connection: AbstractConnection, channel: AbstractChannel
    ) -> tuple[AbstractQueue, bool]:
        """Declares every queue; returns the request queue to consume, and whether the dead
        queue is bounded by its arguments."""
        request = await channel.declare_queue(self.request, durable=True)
        await channel.declare_queue(self.response, durable=True)
        bounded = await declare_dead_letters(connection, self.dead)
        for delay, name in self.retry.items():
            await channel.declare_queue(name, durable=True, arguments={
                "x-message-ttl": max(1, round(delay * 1000)),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.request,
            })
        return request, bounded


async def declare_dead_letters(connection: AbstractConnection, name: str) -> bool:
    """Declares a dead-letter queue with its bound. One made before the bound existed keeps its
    arguments (False): the refused declare closes only this side channel."""
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, durable=True, arguments=DEAD_LETTER_ARGUMENTS)
        return True
    except ChannelPreconditionFailed:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()


def json_message(
    body: bytes, message_id: str, headers: dict | None = None
) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
        headers=headers or {},
    )
