"""The stand-in's dials: read from `STANDIN_*` variables, changed at run time by the admin API."""

import dataclasses
import hashlib
import os
import re
from dataclasses import dataclass, field

DEFAULT_MODELS = (
    "gemini-2.5-flash,gemini-2.5-pro,gemini-2.5-flash-lite,gemini-2.0-flash,"
    "gemini-2.0-flash-lite,gemini-3-pro-preview,gemini-3-flash-preview,gemini-flash-latest"
)
FAULT_KINDS = (
    "429", "500", "503", "400", "403", "invalid_key", "midstream", "safety", "hang", "empty",
    "403_api_not_enabled", "403_billing", "400_region",
)
_LIMIT = re.compile(r"^(\d+)\s*(/min|/day)$")


def key_id(key: str) -> str:
    """The worker's key id: first 8 hex of sha256(key)."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@dataclass
class Dials:
    valid_keys: list[str] = field(default_factory=list)  # empty: every key is valid
    invalid_keys: list[str] = field(default_factory=list)
    denied_keys: list[str] = field(default_factory=list)
    rpm: int = 0  # per key and model, sliding 60 s window; 0 = unlimited
    # Per model, as KEYS_LIMITS writes them, 0 allowed: "gemini-2.5-pro:5/min,20/day;..."; a
    # model named here uses these instead of rpm (0/day: no quota at all for that model).
    limits: str = ""
    throttled: bool = False  # every call: 429 naming no quota (Google throttling the IP)
    first_chunk_ms: int = 200
    chunks: int = 8
    chunk_ms: int = 40
    fault_rate: float = 0.0  # share of calls answered with a 503
    models: list[str] = field(default_factory=lambda: _csv(DEFAULT_MODELS))
    # Appended to every reply: text Google may send that a store refuses (U+0000, a lone
    # surrogate), so the worker's and the backend's handling of it can be tested.
    reply_suffix: str = ""

    @classmethod
    def from_env(cls) -> "Dials":
        env = os.environ
        try:
            return cls(
                valid_keys=_csv(env.get("STANDIN_VALID_KEYS", "")),
                invalid_keys=_csv(env.get("STANDIN_INVALID_KEYS", "")),
                denied_keys=_csv(env.get("STANDIN_DENIED_KEYS", "")),
                rpm=int(env.get("STANDIN_RPM", "0")),
                limits=env.get("STANDIN_LIMITS", ""),
                throttled=env.get("STANDIN_THROTTLED", "") in ("1", "true"),
                first_chunk_ms=int(env.get("STANDIN_FIRST_CHUNK_MS", "200")),
                chunks=int(env.get("STANDIN_CHUNKS", "8")),
                chunk_ms=int(env.get("STANDIN_CHUNK_MS", "40")),
                fault_rate=float(env.get("STANDIN_FAULT_RATE", "0")),
                models=_csv(env.get("STANDIN_MODELS", DEFAULT_MODELS)),
                reply_suffix=env.get("STANDIN_REPLY_SUFFIX", ""),
            )._checked()
        except ValueError as exc:
            raise SystemExit(f"standin: bad STANDIN_* setting: {exc}") from None

    def updated(self, changes: dict) -> "Dials":
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown dials: {', '.join(sorted(unknown))}")
        values = dataclasses.asdict(self)
        for name, value in changes.items():
            current = values[name]
            if isinstance(current, list):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{name} must be a list of strings")
                values[name] = value
            elif isinstance(current, bool):
                values[name] = value in (True, 1, "1", "true")
            else:
                values[name] = type(current)(value)
        return Dials(**values)._checked()

    def _checked(self) -> "Dials":
        if self.rpm < 0 or self.first_chunk_ms < 0 or self.chunk_ms < 0 or self.chunks < 1:
            raise ValueError("rpm, first_chunk_ms and chunk_ms must be >= 0, chunks >= 1")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        self.model_limits()
        return self

    def model_limits(self) -> dict[str, dict[str, int]]:
        """`limits` as {model: {"rpm": n, "rpd": n}} (a missing unit: unlimited)."""
        found: dict[str, dict[str, int]] = {}
        for entry in (e.strip() for e in self.limits.split(";")):
            if not entry:
                continue
            model, _, rest = entry.partition(":")
            units = {}
            for part in (p.strip() for p in rest.split(",")):
                match = _LIMIT.match(part)
                if not match:
                    raise ValueError(f"limits: {part!r} is not N/min or N/day")
                units["rpm" if match.group(2) == "/min" else "rpd"] = int(match.group(1))
            found[model.strip()] = units
        return found

    def knows_model(self, model: str) -> bool:
        """A listed model, or a dated/preview variant of one (`gemini-2.5-flash-preview-05-20`)."""
        return any(model == m or model.startswith(m + "-") for m in self.models)

    def key_state(self, key: str) -> str:
        """'invalid', 'denied' or 'ok' for a key (listed by its text or its key id)."""
        kid = key_id(key)

        def listed(keys: list[str]) -> bool:
            return key in keys or kid in keys

        if listed(self.invalid_keys) or (self.valid_keys and not listed(self.valid_keys)):
            return "invalid"
        if listed(self.denied_keys):
            return "denied"
        return "ok"


@dataclass
class Fault:
    """A one-shot fault: the next `count` matching calls answer with it."""

    kind: str
    count: int = 1
    key: str | None = None  # key text or key id; None: any key
    retry_delay_s: float | None = 2.0  # for 429; None: no RetryInfo
    after_chunks: int | None = None  # for midstream: chunks sent before the error
    ms: int = 30_000  # for hang: how long the first chunk is held back
    model: str | None = None  # None: any model

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}")
        if self.count < 1:
            raise ValueError("fault count must be >= 1")

    def matches(self, key: str, model: str) -> bool:
        return (self.key is None or self.key in (key, key_id(key))) and (
            self.model is None or self.model == model
        )
