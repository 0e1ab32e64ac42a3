"""One request, one attempt: pick keys, stream the reply into the chat's events, report the end."""

import asyncio
import random
import time
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Literal

from .api.failures import Blame, GeminiFailure
from .api.gemini import GeminiApi, StreamState
from .attachments import AttachmentStore, Inline
from .core.config import Settings
from .core.logging import log
from .delta_writer import DeltaWriter
from .events import ChatEvents
from .queue.messages import GeminiRequest, Usage
from .rate_limiter.key_pool import AllKeysDisabled, FlagSet, KeyPool, Lease, pacific_day
from .storable import storable

# A brief 5xx, timeout or proxy error is tried again at once on another key, up to this many
# times within the attempt, after a short jittered pause; only then the retry queues take over.
QUICK_TRIES = 2
_QUICK_PAUSE_S = (0.2, 0.8)  # the second try waits twice as long


@dataclass
class Outcome:
    status: Literal["completed", "failed", "retry", "cancelled"]
    content: str = ""
    failure: GeminiFailure | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    key_id: str | None = None
    latency_ms: int | None = None
    model: str | None = None  # the model that answered (a fallback may differ from the chat's)
    thoughts: str = ""  # the model's thought summaries (only when the request asks for them)
    attachments_omitted: int | None = None


class Processor:
    def __init__(
        self, settings: Settings, pool: KeyPool, api: GeminiApi, events: ChatEvents,
        attachments: AttachmentStore | None = None,
    ) -> None:
        self._settings = settings
        self.attachments = attachments or AttachmentStore(settings)
        self._pool = pool
        self._api = api
        self._events = events
        self.models_seen: set[str] = set()  # for the capacity the worker publishes

    async def run(self, request: GeminiRequest, redelivered: bool) -> Outcome:
        started = time.monotonic()
        try:
            async with self.attachments.loaded(request) as inline:
                outcome = await self._run(request, redelivered, inline)
                outcome.attachments_omitted = inline.omitted
        except GeminiFailure as failure:  # the attachments could not be read, or do not fit
            status = "retry" if failure.blame is Blame.TRANSIENT else "failed"
            outcome = Outcome(status, failure=failure)
        outcome.latency_ms = round((time.monotonic() - started) * 1000)
        return outcome

    async def _run(self, request: GeminiRequest, redelivered: bool, inline: Inline) -> Outcome:
        ids = {"request_id": request.request_id, "attempt": request.attempt}
        settings = self._settings
        model = request.model or settings.gemini_model
        fallbacks = list(settings.gemini_fallback_models.get(model, []))
        self.models_seen.add(model)
        # An earlier try of this request may have left deltas on screen.
        needs_reset = request.attempt > 0 or redelivered
        announced = False
        quick = 0
        avoid: str | None = None
        estimate = _estimate_tokens(request)
        user = str(request.user_id) if request.user_id is not None else None

        async def queued(position: int, eta_s: float) -> None:
            await self._events.queued(
                request.chat_id, request.message_id, request.attempt, position, eta_s
            )

        # Each quota or key failure cools or disables a key, so this ends; the bound is a guard.
        for _ in range(2 * len(self._pool.keys) + 2 + QUICK_TRIES):
            try:
                start = None
                if not announced or needs_reset:
                    start = self._events.attempt_start(
                        request.chat_id, request.message_id, request.attempt, needs_reset
                    )
                lease = await self._pool.acquire(
                    model, request.request_id, user=user, estimate=estimate,
                    max_wait_s=settings.keys_max_wait_seconds,
                    unless=self._events.cancel_flag(request.request_id), avoid=avoid,
                    on_wait=None if announced else queued, on_grant=start,
                )
            except FlagSet:
                return Outcome("cancelled")
            except AllKeysDisabled:
                log.error("no_usable_key", extra=ids)
                return Outcome("failed", failure=GeminiFailure(
                    Blame.FATAL, "no_usable_key", "Every Gemini API key is disabled or removed."
                ))
            if lease is None:
                log.info("keys_busy", extra={**ids, "model": model})
                return Outcome("retry", failure=GeminiFailure(
                    Blame.TRANSIENT, "keys_busy",
                    "Every Gemini API key is at its limit right now; trying again later.",
                ))
            kid = lease.key_id
            announced, needs_reset = True, False  # the grant appended `start`
            state, parts, thoughts = StreamState(), [], []
            deltas = DeltaWriter(
                self._events, request.chat_id, request.message_id, request.request_id
            )
            # The thoughts go out as their own events: they are never part of the answer.
            thinking = DeltaWriter(
                self._events, request.chat_id, request.message_id, request.request_id,
                event="message.thought",
            )
            try:
                # aclosing: leaving early (cancel, Redis error) closes the upstream call now.
                stream = self._api.stream(kid, model, request, state, inline.parts)
                async with aclosing(stream) as chunks:
                    async for raw, thought in chunks:
                        if not (text := storable(raw)):
                            continue
                        if thought:
                            thoughts.append(text)
                            if await thinking.add(text):
                                break
                            continue
                        parts.append(text)
                        if await deltas.add(text):
                            break
            except GeminiFailure as failure:
                # This try's deltas land before the next try's reset.
                await thinking.flush()
                await deltas.flush()
                needs_reset = bool(parts or thoughts)
                log.warning("gemini_failed", extra={
                    **ids, "key_id": kid, "model": model, "blame": failure.blame.value,
                    "code": failure.code, "error": failure.message, "deltas": len(parts),
                })
                await self._account(lease, failure)
                if failure.blame in (Blame.QUOTA, Blame.KEY):
                    continue
                if failure.blame is Blame.TRANSIENT and quick < QUICK_TRIES:
                    quick += 1
                    if failure.overloaded and fallbacks:
                        # The model is overloaded, not the key: another model, at once.
                        model = fallbacks.pop(0)
                        self.models_seen.add(model)
                        log.info("model_fallback", extra={**ids, "model": model})
                    else:
                        avoid = kid
                        await asyncio.sleep(random.uniform(*_QUICK_PAUSE_S) * quick)
                    continue
                status = "retry" if failure.blame is Blame.TRANSIENT else "failed"
                return Outcome(status, "".join(parts), failure=failure, key_id=kid)
            if await thinking.flush() or await deltas.flush():
                log.info("cancelled", extra={**ids, "key_id": kid})
                # The text the user saw: chunks still waiting for a write stop with the reply.
                return Outcome(
                    "cancelled", "".join(deltas.written), usage=state.usage, key_id=kid,
                    thoughts="".join(thinking.written),
                )
            await self._pool.finish(lease, state.usage.total_tokens or estimate)
            if not parts:
                return Outcome("failed", failure=GeminiFailure(
                    Blame.FATAL, "empty_reply",
                    f"Gemini sent no text (finish reason: {state.finish_reason or 'none'}).",
                ), usage=state.usage, finish_reason=state.finish_reason, key_id=kid)
            return Outcome("completed", "".join(parts), usage=state.usage,
                           finish_reason=state.finish_reason, key_id=kid, model=model,
                           thoughts="".join(thoughts))
        return Outcome("retry", failure=GeminiFailure(
            Blame.TRANSIENT, "keys_busy", "No Gemini API key accepted the call; trying again later."
        ))

    async def title(self, request: GeminiRequest) -> Outcome:
        """A chat's title (a `kind: "title"` request): the same key pool, no events, no retry
        queues (a chat without a generated title keeps the one it has)."""
        model = request.model or self._settings.gemini_model
        self.models_seen.add(model)
        estimate = _estimate_tokens(request)
        user = str(request.user_id) if request.user_id is not None else None
        failure = GeminiFailure(Blame.TRANSIENT, "keys_busy", "No key was free for a title.")
        for _ in range(len(self._pool.keys) + 1):
            try:
                lease = await self._pool.acquire(
                    model, request.request_id, user=user, estimate=estimate,
                    max_wait_s=self._settings.keys_max_wait_seconds,
                )
            except (FlagSet, AllKeysDisabled):
                break
            if lease is None:
                break
            state, parts = StreamState(), []
            try:
                async with aclosing(
                    self._api.stream(lease.key_id, model, request, state)
                ) as chunks:
                    async for raw, thought in chunks:
                        if not thought:
                            parts.append(storable(raw))
            except GeminiFailure as error:
                await self._account(lease, error)
                failure = error
                if error.blame in (Blame.QUOTA, Blame.KEY):
                    continue
                break
            await self._pool.finish(lease, state.usage.total_tokens or estimate)
            return Outcome("completed", "".join(parts).strip(), usage=state.usage,
                           finish_reason=state.finish_reason, key_id=lease.key_id, model=model)
        return Outcome("failed", failure=failure)

    async def _account(self, lease: Lease, failure: GeminiFailure) -> None:
        """What a failed call says about its key (and model) goes into the pool."""
        pool, kid, model = self._pool, lease.key_id, lease.model
        facts = {"status": failure.status, "message": failure.message}
        if failure.blame is Blame.QUOTA:
            delay = failure.retry_after_s or self._settings.keys_cooldown_seconds
            if failure.quota is None:
                # A 429 naming no quota: if every key had one just now, Google is throttling
                # the IP or project, and the whole pool backs off rather than each key in turn.
                until = await pool.throttled(kid, delay)
                if until:
                    log.warning("pool_throttled", extra={"until": until})
                await pool.cool_down(kid, model, delay, "429", **facts)
            elif failure.quota == "rpd":
                now = time.time()
                await pool.cool_down(kid, failure.quota_model or model,
                                     pacific_day(now)[1] - now, "rpd", **facts)
            else:
                await pool.cool_down(kid, failure.quota_model or model, delay, failure.quota,
                                     **facts)
        elif failure.blame is Blame.KEY:
            await pool.disable(kid, model, failure.key_reason or "permission_denied", **facts)
        elif failure.blame is Blame.TRANSIENT or failure.status is not None:
            await pool.note_error(kid, model, code=failure.code, counts=failure.blame is
                                  Blame.TRANSIENT, **facts)


def _estimate_tokens(request: GeminiRequest) -> int:
    """The prompt's size before the call (about 4 characters a token), for the TPM window."""
    chars = sum(len(turn.text) for turn in request.contents)
    # Gemini counts an image as 258 tokens (a PDF 258 a page): a floor for the estimate.
    files = sum(len(turn.attachments) for turn in request.contents) * 258
    return (chars + len(request.system_instruction or "")) // 4 + 1 + files
