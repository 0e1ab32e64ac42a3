"""The stand-in's HTTP app: Gemini's generateContent paths plus a small admin API."""

import asyncio
import base64
import binascii
import json
import random
import re
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from . import wire
from .dials import Dials, Fault, key_id
from .replies import (
    TITLE_INSTRUCTION_START,
    count_tokens,
    files_note,
    reply_text,
    split_chunks,
    thought_text,
    title_text,
)

_DIRECTIVE = re.compile(r"\[\[standin:([a-z0-9_]+)\]\]")
_METHODS = {"generateContent": False, "streamGenerateContent": True}
_PACIFIC = ZoneInfo("America/Los_Angeles")  # Google's quota days end at midnight Pacific


class Stats:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.served_429: Counter[str] = Counter()
        self.calls_by_model: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.served_429_by_model: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.probes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.completed = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def as_dict(self) -> dict:
        return {
            "calls": dict(self.calls),
            "total_calls": sum(self.calls.values()),
            "served_429": dict(self.served_429),
            "total_429": sum(self.served_429.values()),
            "calls_by_model": {m: dict(c) for m, c in self.calls_by_model.items()},
            "served_429_by_model": {m: dict(c) for m, c in self.served_429_by_model.items()},
            "probes": dict(self.probes),
            "errors": dict(self.errors),
            "completed": self.completed,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }


class StandIn:
    def __init__(self, dials: Dials) -> None:
        self.env_dials = dials
        self.reset()

    def reset(self) -> None:
        self.dials = self.env_dials
        self.faults: list[Fault] = []
        self.windows: dict[tuple[str, str], deque[float]] = {}
        self.days: Counter[tuple[str, str, str]] = Counter()
        self.stats = Stats()
        self.recent: deque[dict] = deque(maxlen=200)
        self.random = random.Random(0)

    def take_fault(self, key: str, model: str, prompt: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(key, model):
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return fault
        directive = _DIRECTIVE.search(prompt)
        if directive:
            try:
                return Fault(kind=directive.group(1))
            except ValueError:
                return None
        if self.dials.fault_rate and self.random.random() < self.dials.fault_rate:
            return Fault(kind="503")
        return None

    def over_quota(self, kid: str, model: str) -> tuple[float | None, str, int] | None:
        """(seconds until the key may call the model again or None for a day quota, "Minute" or
        "Day", the limit) when the call is over a quota, else None (and the call is counted)."""
        limits = self.dials.model_limits().get(model, {"rpm": self.dials.rpm})
        rpm, rpd = limits.get("rpm", 0), limits.get("rpd")
        day = (kid, model, datetime.now(_PACIFIC).date().isoformat())
        if rpd is not None and self.days[day] >= rpd:
            return None, "Day", rpd
        now = time.monotonic()
        window = self.windows.setdefault((kid, model), deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if rpm and len(window) >= rpm:
            return window[0] + 60 - now, "Minute", rpm
        window.append(now)
        self.days[day] += 1
        return None


def _texts(content: dict) -> str:
    return "".join(p.get("text", "") for p in content.get("parts") or [] if isinstance(p, dict))


def _inline_parts(content: dict) -> list[tuple[str, bytes]]:
    """A turn's inline files as Google checks them: a mime type, and data that is base64."""
    found = []
    for part in content.get("parts") or []:
        if not isinstance(part, dict) or "inlineData" not in part:
            continue
        inline = part["inlineData"]
        if not isinstance(inline, dict) or not inline.get("mimeType"):
            raise ValueError("mime_type is required")
        try:
            data = base64.b64decode(inline.get("data") or "", validate=True)
        except (binascii.Error, TypeError):
            raise ValueError("data is not valid base64") from None
        if not data:
            raise ValueError("data is empty")
        found.append((inline["mimeType"], data))
    return found


def _without_data(content: dict) -> dict:
    """What `recent` keeps of a turn: inline files by size and digest, not their bytes."""
    if not isinstance(content, dict):
        return content
    parts = []
    for part in content.get("parts") or []:
        if isinstance(part, dict) and isinstance(part.get("inlineData"), dict):
            data = part["inlineData"].get("data") or ""
            part = {"inlineData": {"mimeType": part["inlineData"].get("mimeType"),
                                   "base64_chars": len(data)}}
        parts.append(part)
    return {**content, "parts": parts}


def _error(body: dict) -> JSONResponse:
    return JSONResponse(body, status_code=body["error"]["code"])


def build_app(dials: Dials) -> Starlette:
    standin = StandIn(dials)

    async def generate(request: Request) -> Response:
        stats = standin.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        handed_over = False
        try:
            response = await _answer(request)
            handed_over = isinstance(response, StreamingResponse)
            if response.status_code >= 400:
                stats.errors[str(response.status_code)] += 1
            return response
        finally:
            if not handed_over:
                stats.in_flight -= 1

    async def _answer(request: Request) -> Response:
        model, _, method = request.path_params["target"].partition(":")
        if method not in _METHODS:
            return _error(wire.error_body(404, "NOT_FOUND", f"Method {method!r} not found."))
        streaming = _METHODS[method]
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            return _error(wire.permission_denied())
        kid = key_id(key)
        standin.stats.calls[kid] += 1
        standin.stats.calls_by_model[model][kid] += 1
        refused = _refused(key)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.body())
            contents = body["contents"]
            if not isinstance(contents, list) or not contents:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return _error(wire.bad_request(
                "Invalid JSON payload received. * GenerateContentRequest.contents: "
                "contents is not specified"
            ))
        if not standin.dials.knows_model(model):
            return _error(wire.model_not_found(model, method))
        if standin.dials.throttled:
            return _429(kid, model, wire.throttled())
        over = standin.over_quota(kid, model)
        if over is not None:
            wait, per, limit = over
            return _429(kid, model, wire.quota_exceeded(model, limit, wait, per))

        try:
            received = [_inline_parts(c) for c in contents if isinstance(c, dict)]
        except ValueError as bad:
            return _error(wire.bad_request(f"Invalid value at inline_data: {bad}"))
        users = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
        last_user = _texts(users[-1]) if users else ""
        system = _texts(body.get("systemInstruction") or {}) or None
        standin.recent.append({
            "key_id": kid, "model": model, "stream": streaming,
            "contents": [_without_data(c) for c in contents],
            "systemInstruction": body.get("systemInstruction"),
            "generationConfig": body.get("generationConfig"),
        })
        prompt_tokens = count_tokens("".join(_texts(c) for c in contents) + (system or ""))
        response_id = uuid.uuid4().hex[:22]
        fault = standin.take_fault(key, model, last_user)
        if fault is not None:
            if fault.kind == "429":
                return _429(kid, model, wire.quota_exceeded(
                    model, standin.dials.rpm, fault.retry_delay_s
                ))
            immediate = {
                "500": wire.internal, "503": wire.unavailable,
                "403": lambda: wire.permission_denied(key),
                "invalid_key": wire.api_key_invalid,
                "403_api_not_enabled": wire.api_not_enabled, "403_billing": wire.billing_disabled,
                "400_region": wire.region_unsupported,
                "400": lambda: wire.bad_request("Request contains an invalid argument."),
            }
            if fault.kind in immediate:
                return _error(immediate[fault.kind]())
            if fault.kind == "empty":
                # What a thinking model that spent its whole output budget sends.
                frame = wire.response_chunk(
                    text=None, model=model, response_id=response_id,
                    prompt_tokens=prompt_tokens, completion_tokens=0, finish_reason="MAX_TOKENS",
                )
                if not streaming:
                    return JSONResponse(frame)
                return _stream_response([wire.sse(frame)], [0], standin)
            if fault.kind == "safety":
                blocked = wire.blocked_prompt(
                    model=model, response_id=response_id, prompt_tokens=prompt_tokens
                )
                if not streaming:
                    return JSONResponse(blocked)
                return _stream_response([wire.sse(blocked)], [0], standin)

        config = body.get("generationConfig") or {}
        thinking = config.get("thinkingConfig") or {}
        if system and system.startswith(TITLE_INSTRUCTION_START):
            # The backend's title request: its one turn starts "User: <first question>".
            question = last_user.removeprefix("User: ").split("\n\nAssistant: ", 1)[0]
            text = title_text(question)
        else:
            text = reply_text(last_user, turns=len(contents), system_instruction=system)
            for stop in config.get("stopSequences", config.get("stop_sequences")) or ():
                if stop and stop in text:
                    text = text[: text.index(stop)]  # Gemini leaves the stop sequence out
            if "[[standin:echo_config]]" in last_user:
                text += "\n\ngenerationConfig: " + json.dumps(config, sort_keys=True)
            text += files_note(received[-1] if received else [], sum(len(r) for r in received))
            text += standin.dials.reply_suffix
        pieces = split_chunks(text, standin.dials.chunks)
        frames, done = [], 0
        # Google reads proto JSON, which takes a field's snake_case name as well as its
        # camelCase one; the SDK sends thinkingConfig's fields snake_case.
        if thinking.get("includeThoughts", thinking.get("include_thoughts")):
            for piece in split_chunks(thought_text(last_user), 2):
                frames.append(wire.response_chunk(
                    text=piece, thought=True, model=model, response_id=response_id,
                    prompt_tokens=prompt_tokens, completion_tokens=0,
                ))
        thought_frames = len(frames)
        for i, piece in enumerate(pieces):
            done += len(piece)
            frames.append(wire.response_chunk(
                text=piece, model=model, response_id=response_id, prompt_tokens=prompt_tokens,
                completion_tokens=count_tokens(text[:done]),
                finish_reason="STOP" if i == len(pieces) - 1 else None,
            ))
        first_ms = standin.dials.first_chunk_ms
        if fault is not None and fault.kind == "hang":
            first_ms = fault.ms
        if fault is not None and fault.kind == "midstream":
            answer_frames = len(frames) - thought_frames
            cut = fault.after_chunks if fault.after_chunks is not None else answer_frames // 2
            cut += thought_frames
            frames = [*frames[:cut], wire.unavailable()]

        if not streaming:
            await asyncio.sleep(first_ms / 1000)
            if "error" in frames[-1]:
                return _error(frames[-1])
            standin.stats.completed += 1
            whole = frames[-1]
            whole["candidates"][0]["content"]["parts"][0]["text"] = text
            if thought_frames:
                thought = {"text": thought_text(last_user), "thought": True}
                whole["candidates"][0]["content"]["parts"].insert(0, thought)
            return JSONResponse(whole)
        delays = [first_ms] + [standin.dials.chunk_ms] * (len(frames) - 1)
        return _stream_response([wire.sse(f) for f in frames], delays, standin)

    def _refused(key: str) -> Response | None:
        state = standin.dials.key_state(key)
        if state == "invalid":
            return _error(wire.api_key_invalid())
        if state == "denied":
            return _error(wire.permission_denied(key))
        return None

    def _429(kid: str, model: str, body: dict) -> Response:
        standin.stats.served_429[kid] += 1
        standin.stats.served_429_by_model[model][kid] += 1
        return _error(body)

    async def models(request: Request) -> Response:
        """`GET /v1beta/models[/{model}]`: what a key probe calls (no generation quota)."""
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            return _error(wire.permission_denied())
        standin.stats.probes[key_id(key)] += 1
        refused = _refused(key)
        if refused is not None:
            return refused
        name = request.path_params.get("model")
        if name is None:
            return JSONResponse({"models": [wire.model_info(m) for m in standin.dials.models]})
        if not standin.dials.knows_model(name):
            return _error(wire.error_body(404, "NOT_FOUND", f"models/{name} is not found."))
        return JSONResponse(wire.model_info(name))

    async def config(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = await request.json()
                if not isinstance(changes, dict):
                    raise ValueError("body must be a JSON object")
                faults = [Fault(**f) for f in changes.pop("faults", [])]
                standin.dials = standin.dials.updated(changes)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"detail": str(exc)}, status_code=400)
            standin.faults.extend(faults)
        # json.dumps escapes, so a `reply_suffix` with a lone surrogate can be echoed back.
        answer = {**standin.dials.__dict__, "faults": [f.__dict__ for f in standin.faults]}
        return Response(json.dumps(answer), media_type="application/json")

    async def stats(_: Request) -> Response:
        return JSONResponse(standin.stats.as_dict())

    async def recent(_: Request) -> Response:
        return JSONResponse(list(standin.recent))

    async def reset(_: Request) -> Response:
        standin.reset()
        return JSONResponse({"status": "reset"})

    async def health(_: Request) -> Response:
        return PlainTextResponse("offline Gemini stand-in\n")

    return Starlette(routes=[
        Route("/{version}/models", models, methods=["GET"]),
        Route("/{version}/models/{model}", models, methods=["GET"]),
        Route("/{version}/models/{target:path}", generate, methods=["POST"]),
        Route("/_standin/config", config, methods=["GET", "POST"]),
        Route("/_standin/stats", stats),
        Route("/_standin/requests", recent),
        Route("/_standin/reset", reset, methods=["POST"]),
        Route("/", health),
    ])


def _stream_response(frames: list[bytes], delays_ms: list[int], standin: StandIn) -> Response:
    async def body() -> AsyncIterator[bytes]:
        try:
            for frame, delay in zip(frames, delays_ms, strict=True):
                if delay:
                    await asyncio.sleep(delay / 1000)
                yield frame
            if b'"error"' in frames[-1][:20]:
                standin.stats.errors["503-midstream"] += 1
            else:
                standin.stats.completed += 1
        finally:
            standin.stats.in_flight -= 1

    return StreamingResponse(body(), media_type="text/event-stream")
