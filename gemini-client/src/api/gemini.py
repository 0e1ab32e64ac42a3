"""Calls Gemini through the google-genai SDK: one pooled httpx client shared by every key."""

from collections.abc import AsyncIterator
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx
from google import genai
from google.genai import types

from ..core.config import Settings
from ..core.logging import log
from ..queue.messages import GeminiRequest, Usage
from . import sdk_lookup
from .failures import Blame, GeminiFailure, classify, redact

sdk_lookup.install()

_BLOCKING_FINISH = {
    "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY",
}


# The HTTP responses opened by the call running in this task, so that stopping early (cancel,
# shutdown) closes the upstream stream at once rather than whenever the SDK's generators are
# garbage-collected.
_open_responses: ContextVar[list[httpx.Response] | None] = ContextVar("responses", default=None)


async def _remember_response(response: httpx.Response) -> None:
    opened = _open_responses.get()
    if opened is not None:
        opened.append(response)


@dataclass
class StreamState:
    """What the stream told so far: filled in while the caller iterates."""

    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)


def build_http_client(settings: Settings, max_connections: int) -> httpx.AsyncClient:
    # trust_env=False: HTTP_PROXY is meant for Gemini only and is applied here explicitly.
    return httpx.AsyncClient(
        proxy=settings.http_proxy,
        trust_env=False,
        timeout=httpx.Timeout(settings.gemini_timeout_seconds),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,  # well under the server's idle timeout
        ),
        event_hooks={"response": [_remember_response]},
    )


class GeminiApi:
    def __init__(self, settings: Settings, keys: dict[str, str]) -> None:
        self._settings = settings
        self._http = build_http_client(settings, max_connections=settings.worker_prefetch * 2)
        self._sync_http = httpx.Client(trust_env=False)  # required by the SDK, never used
        options = types.HttpOptions(
            base_url=settings.gemini_base_url,
            api_version="v1beta",  # Gemini API's fullest surface (systemInstruction, ...)
            timeout=int(settings.gemini_timeout_seconds * 1000),
            retry_options=None,  # no SDK retries: the key pool and retry queues decide
            httpx_async_client=self._http,
            httpx_client=self._sync_http,
        )
        self._keys = keys
        self._clients = {
            kid: genai.Client(vertexai=False, api_key=key, http_options=options)
            for kid, key in keys.items()
        }

    async def aclose(self) -> None:
        await self._http.aclose()
        self._sync_http.close()

    def _config(self, request: GeminiRequest) -> types.GenerateContentConfig:
        config = types.GenerateContentConfig.model_validate(request.generation_config)
        # Every upstream call must go through the key pool: no SDK-driven follow-up calls.
        config.automatic_continuation = False
        if request.system_instruction:
            config.system_instruction = request.system_instruction
        return config

    async def stream(
        self, kid: str, request: GeminiRequest, state: StreamState
    ) -> AsyncIterator[str]:
        """Yields the reply's text deltas; raises GeminiFailure when the call goes wrong."""
        opened: list[httpx.Response] = []
        _open_responses.set(opened)
        try:
            config = self._config(request)
            # Plain dicts, which the SDK accepts: building a Content and a Part per turn cost
            # more CPU than the rest of a call once a chat had ~150 turns.
            contents = [
                {"role": turn.role, "parts": [{"text": turn.text}]} for turn in request.contents
            ]
            chunks = await self._clients[kid].aio.models.generate_content_stream(
                model=request.model or self._settings.gemini_model,
                contents=contents,  # type: ignore[arg-type]
                config=config,
            )
            async with aclosing(chunks):
                async for chunk in chunks:
                    text = _read_chunk(chunk, state)
                    if text:
                        yield text
        except GeminiFailure:
            raise
        except Exception as exc:
            failure = classify(exc)
            if failure.code == "internal_error":
                detail = redact(repr(exc)[:300], self._keys[kid])
                log.error("unexpected_gemini_error", extra={"key_id": kid, "error": detail})
            failure.message = redact(failure.message, self._keys[kid])
            raise failure from exc
        finally:
            _open_responses.set(None)
            for response in opened:
                await response.aclose()


def _read_chunk(chunk: types.GenerateContentResponse, state: StreamState) -> str:
    # Each field is read once: the SDK's response models are the worker's hottest code.
    meta = chunk.usage_metadata
    if meta is not None:
        prompt = meta.prompt_token_count or 0
        completion = meta.candidates_token_count or 0
        state.usage = Usage(
            prompt_tokens=prompt, completion_tokens=completion,
            total_tokens=meta.total_token_count or prompt + completion,
        )
    feedback = chunk.prompt_feedback
    if feedback is not None:
        block = feedback.block_reason
        if block:
            reason = getattr(block, "value", block)
            raise GeminiFailure(
                Blame.FATAL, "blocked", f"Gemini refused this prompt (blocked: {reason})."
            )
    candidates = chunk.candidates
    if not candidates:
        return ""
    candidate = candidates[0]
    text = ""
    content = candidate.content
    if content is not None:
        parts = content.parts
        if parts:
            texts = []
            for part in parts:
                part_text = part.text
                if part_text and not part.thought:
                    texts.append(part_text)
            text = "".join(texts)
    finish = candidate.finish_reason
    if finish:
        reason = getattr(finish, "value", str(finish))
        state.finish_reason = reason
        if reason in _BLOCKING_FINISH:
            raise GeminiFailure(
                Blame.FATAL, "blocked", f"Gemini stopped this reply (finish reason: {reason})."
            )
    return text
