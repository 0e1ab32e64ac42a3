"""Calls Gemini through the google-genai SDK: pooled aiohttp sessions shared by every key, one
per proxy (GEMINI_PROXIES ties each key to one proxy by rendezvous hashing, so a key keeps its
egress IP while proxies are added or removed; only the keys of a removed proxy move).

aiohttp rather than httpx (both are SDK transports): at 32 calls in flight a call cost 27 % less
CPU, httpcore polling every idle pooled connection at each request's start and end.
"""

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import dataclass, field

import aiohttp
import httpx
from aiohttp_socks import ProxyConnector
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
_open_responses: ContextVar[list[aiohttp.ClientResponse] | None] = ContextVar(
    "responses", default=None
)


async def _remember_response(
    session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestEndParams
) -> None:
    opened = _open_responses.get()
    if opened is not None:
        opened.append(params.response)


@dataclass
class StreamState:
    """What the stream told so far: filled in while the caller iterates."""

    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)


def proxy_for(kid: str, proxies: list[str]) -> str:
    """The key's proxy: the highest hash of (proxy, key id), stable as the list changes."""
    return max(proxies, key=lambda p: hashlib.sha256(f"{p}|{kid}".encode()).digest())


def build_session(proxy: str | None, max_connections: int) -> aiohttp.ClientSession:
    # trust_env=False: the proxy settings are meant for Gemini only and are applied here.
    pool = {"limit": max_connections, "keepalive_timeout": 5.0}  # well under the server's idle
    if proxy and proxy.startswith("socks"):
        # The proxy resolves host names (rdns), which socks5h:// asks for and httpx did for both.
        url = proxy.replace("socks5h://", "socks5://", 1)
        connector: aiohttp.BaseConnector = ProxyConnector.from_url(url, rdns=True, **pool)
        proxy = None
    else:
        connector = aiohttp.TCPConnector(**pool)
    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(_remember_response)
    return aiohttp.ClientSession(
        connector=connector, proxy=proxy, trust_env=False, trace_configs=[trace]
    )


class GeminiApi:
    def __init__(self, settings: Settings, keys: dict[str, str]) -> None:
        self._settings = settings
        # GEMINI_PROXIES, else HTTP_PROXY (or none): one session each.
        proxies: list[str | None] = list(settings.gemini_proxies) or [settings.http_proxy]
        self._sessions = {
            p: build_session(p, max_connections=settings.worker_prefetch * 2) for p in proxies
        }
        self._sync_http = httpx.Client(trust_env=False)  # required by the SDK, never used
        self._options = {p: self._http_options(s) for p, s in self._sessions.items()}
        self._keys: dict[str, str] = {}
        self._clients: dict[str, genai.Client] = {}
        self.set_keys(keys)

    def _http_options(self, session: aiohttp.ClientSession) -> types.HttpOptions:
        settings = self._settings
        return types.HttpOptions(
            base_url=settings.gemini_base_url,
            api_version="v1beta",  # Gemini API's fullest surface (systemInstruction, ...)
            # None: the SDK would make it aiohttp's total for the whole stream; stream() bounds
            # each wait instead, so a long reply that keeps coming is never cut.
            timeout=None,
            # One attempt, said explicitly: without retry options the SDK retries a failed
            # aiohttp connection itself after 1-10 s, bypassing the key pool and retry queues.
            retry_options=types.HttpRetryOptions(attempts=1),
            aiohttp_client=session,
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
        for session in self._sessions.values():
            await session.close()
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

    def _config(self, request: GeminiRequest) -> types.GenerateContentConfig:
        config = types.GenerateContentConfig.model_validate(request.generation_config)
        # Every upstream call must go through the key pool: no SDK-driven follow-up calls.
        config.automatic_continuation = False
        if request.system_instruction:
            config.system_instruction = request.system_instruction
        return config

    async def stream(
        self, kid: str, model: str, request: GeminiRequest, state: StreamState
    ) -> AsyncIterator[str]:
        """Yields the reply's text deltas; raises GeminiFailure when the call goes wrong."""
        opened: list[aiohttp.ClientResponse] = []
        _open_responses.set(opened)
        try:
            config = self._config(request)
            # Plain dicts, which the SDK accepts: building a Content and a Part per turn cost
            # more CPU than the rest of a call once a chat had ~150 turns.
            contents = [
                {"role": turn.role, "parts": [{"text": turn.text}]} for turn in request.contents
            ]
            chunks = await self._clients[kid].aio.models.generate_content_stream(
                model=model,
                contents=contents,  # type: ignore[arg-type]
                config=config,
            )
            async with aclosing(chunks):
                while True:
                    # The connect, the answer's head and each chunk must come within the bound;
                    # not the time the caller takes between chunks.
                    async with asyncio.timeout(self._settings.gemini_timeout_seconds):
                        try:
                            chunk = await anext(chunks)
                        except StopAsyncIteration:
                            break
                    text = _read_chunk(chunk, state)
                    if text:
                        yield text
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
                response.close()  # a no-op once the answer was read to its end


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
