"""The API-key pool, shared through Redis by every replica (docs/CONTRACTS.md, "Key pool v2").

Quotas are Google's: per key *and model*, calls per minute (a sliding window), calls per Pacific
day and tokens per minute. A key is picked and its use recorded by one Lua script
(`scripts.ACQUIRE`), which also keeps the line of requests waiting for a slot, so replicas never
overshoot and requests leave in line order. Key text is never stored in Redis by the worker.

The pool records a use when it hands out the key, but Google counts the call when it arrives, a
few ms later (more under load). So a use stays in the pool's window for 60 s plus a margin
(KEYS_WINDOW_MARGIN_SECONDS): a slot the pool frees is then already free upstream too.
"""

import asyncio
import hashlib
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from ..core.config import Settings
from . import scripts

WINDOW_MS = 60_000
PACIFIC = ZoneInfo("America/Los_Angeles")
_POLL_MAX_S = 2.0  # a waiting request asks again at least this often (its place in line lives)
_REPORT_EVERY_S = 2.0  # queued events at most this often
_THROTTLE_WINDOW_MS = 10_000  # every key answering 429 within this: the IP is throttled
_PROBE_LOCK_S = 60
_SERIES_KEEP_S = 25 * 3600


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def key_label(key: str) -> str:
    return "…" + key[-4:] if len(key) >= 12 else "…"


def pacific_day(now: float) -> tuple[str, float]:
    """Google's quota day at `now` (`YYYY-MM-DD`, Pacific time) and the epoch second it ends."""
    local = datetime.fromtimestamp(now, PACIFIC)
    midnight = datetime(local.year, local.month, local.day, tzinfo=PACIFIC) + timedelta(days=1)
    # Re-localised: across a DST change the next midnight is 23 or 25 hours away.
    midnight = datetime(midnight.year, midnight.month, midnight.day, tzinfo=PACIFIC)
    return local.date().isoformat(), midnight.timestamp()


class AllKeysDisabled(Exception):
    """Every key is disabled or removed: no call can succeed until the keys are changed."""


class FlagSet(Exception):
    """The `unless` key of an acquire exists: the caller no longer wants a key."""


@dataclass(frozen=True)
class OnGrant:
    """Stream entries appended by the script that grants a key, as (event type, JSON data)."""

    stream: str
    entries: list[tuple[str, str]]
    maxlen: int
    ttl_s: int


@dataclass(frozen=True)
class Lease:
    key_id: str
    model: str
    waited_s: float
    nonce: str
    estimate: int


OnWait = Callable[[int, float], Awaitable[None]]


def _grant_args(on_grant: OnGrant | None) -> list:
    if on_grant is None:
        return []
    parts = [part for entry in on_grant.entries for part in entry]
    return [on_grant.maxlen, on_grant.ttl_s, *parts]


class KeyPool:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._prefix = settings.redis_key_prefix
        self.keys: dict[str, str] = {}
        self._ids: list[str] = []
        self._env_labels = {key_id(k): key_label(k) for k in settings.gemini_api_keys}
        self._window_ms = WINDOW_MS + round(settings.keys_window_margin_seconds * 1000)
        self._day: tuple[str, float] = pacific_day(time.time())
        self._acquire = redis.register_script(scripts.ACQUIRE)
        self._leave = redis.register_script(scripts.LEAVE)
        self._record = redis.register_script(scripts.RECORD)
        self._finish = redis.register_script(scripts.FINISH)
        self._throttle = redis.register_script(scripts.THROTTLE)
        self.set_keys({key_id(k): k for k in settings.gemini_api_keys})

    # Redis names (docs/CONTRACTS.md).
    def key_hash(self, kid: str) -> str:
        return f"{self._prefix}keys:{kid}"

    def _model(self, kid: str, model: str) -> str:
        return f"{self._prefix}keys:{kid}:m:{model}"

    def _pool(self, name: str) -> str:
        return f"{self._prefix}pool:{name}"

    def set_keys(self, keys: dict[str, str]) -> None:
        """The keys to pick from from now on (env keys plus the registry's, less removed ones)."""
        self.keys = dict(keys)
        self._ids = list(keys)

    async def register(self) -> None:
        """Publishes the env keys, every key's defaults and the limits; a key's state survives
        restarts. The backend owns the index entries of the keys it added."""
        async with self._redis.pipeline(transaction=False) as pipe:
            if self._env_labels:
                pipe.hset(f"{self._prefix}keys:index", mapping=self._env_labels)
            for kid in self._ids:
                for name, default in (
                    ("disabled", 0), ("admin_disabled", 0), ("failures", 0),
                    ("requests_total", 0), ("last_error", ""),
                ):
                    pipe.hsetnx(self.key_hash(kid), name, default)
            pipe.hset(f"{self._prefix}keys:limits", mapping=self._limits_json())
            await pipe.execute()

    def _limits_json(self) -> dict[str, str]:
        s = self._settings
        found = {
            model: json.dumps({"rpm": lim.rpm, "rpd": lim.rpd, "tpm": lim.tpm})
            for model, lim in s.keys_limits.items()
        }
        found["_default"] = json.dumps({"rpm": s.keys_max_per_minute, "rpd": None, "tpm": None})
        return found

    def _day_now(self) -> tuple[str, float]:
        if time.time() >= self._day[1]:
            self._day = pacific_day(time.time())
        return self._day

    async def _call_acquire(
        self, mode: str, model: str, ticket: str = "", user: str = "", estimate: int = 0,
        unless: str | None = None, avoid: str | None = None, on_grant: OnGrant | None = None,
    ) -> list[int]:
        limits = self._settings.limits(model)
        day, day_end = self._day_now()
        keys = [
            self._pool("throttled_until"), f"{self._prefix}keys:removed",
            self._pool(f"line:{model}"), self._pool(f"line:{model}:seen"),
            self._pool(f"fair:{model}"), self._pool(f"capacity:{model}"),
            unless or self._pool("no-flag"),
            on_grant.stream if on_grant else self._pool("no-stream"),
        ]
        for kid in self._ids:
            m = self._model(kid, model)
            keys += [
                self.key_hash(kid), m, f"{m}:window", f"{m}:tokens", f"{m}:day:{day}",
                f"{self._prefix}keys:series:{kid}",
            ]
        nonce = uuid.uuid4().hex[:12]
        result = await self._acquire(keys=keys, args=[
            mode, limits.rpm, limits.rpd or 0, limits.tpm or 0, estimate, nonce,
            random.randrange(len(self._ids)) if self._ids else 0, self._window_ms,
            round(day_end * 1000), ticket, user or ticket, "1" if unless else "0",
            self._ids.index(avoid) if avoid in self._ids else -1, model, *self._ids,
            *_grant_args(on_grant),
        ])
        return [*result, nonce]

    async def acquire(
        self, model: str, ticket: str, *, user: str | None = None, estimate: int = 0,
        max_wait_s: float, unless: str | None = None, avoid: str | None = None,
        on_wait: OnWait | None = None, on_grant: OnGrant | None = None,
    ) -> Lease | None:
        """A key for `model` to call with now. A request waits in line (`ticket`, per-user fair)
        while the pool's next free slot is within `max_wait_s`; None when it is not. `avoid`: a
        key to use only when no other is free. `on_grant`: entries the granting script appends
        (only then). Raises FlagSet once the Redis key `unless` exists, AllKeysDisabled when no
        key is usable."""
        start = time.monotonic()
        granted = False
        reported: tuple[int, float] | None = None
        try:
            while True:
                if not self._ids:
                    raise AllKeysDisabled
                ids = self._ids
                position, wait_ms, place, _waiting, per_minute, nonce = await self._call_acquire(
                    "take", model, ticket, user or "", estimate, unless, avoid, on_grant
                )
                if position:
                    granted = True
                    return Lease(ids[position - 1], model, time.monotonic() - start, nonce,
                                 estimate)
                if wait_ms == -2:
                    raise FlagSet
                if wait_ms == -1:
                    raise AllKeysDisabled
                wait_s = wait_ms / 1000
                if wait_s > max_wait_s:
                    return None
                if on_wait is not None:
                    eta = max(wait_s, place * 60 / per_minute) if per_minute else wait_s
                    now = time.monotonic()
                    if reported is None or (
                        place != reported[0] and now - reported[1] >= _REPORT_EVERY_S
                    ):
                        reported = (place, now)
                        await on_wait(place, eta)
                # A little jitter so replicas waiting for the same slot do not all wake at once.
                await asyncio.sleep(min(wait_s, _POLL_MAX_S) + random.uniform(0.005, 0.05))
        finally:
            if not granted and ticket:
                await self._leave(
                    keys=[self._pool(f"line:{model}"), self._pool(f"line:{model}:seen")],
                    args=[ticket],
                )

    async def capacity(self, model: str) -> None:
        """Refreshes `P pool:capacity:<model>` for the backend's admission control."""
        if self._ids:
            await self._call_acquire("peek", model)

    async def finish(self, lease: Lease, total_tokens: int) -> None:
        """A call that succeeded: Gemini's token count replaces the estimate, failures reset."""
        await self._finish(
            keys=[self.key_hash(lease.key_id), f"{self._model(lease.key_id, lease.model)}:tokens"],
            args=[f"{lease.nonce}:{lease.estimate}", f"{lease.nonce}:{total_tokens}"],
        )

    async def _failure(
        self, kid: str, model: str, kind: str, seconds: float, reason: str, *,
        code: str, status: int | None, message: str, series: str, counts: bool,
    ) -> None:
        error = json.dumps({
            "at": round(time.time(), 3), "model": model, "code": code, "status": status,
            "message": message[:300],
        })
        await self._record(
            keys=[self.key_hash(kid), self._model(kid, model), f"{self.key_hash(kid)}:errors",
                  f"{self._prefix}keys:series:{kid}"],
            args=[kind, f"{seconds:.3f}", reason, error, model, series, "1" if counts else "0"],
        )

    async def cool_down(
        self, kid: str, model: str, seconds: float, reason: str, *, status: int | None,
        message: str,
    ) -> None:
        """(key, model) rests `seconds` (never shortening a running cooldown)."""
        await self._failure(kid, model, "cool", seconds, reason, code="rate_limited",
                            status=status, message=message, series="rate_limited", counts=True)

    async def disable(
        self, kid: str, model: str, reason: str, *, status: int | None, message: str
    ) -> None:
        """Google refused the key: unused until a probe (KEYS_RECHECK_MINUTES) accepts it."""
        await self._failure(
            kid, model, "disable", self._settings.keys_recheck_minutes * 60, reason,
            code="key_rejected", status=status, message=message, series="errors", counts=True,
        )

    async def note_error(
        self, kid: str, model: str, *, code: str, status: int | None, message: str,
        counts: bool,
    ) -> None:
        await self._failure(kid, model, "error", 0, "", code=code, status=status,
                            message=message, series="errors", counts=counts)

    async def throttled(self, kid: str, backoff_s: float) -> float | None:
        """Notes a 429 that named no quota; the pool's back-off end when every key had one."""
        until = await self._throttle(
            keys=[
                self._pool("429s"), self._pool("throttled_until"),
                f"{self._prefix}keys:removed", *(self.key_hash(k) for k in self._ids),
            ],
            args=[kid, _THROTTLE_WINDOW_MS, f"{backoff_s:.3f}", *self._ids],
        )
        return float(until) or None

    async def due_for_probe(self) -> list[str]:
        """Disabled keys whose recheck time has come, each claimed by one replica."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for kid in self._ids:
                pipe.hmget(self.key_hash(kid), "disabled", "recheck_at")
            states = await pipe.execute()
        now = time.time()
        due = []
        for kid, (disabled, recheck_at) in zip(self._ids, states, strict=True):
            if disabled == b"1" and float(recheck_at or 0) <= now:
                claimed = await self._redis.set(
                    f"{self.key_hash(kid)}:probe", 1, nx=True, ex=_PROBE_LOCK_S
                )
                if claimed:
                    due.append(kid)
        return due

    async def probed(self, kid: str, ok: bool, reason: str = "", message: str = "") -> None:
        """A probe's result: re-enabled, or the next probe scheduled."""
        h = self.key_hash(kid)
        if ok:
            await self._redis.hset(h, mapping={
                "disabled": 0, "disabled_reason": "", "recheck_at": 0, "failures": 0,
            })
        else:
            next_at = time.time() + self._settings.keys_recheck_minutes * 60
            mapping = {"recheck_at": f"{next_at:.3f}"}
            if reason:
                mapping |= {"disabled_reason": reason, "last_error": message[:300]}
            await self._redis.hset(h, mapping=mapping)
        await self._redis.delete(f"{h}:probe")

    async def prune_series(self) -> None:
        """Drops chart fields older than 25 h (their hash expires after 2 days idle anyway)."""
        oldest = int((time.time() - _SERIES_KEEP_S) // 60)
        for kid in self._ids:
            name = f"{self._prefix}keys:series:{kid}"
            old = [f for f in await self._redis.hkeys(name) if int(f.split(b":", 1)[0]) < oldest]
            if old:
                await self._redis.hdel(name, *old)
