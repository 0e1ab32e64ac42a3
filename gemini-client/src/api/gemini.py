"""Calls Gemini through the google-genai SDK over httpx: one long-lived `AsyncClient` per proxy,
shared by every key (GEMINI_PROXIES ties each key to one proxy by rendezvous hashing, so a key
keeps its egress IP while proxies are added or removed; only the keys of a removed proxy move).
The proxy is set on these clients only, never taken from the environment.
"""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx
from google import genai
from google.genai import _common, types
from google.genai import models as sdk_models

from ..core.config import Settings
from ..core.logging import log
from ..queue.messages import GeminiRequest, Turn, Usage
from . import sdk_lookup
from .failures import Blame, GeminiFailure, classify, redact

sdk_lookup.install()

# The SDK needs a turn to convert a request; the body's real ones are put in afterwards.
_NO_TURN = [{"role": "user", "parts": [{"text": ""}]}]
_FRAMES_KEPT = 256
# A turn of files only, whose files no longer fit in the request.
_LEFT_OUT = "(files attached here were left out: the request would be too large)"

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


def proxy_for(kid: str, proxies: list[str]) -> str:
    """The key's proxy: the highest hash of (proxy, key id), stable as the list changes."""
    return max(proxies, key=lambda p: hashlib.sha256(f"{p}|{kid}".encode()).digest())


def build_client(proxy: str | None, max_connections: int) -> httpx.AsyncClient:
    # trust_env=False: the proxy settings are meant for Gemini only and are applied here.
    # timeout=None: stream() bounds each wait itself, so a long reply that keeps coming is
    # never cut. Idle connections close well before the server's idle timeout.
    return httpx.AsyncClient(
        proxy=proxy, trust_env=False, timeout=None,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
        ),
        event_hooks={"response": [_remember_response]},
    )


class GeminiApi:
    def __init__(self, settings: Settings, keys: dict[str, str]) -> None:
        self._settings = settings
        # GEMINI_PROXIES, else HTTP_PROXY (or none): one client each.
        proxies: list[str | None] = list(settings.gemini_proxies) or [settings.http_proxy]
        self._http = {
            p: build_client(p, max_connections=settings.worker_prefetch * 2) for p in proxies
        }
        self._sync_http = httpx.Client(trust_env=False)  # required by the SDK, never used
        self._options = {p: self._http_options(c) for p, c in self._http.items()}
        self._keys: dict[str, str] = {}
        self._clients: dict[str, genai.Client] = {}
        self._frames: dict[tuple, tuple[str, dict]] = {}
        self.set_keys(keys)

    def _http_options(self, client: httpx.AsyncClient) -> types.HttpOptions:
        settings = self._settings
        return types.HttpOptions(
            base_url=settings.gemini_base_url,
            api_version="v1beta",  # Gemini API's fullest surface (systemInstruction, ...)
            timeout=None,  # stream() bounds each wait instead
            # One attempt, said explicitly: every retry goes through the key pool (quick tries on
            # another key, then the retry queues), never the SDK's own.
            retry_options=types.HttpRetryOptions(attempts=1),
            httpx_async_client=client,
            httpx_client=self._sync_http,
        )

    def set_keys(self, keys: dict[str, str]) -> None:
        """The pool's keys changed (the registry): clients for new keys, none for removed ones."""
        proxies = self._settings.gemini_proxies
        for kid, key in keys.items():
            if kid not in self._clients or self._keys.get(kid) != key:
                proxy = proxy_for(kid, proxies) if proxies else self._settings.http_proxy
                self._clients[kid] = genai.Client(
                    vertexai=False, api_key=key, http_options=self._options[proxy]
                )
        for kid in set(self._clients) - set(keys):
            del self._clients[kid]
        self._keys = dict(keys)

    async def aclose(self) -> None:
        for client in self._http.values():
            await client.aclose()
        self._sync_http.close()

    async def probe(self, kid: str, model: str) -> GeminiFailure | None:
        """A call that costs no generation quota (models.get): None when Google accepts the key."""
        try:
            async with asyncio.timeout(self._settings.gemini_timeout_seconds):
                await self._clients[kid].aio.models.get(model=model)
        except Exception as exc:
            failure = classify(exc)
            failure.message = redact(failure.message, self._keys[kid])
            return failure
        return None

    def _frame(self, kid: str, model: str, request: GeminiRequest) -> tuple[str, dict]:
        """The request's path and body but for `contents`, as the SDK's own
        `generate_content_stream` builds them (google-genai 3.6's
        `AsyncModels._generate_content_stream`). Kept per model, config and system instruction,
        which few chats make different: the SDK validates and converts everything into its
        pydantic models and back, 0.6 ms for one turn and 3.5 ms for ten (docs/BENCHMARKS.md).
        No conversion depends on the key."""
        cache_key = (
            model, json.dumps(request.generation_config, sort_keys=True),
            request.system_instruction,
        )
        frame = self._frames.get(cache_key)
        if frame is not None:
            return frame
        config = types.GenerateContentConfig.model_validate(request.generation_config)
        # Every upstream call must go through the key pool: no SDK-driven follow-up calls.
        config.automatic_continuation = False
        if request.system_instruction:
            config.system_instruction = request.system_instruction
        api = self._clients[kid].aio.models._api_client
        params = types._GenerateContentParameters(model=model, contents=_NO_TURN, config=config)
        body = sdk_models._GenerateContentParameters_to_mldev(api, params, None, params)
        path = "{model}:streamGenerateContent?alt=sse".format_map(body.get("_url") or {})
        for name in ("config", "contents", "_url"):
            body.pop(name, None)
        body = _common.encode_unserializable_types(_common.convert_to_dict(body))
        if len(self._frames) >= _FRAMES_KEPT:
            self._frames.pop(next(iter(self._frames)))
        self._frames[cache_key] = frame = (path, body)
        return frame

    async def _open(
        self, kid: str, model: str, request: GeminiRequest, inline: dict[str, dict]
    ) -> AsyncIterator:
        """The SDK's streaming request, its answers left as JSON: the SDK would validate every
        streamed chunk into its pydantic models, the worker's largest CPU cost (~30 %), for the
        four fields the worker reads (`_read_chunk`). Errors, error frames within the stream
        included, are still raised by the SDK as `errors.APIError`."""
        path, frame = self._frame(kid, model, request)
        # Turns in the REST shape (camelCase, bytes as base64 text): what the SDK would send for
        # them, built here in one pass.
        contents = [
            {"role": turn.role, "parts": _parts(turn, inline)} for turn in request.contents
        ]
        api = self._clients[kid].aio.models._api_client
        # A new top-level dict each call: the SDK deletes its `_`-keys from it in place.
        return await api.async_request_streamed("post", path, {**frame, "contents": contents}, None)

    async def stream(
        self, kid: str, model: str, request: GeminiRequest, state: StreamState,
        inline: dict[str, dict] | None = None,
    ) -> AsyncIterator[tuple[str, bool]]:
        """Yields the reply's text deltas, each with whether it is a thought (`part.thought`:
        only sent when the request's thinking_config asks for thoughts); raises GeminiFailure
        when the call goes wrong. `inline`: the attachments' inlineData parts, by upload id."""
        opened: list[httpx.Response] = []
        _open_responses.set(opened)
        try:
            async with asyncio.timeout(self._settings.gemini_timeout_seconds):
                chunks = await self._open(kid, model, request, inline or {})
            async with aclosing(chunks):
                while True:
                    # The connect, the answer's head and each chunk must come within the bound;
                    # not the time the caller takes between chunks.
                    async with asyncio.timeout(self._settings.gemini_timeout_seconds):
                        try:
                            chunk = await anext(chunks)
                        except StopAsyncIteration:
                            break
                    text, thought = _read_chunk(
                        json.loads(chunk.body) if chunk.body else {}, state
                    )
                    if thought:
                        yield thought, True
                    if text:
                        yield text, False
        except GeminiFailure:
            raise
        except Exception as exc:
            failure = classify(exc)
            if failure.code == "internal_error":
                detail = redact(repr(exc), self._keys[kid])
                log.error("unexpected_gemini_error", extra={"key_id": kid, "error": detail})
            failure.message = redact(failure.message, self._keys[kid])
            raise failure from exc
        finally:
            _open_responses.set(None)
            for response in opened:
                await response.aclose()  # a no-op once the answer was read to its end


def _parts(turn: Turn, inline: dict[str, dict]) -> list[dict]:
    """A turn's files (those that fit: `inline`, by upload id) before its text, as Google
    suggests; a turn of files only has no text part (an empty one is refused)."""
    parts = [inline[str(ref.id)] for ref in turn.attachments if str(ref.id) in inline]
    if turn.text:
        parts.append({"text": turn.text})
    elif not parts:
        parts.append({"text": _LEFT_OUT if turn.attachments else ""})
    return parts


def _read_chunk(chunk: dict, state: StreamState) -> tuple[str, str]:
    """A streamed `GenerateContentResponse` as Google sends it (camelCase JSON): its answer
    text and its thought text."""
    meta = chunk.get("usageMetadata")
    if meta:
        prompt = meta.get("promptTokenCount") or 0
        completion = meta.get("candidatesTokenCount") or 0
        state.usage = Usage(
            prompt_tokens=prompt, completion_tokens=completion,
            total_tokens=meta.get("totalTokenCount") or prompt + completion,
        )
    feedback = chunk.get("promptFeedback")
    if feedback and feedback.get("blockReason"):
        raise GeminiFailure(Blame.FATAL, "blocked",
                            f"Gemini refused this prompt (blocked: {feedback['blockReason']}).")
    candidates = chunk.get("candidates")
    if not candidates:
        return "", ""
    candidate = candidates[0]
    parts = (candidate.get("content") or {}).get("parts") or ()
    text = thought = ""
    for part in parts:
        if part.get("text"):
            if part.get("thought"):
                thought += part["text"]
            else:
                text += part["text"]
    reason = candidate.get("finishReason")
    if reason:
        state.finish_reason = reason
        if reason in _BLOCKING_FINISH:
            raise GeminiFailure(
                Blame.FATAL, "blocked", f"Gemini stopped this reply (finish reason: {reason})."
            )
    return text, thought
