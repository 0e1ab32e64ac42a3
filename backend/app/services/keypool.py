"""The admin view of the worker's key pool, read from Redis as docs/CONTRACTS.md lays it out.
Only ids, labels and counters are stored there; no key text ever passes through here."""

import time
from datetime import UTC, datetime

from app.api.schemas import KeyOut
from app.core.container import Container

WINDOW_MS = 60_000


def _int(value: str | None) -> int:
    try:
        return int(float(value)) if value else 0
    except ValueError:
        return 0


async def key_states(c: Container) -> list[KeyOut]:
    index = await c.redis.hgetall(c.keys.keys_index)
    if not index:
        return []
    now = time.time()
    key_ids = sorted(index)
    async with c.redis.pipeline(transaction=False) as pipe:
        for key_id in key_ids:
            pipe.hgetall(c.keys.key(key_id))
            pipe.zcount(c.keys.key_window(key_id), f"({int(now * 1000) - WINDOW_MS}", "+inf")
        replies = await pipe.execute()
    states = []
    for i, key_id in enumerate(key_ids):
        fields, used = replies[2 * i], replies[2 * i + 1]
        try:
            cooldown = float(fields.get("cooldown_until") or 0)
        except ValueError:
            cooldown = 0.0
        if fields.get("disabled") == "1":
            state = "disabled"
        elif cooldown > now:
            state = "cooling"
        else:
            state = "active"
        states.append(
            KeyOut(
                id=key_id,
                label=index[key_id],
                state=state,
                used_last_minute=used,
                cooldown_until=datetime.fromtimestamp(cooldown, UTC) if cooldown > now else None,
                failures=_int(fields.get("failures")),
                requests_total=_int(fields.get("requests_total")),
                last_error=fields.get("last_error") or None,
            )
        )
    return states
