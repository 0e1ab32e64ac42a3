"""The admin view of the worker's key pool, read from Redis as docs/CONTRACTS.md ("Key pool v2")
lays it out: per key and per model, use against the limits, cooldowns, errors and series.
Only ids, labels and counters are stored there; no key text ever passes through here."""

import json
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.api.schemas import (
    KeyErrorOut,
    KeyModelOut,
    KeyOut,
    ModelCapacity,
    ModelLimits,
    PoolOut,
    SeriesOut,
    SeriesPoint,
)
from app.core.container import Container

WINDOW_MS = 60_000
GOOGLE_DAY_ZONE = ZoneInfo("America/Los_Angeles")  # Google's daily quotas reset at its midnight
DEFAULT_LIMITS = "_default"
# Chart windows: (length, bucket) in seconds.
SERIES_WINDOWS = {"hour": (3600, 60), "day": (86400, 900)}
SERIES_KINDS = ("calls", "rate_limited", "errors")


def _float(value: Any) -> float:
    try:
        return float(value) if value else 0.0
    except (TypeError, ValueError):
        return 0.0


def _int(value: Any) -> int:
    return int(_float(value))


def _time(epoch: float) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch > 0 else None


def google_day(now: float) -> str:
    return datetime.fromtimestamp(now, GOOGLE_DAY_ZONE).strftime("%Y-%m-%d")


def _limits(raw: dict[str, str]) -> dict[str, ModelLimits]:
    limits = {}
    for model, text in raw.items():
        try:
            value = json.loads(text)
            limits[model] = ModelLimits(
                rpm=value.get("rpm"), rpd=value.get("rpd"), tpm=value.get("tpm")
            )
        except (ValueError, AttributeError, TypeError):
            continue
    return limits


def models_shown(c: Container, limits: dict[str, ModelLimits]) -> list[str]:
    extra = sorted(m for m in limits if m != DEFAULT_LIMITS and m not in c.settings.GEMINI_MODELS)
    return [*c.settings.GEMINI_MODELS, *extra]


def _tokens(members: list[str]) -> int:
    total = 0
    for member in members:
        _, _, count = member.rpartition(":")
        total += _int(count)
    return total


async def known_key_ids(c: Container) -> tuple[dict[str, str], set[str]]:
    """Keys the pool knows (id -> label) without the removed ones, and the registry's ids."""
    async with c.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(c.keys.keys_index)
        pipe.smembers(c.keys.keys_removed)
        pipe.hkeys(c.keys.keys_registry)
        index, removed, registry = await pipe.execute()
    for key_id in registry:
        index.setdefault(key_id, "…")
    return {k: v for k, v in index.items() if k not in removed}, set(registry)


async def key_states(c: Container) -> list[KeyOut]:
    index, registry = await known_key_ids(c)
    if not index:
        return []
    limits = _limits(await c.redis.hgetall(c.keys.keys_limits))
    models = models_shown(c, limits)
    now = time.time()
    since = f"({int(now * 1000) - WINDOW_MS}"
    day = google_day(now)
    key_ids = sorted(index)
    entries: dict[str, str] = {}
    if registry:
        entries = await c.redis.hgetall(c.keys.keys_registry)
    async with c.redis.pipeline(transaction=False) as pipe:
        for key_id in key_ids:
            pipe.hgetall(c.keys.key(key_id))
            pipe.zcount(c.keys.key_window(key_id), since, "+inf")  # a v1 worker's one window
            for model in models:
                pipe.hgetall(c.keys.key_model(key_id, model))
                pipe.zcount(c.keys.key_model_window(key_id, model), since, "+inf")
                pipe.zrangebyscore(c.keys.key_model_tokens(key_id, model), since, "+inf")
                pipe.get(c.keys.key_model_day(key_id, model, day))
        replies = iter(await pipe.execute())
    states = []
    for key_id in key_ids:
        fields, legacy_used = next(replies), next(replies)
        if fields.get("admin_disabled") == "1":
            disabled, reason = True, "admin_disabled"
        elif fields.get("disabled") == "1":
            disabled, reason = True, fields.get("disabled_reason") or "key_invalid"
        else:
            disabled, reason = False, None
        per_model = []
        for model in models:
            mfields, used, token_members, used_today = (next(replies) for _ in range(4))
            limit = limits.get(model) or limits.get(DEFAULT_LIMITS)
            cooldown = _float(mfields.get("cooldown_until"))
            if disabled:
                mstate, mreason = "disabled", reason
            elif cooldown > now:
                mstate, mreason = "cooling", mfields.get("cooldown_reason") or "429"
            else:
                mstate, mreason = "active", None
            per_model.append(
                KeyModelOut(
                    model=model,
                    state=mstate,
                    reason=mreason,
                    used_last_minute=used,
                    limit_per_minute=limit.rpm if limit else None,
                    used_today=_int(used_today),
                    limit_per_day=limit.rpd if limit else None,
                    tokens_last_minute=_tokens(token_members),
                    limit_tokens_per_minute=limit.tpm if limit else None,
                    cooldown_until=_time(cooldown) if cooldown > now else None,
                    cooldown_remaining_seconds=round(max(0.0, cooldown - now), 1),
                    requests_total=_int(mfields.get("requests_total")),
                )
            )
        cooldowns = [_float(fields.get("cooldown_until"))]
        cooldowns += [m.cooldown_until.timestamp() for m in per_model if m.cooldown_until]
        cooldown = max(cooldowns)
        if disabled:
            state = "disabled"
        elif _float(fields.get("cooldown_until")) > now or (
            per_model and all(m.state == "cooling" for m in per_model)
        ):
            state, reason = "cooling", "cooldown"
        else:
            state = "active"
        added_at = None
        if key_id in entries:
            try:
                added_at = _time(_float(json.loads(entries[key_id]).get("added_at")))
            except (ValueError, AttributeError):
                added_at = None
        states.append(
            KeyOut(
                id=key_id,
                label=fields.get("label") or index[key_id],
                source="admin" if key_id in registry else "env",
                state=state,
                reason=reason,
                used_last_minute=legacy_used + sum(m.used_last_minute for m in per_model),
                cooldown_until=_time(cooldown) if cooldown > now else None,
                failures=_int(fields.get("failures")),
                requests_total=_int(fields.get("requests_total")),
                last_error=fields.get("last_error") or None,
                disabled_at=_time(_float(fields.get("disabled_at"))) if disabled else None,
                recheck_at=_time(_float(fields.get("recheck_at"))) if disabled else None,
                added_at=added_at,
                models=per_model,
            )
        )
    return states


async def key_errors(c: Container, key_id: str) -> list[KeyErrorOut]:
    errors = []
    for raw in await c.redis.lrange(c.keys.key_errors(key_id), 0, 49):
        try:
            item = json.loads(raw)
            status = item.get("status")
            errors.append(
                KeyErrorOut(
                    at=_time(_float(item.get("at"))) or datetime.now(UTC),
                    model=item.get("model"),
                    code=str(item["code"]) if item.get("code") is not None else None,
                    status=int(status) if status is not None else None,
                    message=str(item.get("message") or ""),
                )
            )
        except (ValueError, AttributeError, TypeError):
            continue
    return errors


async def series(c: Container, window: str, key_id: str | None) -> SeriesOut:
    """Calls, 429s and errors of every key (or one), summed per bucket, oldest first."""
    length, step = SERIES_WINDOWS[window]
    key_ids = [key_id] if key_id else sorted((await known_key_ids(c))[0])
    now = time.time()
    last = int(now // step) * step
    first = last - length + step
    counts: Counter[tuple[int, str]] = Counter()
    async with c.redis.pipeline(transaction=False) as pipe:
        for kid in key_ids:
            pipe.hgetall(c.keys.key_series(kid))
        hashes = await pipe.execute()
    for fields in hashes:
        for name, value in fields.items():
            minute, _, rest = name.partition(":")
            kind = rest.rpartition(":")[2]
            if kind not in SERIES_KINDS or not minute.isdigit():
                continue
            at = int(minute) * 60
            if at < first:
                continue
            counts[(at // step * step, kind)] += _int(value)
    points = [
        SeriesPoint(
            at=datetime.fromtimestamp(at, UTC),
            calls=counts[(at, "calls")],
            rate_limited=counts[(at, "rate_limited")],
            errors=counts[(at, "errors")],
        )
        for at in range(first, last + step, step)
    ]
    return SeriesOut(window=window, step_seconds=step, points=points)


async def pool(c: Container) -> PoolOut:
    limits = _limits(await c.redis.hgetall(c.keys.keys_limits))
    models = models_shown(c, limits)
    async with c.redis.pipeline(transaction=False) as pipe:
        pipe.get(c.keys.pool_throttled_until)
        for model in models:
            pipe.hgetall(c.keys.pool_capacity(model))
        throttled, *capacities = await pipe.execute()
    now = time.time()
    until = _float(throttled)
    capacity = {
        model: ModelCapacity(
            per_minute=_float(fields.get("per_minute")),
            waiting=_int(fields.get("waiting")),
            next_free_at=_time(_float(fields.get("next_free_at"))),
            updated_at=_time(_float(fields.get("updated_at"))),
        )
        for model, fields in zip(models, capacities, strict=True)
        if fields
    }
    return PoolOut(
        throttled_until=_time(until) if until > now else None,
        limits=limits,
        capacity=capacity,
    )
