"""Consumes requests, runs them, publishes outcomes, then acks (docs/CONTRACTS.md, "RabbitMQ")."""

import asyncio
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError
from redis.asyncio import Redis

from .api.failures import Blame
from .api.gemini import GeminiApi
from .core.config import Settings
from .core.logging import log
from .events import ChatEvents
from .idempotency import Claims
from .processor import Outcome, Processor
from .queue.messages import GeminiRequest, GeminiResponse, ResponseError, Turn
from .queue.topology import DEAD_LETTER_POLICY, Topology, json_message
from .rate_limiter.key_pool import KeyPool
from .rate_limiter.registry import KeyRegistry

_RECONNECT_S = 2.0
# The registry's version is read this often: a key added or removed in the admin page is used,
# or no longer used, within about a second by every replica.
_REGISTRY_POLL_S = 1.0
# Redis may come back empty (a restart without persistence): the key index, each key's defaults
# and the limits are published again this often, so the admin view never stays blank for long;
# the pool's capacity (admission control) and the due key probes go at the same pace.
_REGISTER_EVERY_S = 2.0
_PRUNE_EVERY_S = 600.0
_TRANSIENT_PAUSE_S = 1.0  # before handing back a request we could not settle (broker/Redis down)


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topology = Topology(
            settings.request_queue, settings.response_queue, settings.queue_retry_delays
        )
        self._redis = Redis.from_url(settings.redis_url)
        self._pool = KeyPool(self._redis, settings)
        self._registry = KeyRegistry(
            self._redis, settings.redis_key_prefix, settings.secret_key, settings.gemini_api_keys
        )
        self._api = GeminiApi(settings, self._pool.keys)
        self._processor = Processor(
            settings, self._pool, self._api, ChatEvents(self._redis, settings.redis_key_prefix)
        )
        self._claims = Claims(self._redis, settings.redis_key_prefix)
        self._connection: AbstractRobustConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._queue: aio_pika.abc.AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task] = set()
        self._registrar: asyncio.Task | None = None
        self._caretaker: asyncio.Task | None = None

    async def start(self) -> None:
        await self._reload_keys()
        await self._pool.register()
        connection = await aio_pika.connect_robust(
            self.settings.amqp_url, reconnect_interval=_RECONNECT_S
        )
        try:
            self._channel = await connection.channel(publisher_confirms=True)
            await self._channel.set_qos(prefetch_count=self.settings.worker_prefetch)
            self._queue, bounded = await self.topology.declare(connection, self._channel)
            if not bounded:
                log.warning("dead_queue_unbounded", extra={
                    "queue": self.topology.dead, "fix": DEAD_LETTER_POLICY,
                })
            self._consumer_tag = await self._queue.consume(self._on_message)
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        self._registrar = asyncio.create_task(self._follow_registry())
        self._caretaker = asyncio.create_task(self._care_for_pool())
        log.info("worker_started", extra={
            "request_queue": self.topology.request, "keys": list(self._pool.keys),
            "prefetch": self.settings.worker_prefetch,
            "proxy": bool(self.settings.http_proxy or self.settings.gemini_proxies),
        })

    async def _reload_keys(self) -> None:
        keys = await self._registry.load()
        if keys != self._pool.keys:
            added, gone = set(keys) - set(self._pool.keys), set(self._pool.keys) - set(keys)
            self._api.set_keys(keys)
            self._pool.set_keys(keys)
            if added:
                await self._pool.register()
            log.info("keys_changed", extra={"added": sorted(added), "removed": sorted(gone)})

    async def _follow_registry(self) -> None:
        while True:
            await asyncio.sleep(_REGISTRY_POLL_S)
            try:
                if await self._registry.changed():
                    await self._reload_keys()
            except Exception as exc:  # Redis down: the next round tries again.
                log.warning("registry_read_failed", extra={"error": type(exc).__name__})

    async def _care_for_pool(self) -> None:
        """Keeps the shared state fresh: registration, capacity per model, key probes, charts."""
        pruned = 0.0
        while True:
            await asyncio.sleep(_REGISTER_EVERY_S)
            try:
                await self._pool.register()
                s = self.settings
                models = {s.gemini_model, *s.keys_limits, *self._processor.models_seen}
                for model in sorted(models):
                    await self._pool.capacity(model)
                for kid in await self._pool.due_for_probe():
                    await self._probe(kid)
                if time.monotonic() - pruned > _PRUNE_EVERY_S:
                    await self._pool.prune_series()
                    pruned = time.monotonic()
            except Exception as exc:  # Redis down: the next round tries again.
                log.warning("key_pool_care_failed", extra={"error": type(exc).__name__})

    async def _probe(self, kid: str) -> None:
        """A disabled key is asked again with a call that costs no generation quota."""
        failure = await self._api.probe(kid, self.settings.gemini_model)
        if failure is None:
            await self._pool.probed(kid, ok=True)
            log.info("key_healed", extra={"key_id": kid})
        elif failure.blame is Blame.KEY:
            await self._pool.probed(kid, ok=False, reason=failure.key_reason or "",
                                    message=failure.message)
            log.info("key_still_refused", extra={"key_id": kid, "reason": failure.key_reason})
        else:  # Google unreachable or busy: nothing learnt about the key; ask again later.
            await self._pool.probed(kid, ok=False)

    async def stop(self) -> None:
        """Stops consuming, lets in-flight requests finish within the bound, hands back the rest."""
        for task in (self._registrar, self._caretaker):
            if task is not None:
                task.cancel()
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._consumer_tag)
        pending = set(self._in_flight)
        if pending:
            log.info("draining", extra={"in_flight": len(pending)})
            _, pending = await asyncio.wait(pending, timeout=self.settings.worker_shutdown_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)
            log.info("requeued_on_stop", extra={"count": len(pending)})
        # Unacked deliveries go back to the queue when the channel closes.
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        await self._api.aclose()
        await self._redis.aclose()
        log.info("worker_stopped")

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            await self._handle(message)
        except asyncio.CancelledError:
            # Shutdown past its bound, or aio-pika dropping a lost channel's deliveries: the
            # broker hands the request out again.
            log.info("request_interrupted", extra={"message_id": message.message_id})
            raise
        except Exception:
            log.exception("request_not_settled", extra={"message_id": message.message_id})
            await asyncio.sleep(_TRANSIENT_PAUSE_S)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
        finally:
            self._in_flight.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            request = GeminiRequest.model_validate_json(message.body)
        except ValidationError as exc:
            await self._reject(message, exc)
            return
        extra = {"request_id": request.request_id, "attempt": request.attempt}
        log.info("request_received", extra={**extra, "redelivered": message.redelivered})
        async with self._claims.run_once(request.request_id, request.attempt) as run:
            if run.done:
                log.info("request_duplicate", extra=extra)
                await message.ack()
                return
            if request.kind == "title":
                outcome = await self._processor.title(request)
                await self._settle_title(request, outcome)
            else:
                outcome = await self._processor.run(
                    request, message.redelivered or run.took_over
                )
                await self._settle(request, outcome)
            run.finish()
        await message.ack()
        log.info("request_done", extra={
            **extra, "outcome": outcome.status, "key_id": outcome.key_id,
            "latency_ms": outcome.latency_ms,
            "code": outcome.failure.code if outcome.failure else None,
        })

    async def _settle(self, request: GeminiRequest, outcome: Outcome) -> None:
        response = GeminiResponse(
            request_id=request.request_id, chat_id=request.chat_id,
            message_id=request.message_id, status="failed", content=outcome.content,
            attempt=request.attempt, usage=outcome.usage, finish_reason=outcome.finish_reason,
            key_id=outcome.key_id, latency_ms=outcome.latency_ms, model=outcome.model,
            thoughts=outcome.thoughts,
        )
        failure = outcome.failure
        if outcome.status in ("completed", "cancelled"):
            response.status = outcome.status
        elif outcome.status == "retry" and request.attempt < self.settings.queue_max_retries:
            assert failure is not None
            delay = self.settings.retry_delay(request.attempt)
            retry = request.model_copy(update={"attempt": request.attempt + 1})
            await self._publish(
                self.topology.retry[delay], retry.model_dump_json().encode(),
                request.request_id, {"x-attempt": retry.attempt},
            )
            response.status = "retrying"
            response.attempt = retry.attempt
            response.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
            response.error = ResponseError(code=failure.code, message=failure.message,
                                           retryable=True)
        elif outcome.status == "retry":
            assert failure is not None
            tries = request.attempt + 1
            response.error = ResponseError(
                code=failure.code,
                message=f"Gemini did not answer after {tries} attempts: {failure.message}",
                retryable=True,
            )
            await self._publish(
                self.topology.dead, request.model_dump_json().encode(), request.request_id,
                {"x-dead-reason": f"retries exhausted: {failure.code}", "x-attempt": tries - 1},
            )
        else:
            assert failure is not None
            response.error = ResponseError(code=failure.code, message=failure.message,
                                           retryable=False)
        await self._publish(
            self.topology.response, response.model_dump_json().encode(), request.request_id
        )
        if outcome.status == "completed" and request.title is not None:
            await self._ask_for_title(request, outcome.content)

    async def _ask_for_title(self, request: GeminiRequest, answer: str) -> None:
        """The chat's title, asked for through the request queue once its first reply is out
        (so it never delays the reply). Best effort: a lost title leaves the chat's own."""
        assert request.title is not None
        question = request.contents[-1].text
        spec = request.title
        title_request = GeminiRequest(
            v=1, kind="title", request_id=str(uuid.uuid4()), chat_id=request.chat_id,
            message_id=request.message_id, user_id=request.user_id, model=spec.model,
            system_instruction=spec.system_instruction,
            generation_config=spec.generation_config,
            contents=[Turn(role="user", text=title_prompt(question, answer))],
        )
        try:
            await self._publish(
                self.topology.request, title_request.model_dump_json().encode(),
                title_request.request_id,
            )
        except Exception as exc:
            log.warning("title_not_asked", extra={
                "request_id": request.request_id, "error": type(exc).__name__,
            })

    async def _settle_title(self, request: GeminiRequest, outcome: Outcome) -> None:
        response = GeminiResponse(
            kind="title", request_id=request.request_id, chat_id=request.chat_id,
            message_id=request.message_id,
            status="completed" if outcome.status == "completed" else "failed",
            content=outcome.content, usage=outcome.usage, key_id=outcome.key_id,
            latency_ms=outcome.latency_ms, model=outcome.model,
        )
        if outcome.failure is not None and response.status == "failed":
            response.error = ResponseError(
                code=outcome.failure.code, message=outcome.failure.message, retryable=False
            )
        await self._publish(
            self.topology.response, response.model_dump_json().encode(), request.request_id
        )

    async def _reject(self, message: AbstractIncomingMessage, exc: ValidationError) -> None:
        """An unparseable request: dead-letter it with its reason; tell the backend if possible."""
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        reason = f"invalid request: {where}: {first['msg']}"[:500]
        log.error("request_rejected", extra={"message_id": message.message_id, "reason": reason})
        await self._publish(
            self.topology.dead, message.body, message.message_id or "", {"x-dead-reason": reason}
        )
        ids = _ids_of(message.body)
        if ids is not None:
            response = GeminiResponse(
                **ids, status="failed",
                error=ResponseError(code="invalid_request", message=reason, retryable=False),
            )
            await self._publish(
                self.topology.response, response.model_dump_json().encode(), ids["request_id"]
            )
        await message.ack()

    async def _publish(
        self, queue: str, body: bytes, message_id: str, headers: dict | None = None
    ) -> None:
        assert self._channel is not None
        await self._channel.default_exchange.publish(
            json_message(body, message_id, headers), routing_key=queue
        )


_TITLE_PART_CHARS = 1500


def title_prompt(question: str, answer: str) -> str:
    """The one turn of a title request: the start of the first question and its answer."""
    return (
        f"User: {question[:_TITLE_PART_CHARS]}\n\n"
        f"Assistant: {answer[:_TITLE_PART_CHARS]}"
    )


def _ids_of(body: bytes) -> dict | None:
    """request_id, chat_id and message_id of a malformed request, when it still has them."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    ids = {name: data.get(name) for name in ("request_id", "chat_id", "message_id")}
    if not isinstance(ids["request_id"], str) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in ids.values()
    ):
        return None
    return ids
