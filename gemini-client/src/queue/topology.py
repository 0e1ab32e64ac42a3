"""Queue names and declarations (docs/CONTRACTS.md, "RabbitMQ")."""

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue


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

    async def declare(self, channel: AbstractChannel) -> AbstractQueue:
        """Declares every queue; returns the request queue to consume."""
        request = await channel.declare_queue(self.request, durable=True)
        await channel.declare_queue(self.response, durable=True)
        await channel.declare_queue(self.dead, durable=True)
        for delay, name in self.retry.items():
            await channel.declare_queue(name, durable=True, arguments={
                "x-message-ttl": max(1, round(delay * 1000)),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.request,
            })
        return request


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
