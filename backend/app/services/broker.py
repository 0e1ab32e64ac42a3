"""RabbitMQ: publishing requests with confirms, consuming responses (aio-pika robust connection).

The first connection is retried in the background so the API starts while RabbitMQ is down;
after that aio-pika's robust connection reconnects and restores the consumer by itself."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel, AbstractRobustConnection
from aio_pika.exceptions import ChannelPreconditionFailed

from app.core.config import Settings

log = logging.getLogger(__name__)

# Unreadable responses are kept for inspection, not forever: past this many the oldest go.
DEAD_LETTER_ARGUMENTS = {"x-max-length": 10_000, "x-overflow": "drop-head"}
DEAD_LETTER_POLICY = (
    "rabbitmqctl set_policy --apply-to queues dead-letters '\\.dead$' '{\"max-length\":10000}'"
)

ResponseHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]


class BrokerUnavailable(Exception):
    pass


class Broker:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._on_response: ResponseHandler | None = None
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractRobustChannel | None = None

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def run(self, on_response: ResponseHandler | None) -> None:
        """Connect, retrying until RabbitMQ answers; then the robust connection takes over.
        `on_response` consumes RESPONSE_QUEUE (None: publish only)."""
        self._on_response = on_response
        delay = 0.5
        while True:
            try:
                await self._connect()
                log.info("connected to RabbitMQ")
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("RabbitMQ not reachable (%s); retrying in %.1fs", error, delay)
                await self._discard()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _connect(self) -> None:
        connection = await aio_pika.connect_robust(
            self._settings.rabbitmq_url,
            timeout=5,
            client_properties={"connection_name": "chat-backend"},
        )
        self._connection = connection
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.declare_queue(self._settings.REQUEST_QUEUE, durable=True)
        await self._declare_dead_letters(connection)
        self._publish_channel = channel
        if self._on_response is not None:
            consume_channel = await connection.channel()
            # Each response in flight is applied at once with its own database connection.
            await consume_channel.set_qos(prefetch_count=self._settings.response_concurrency)
            queue = await consume_channel.declare_queue(self._settings.RESPONSE_QUEUE, durable=True)
            await queue.consume(self._on_response)

    async def _declare_dead_letters(self, connection: AbstractRobustConnection) -> None:
        """Bounded by its arguments; one made before the bound existed keeps its own (RabbitMQ
        refuses the declare, which closes only this side channel) and a policy bounds it."""
        side = await connection.channel()
        try:
            await side.declare_queue(
                self.dead_letter_queue, durable=True, arguments=DEAD_LETTER_ARGUMENTS
            )
        except ChannelPreconditionFailed:
            log.warning(
                "%s was made without a length bound and keeps growing; bound it in place: %s",
                self.dead_letter_queue,
                DEAD_LETTER_POLICY,
            )
        finally:
            if not side.is_closed:
                await side.close()

    async def _discard(self) -> None:
        connection, self._connection, self._publish_channel = self._connection, None, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:  # already broken: nothing left to close cleanly
                log.debug("closing a failed RabbitMQ connection", exc_info=True)

    async def close(self) -> None:
        await self._discard()

    async def publish(self, queue: str, body: bytes, message_id: str) -> None:
        """Publish persistently and wait for the broker's confirm; BrokerUnavailable otherwise."""
        channel = self._publish_channel
        if channel is None or channel.is_closed or not self.connected:
            raise BrokerUnavailable("RabbitMQ is not connected")
        message = aio_pika.Message(
            body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=message_id,
        )
        try:
            await channel.default_exchange.publish(
                message, routing_key=queue, timeout=self._settings.PUBLISH_TIMEOUT_SECONDS
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise BrokerUnavailable(f"publish failed: {error!r}") from error

    @property
    def dead_letter_queue(self) -> str:
        return f"{self._settings.RESPONSE_QUEUE}.dead"

    async def dead_letter(self, body: bytes, reason: str, message_id: str | None) -> None:
        """Park a response we cannot read, with the reason, instead of retrying it forever."""
        channel = self._publish_channel
        if channel is None or channel.is_closed:
            raise BrokerUnavailable("RabbitMQ is not connected")
        message = aio_pika.Message(
            body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=message_id,
            headers={"x-reason": reason[:1000]},
        )
        try:
            await channel.default_exchange.publish(
                message,
                routing_key=self.dead_letter_queue,
                timeout=self._settings.PUBLISH_TIMEOUT_SECONDS,
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise BrokerUnavailable(f"dead-letter publish failed: {error!r}") from error

    async def ping(self) -> None:
        """A round trip to the broker: open and close a channel of its own (a failed check
        must not close the channel that publishes)."""
        if self._connection is None or not self.connected:
            raise BrokerUnavailable("not connected")
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.close()
