"""One request, one attempt: pick keys, stream the reply into the chat's events, report the end."""

import time
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Literal

from .api.failures import Blame, GeminiFailure
from .api.gemini import GeminiApi, StreamState
from .core.config import Settings
from .core.logging import log
from .delta_writer import DeltaWriter
from .events import ChatEvents
from .queue.messages import GeminiRequest, Usage
from .rate_limiter.key_pool import AllKeysDisabled, FlagSet, KeyPool
from .storable import storable


@dataclass
class Outcome:
    status: Literal["completed", "failed", "retry", "cancelled"]
    content: str = ""
    failure: GeminiFailure | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    key_id: str | None = None
    latency_ms: int | None = None


class Processor:
    def __init__(
        self, settings: Settings, pool: KeyPool, api: GeminiApi, events: ChatEvents
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._api = api
        self._events = events

    async def run(self, request: GeminiRequest, redelivered: bool) -> Outcome:
        started = time.monotonic()
        outcome = await self._run(request, redelivered)
        outcome.latency_ms = round((time.monotonic() - started) * 1000)
        return outcome

    async def _run(self, request: GeminiRequest, redelivered: bool) -> Outcome:
        ids = {"request_id": request.request_id, "attempt": request.attempt}
        # An earlier try of this request may have left deltas on screen.
        needs_reset = request.attempt > 0 or redelivered
        announced = False
        # Each quota or key failure cools or disables a key, so this ends; the bound is a guard.
        for _ in range(2 * len(self._pool.keys) + 2):
            # A reply cancelled before its first call is settled without a key or an event.
            unless = None if announced else self._events.cancel_flag(request.request_id)
            try:
                lease = await self._pool.acquire(self._settings.keys_max_wait_seconds, unless)
            except FlagSet:
                return Outcome("cancelled")
            except AllKeysDisabled:
                log.error("no_usable_key", extra=ids)
                return Outcome("failed", failure=GeminiFailure(
                    Blame.FATAL, "no_usable_key", "Every configured Gemini API key is disabled."
                ))
            if lease is None:
                log.info("keys_busy", extra=ids)
                return Outcome("retry", failure=GeminiFailure(
                    Blame.TRANSIENT, "keys_busy",
                    "Every Gemini API key is at its limit right now; trying again later.",
                ))
            kid = lease.key_id
            if not announced or needs_reset:
                await self._events.streaming(request.chat_id, request.message_id, request.attempt)
                announced = True
            if needs_reset:
                await self._events.reset(request.chat_id, request.message_id)
                needs_reset = False
            state, parts = StreamState(), []
            deltas = DeltaWriter(
                self._events, request.chat_id, request.message_id, request.request_id
            )
            try:
                # aclosing: leaving early (cancel, Redis error) closes the upstream call now.
                async with aclosing(self._api.stream(kid, request, state)) as chunks:
                    async for raw in chunks:
                        if not (text := storable(raw)):
                            continue
                        parts.append(text)
                        if await deltas.add(text):
                            break
            except GeminiFailure as failure:
                await deltas.flush()  # this try's deltas land before the next try's reset
                needs_reset = bool(parts)
                log.warning("gemini_failed", extra={
                    **ids, "key_id": kid, "blame": failure.blame.value, "code": failure.code,
                    "error": failure.message, "deltas": len(parts),
                })
                if failure.blame is Blame.QUOTA:
                    delay = failure.retry_after_s
                    if delay is None:
                        delay = self._settings.keys_cooldown_seconds
                    await self._pool.cool_down(kid, delay, f"429: {failure.message[:200]}")
                    continue
                if failure.blame is Blame.KEY:
                    await self._pool.disable(kid, failure.message[:200])
                    continue
                status = "retry" if failure.blame is Blame.TRANSIENT else "failed"
                return Outcome(status, "".join(parts), failure=failure, key_id=kid)
            if await deltas.flush():
                log.info("cancelled", extra={**ids, "key_id": kid})
                # The text the user saw: chunks still waiting for a write stop with the reply.
                return Outcome(
                    "cancelled", "".join(deltas.written), usage=state.usage, key_id=kid
                )
            if not parts:
                return Outcome("failed", failure=GeminiFailure(
                    Blame.FATAL, "empty_reply",
                    f"Gemini sent no text (finish reason: {state.finish_reason or 'none'}).",
                ), usage=state.usage, finish_reason=state.finish_reason, key_id=kid)
            return Outcome("completed", "".join(parts), usage=state.usage,
                           finish_reason=state.finish_reason, key_id=kid)
        return Outcome("retry", failure=GeminiFailure(
            Blame.TRANSIENT, "keys_busy", "No Gemini API key accepted the call; trying again later."
        ))
