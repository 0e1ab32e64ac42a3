"""The key pool's Redis state and Lua scripts, against the real Redis (several pools = replicas)."""

import asyncio
import json
import time
import uuid
from collections import Counter

import pytest
import redis.asyncio as aioredis

from src.core.config import Settings
from src.rate_limiter.key_pool import AllKeysDisabled, FlagSet, KeyPool, pacific_day

from .support import REDIS_URL, key_id

KEYS = ["pool-key-aaaa-0001", "pool-key-bbbb-0002", "pool-key-cccc-0003"]
FLASH, PRO = "gemini-2.5-flash", "gemini-2.5-pro"


@pytest.fixture
async def prefix(redis: aioredis.Redis):
    value = f"gwtest:pool:{uuid.uuid4().hex[:10]}:"
    yield value
    stale = [key async for key in redis.scan_iter(match=f"{value}*")]
    if stale:
        await redis.delete(*stale)


async def make_pool(
    prefix: str, limit: int = 100, keys: list[str] = KEYS, margin_s: float = 1.0, **settings
) -> KeyPool:
    pool = KeyPool(aioredis.Redis.from_url(REDIS_URL), Settings(
        gemini_api_keys=keys, secret_key="s", redis_key_prefix=prefix,
        keys_max_per_minute=limit, keys_window_margin_seconds=margin_s, **settings,
    ))
    await pool.register()
    return pool


async def grab(pool: KeyPool, model: str = FLASH, wait_s: float = 0, **kwargs) -> str | None:
    lease = await pool.acquire(model, uuid.uuid4().hex, max_wait_s=wait_s, **kwargs)
    return lease.key_id if lease else None


def m(prefix: str, kid: str, model: str = FLASH) -> str:
    return f"{prefix}keys:{kid}:m:{model}"


async def test_least_used_key_first_spreads_evenly(prefix):
    pool = await make_pool(prefix)
    picks = Counter([await grab(pool) for _ in range(30)])
    assert picks == {key_id(k): 10 for k in KEYS}


async def test_per_minute_limit_then_none_within_the_wait(prefix, redis):
    pool = await make_pool(prefix, limit=5)
    picks = [await grab(pool) for _ in range(15)]
    assert Counter(picks) == {key_id(k): 5 for k in KEYS}
    assert await grab(pool, wait_s=0.2) is None
    # The slot frees 60 s + the 1 s margin after the first use.
    await pool.capacity(FLASH)
    capacity = await redis.hgetall(f"{prefix}pool:capacity:{FLASH}")
    assert 59 < float(capacity[b"next_free_at"]) - time.time() <= 61
    assert capacity[b"per_minute"] == b"15" and capacity[b"waiting"] == b"0"


async def test_replicas_together_never_exceed_the_limit(prefix):
    replicas = [await make_pool(prefix, limit=7) for _ in range(4)]
    picks = await asyncio.gather(*(grab(replicas[i % 4], wait_s=0.5) for i in range(120)))
    used = Counter(p for p in picks if p)
    assert used == {key_id(k): 7 for k in KEYS}


async def test_models_have_their_own_windows_and_cooldowns(prefix, redis):
    pool = await make_pool(prefix, keys_limits={"gemini-2.5-pro": {"rpm": 2}})
    for kid in map(key_id, KEYS):
        await pool.cool_down(kid, PRO, 300, "rpd", status=429, message="quota")
    assert await grab(pool, PRO) is None
    # Flash is untouched by pro's cooldowns.
    assert Counter([await grab(pool) for _ in range(6)]) == {key_id(k): 2 for k in KEYS}
    state = await redis.hgetall(m(prefix, key_id(KEYS[0]), PRO))
    assert state[b"cooldown_reason"] == b"rpd" and float(state[b"cooldown_until"]) > time.time()
    limits = await redis.hgetall(f"{prefix}keys:limits")
    assert json.loads(limits[PRO.encode()]) == {"rpm": 2, "rpd": None, "tpm": None}
    assert json.loads(limits[b"_default"])["rpm"] == 100


async def test_per_day_limit_counts_google_days(prefix, redis):
    pool = await make_pool(prefix, keys=KEYS[:2], keys_limits={FLASH: {"rpm": 100, "rpd": 3}})
    picks = [await grab(pool) for _ in range(8)]
    assert Counter(picks) == {key_id(KEYS[0]): 3, key_id(KEYS[1]): 3, None: 2}
    day, ends = pacific_day(time.time())
    assert await redis.get(f"{m(prefix, key_id(KEYS[0]))}:day:{day}") == b"3"
    assert 0 < await redis.ttl(f"{m(prefix, key_id(KEYS[0]))}:day:{day}") <= 172800
    capacity = await redis.hgetall(f"{prefix}pool:capacity:{FLASH}")
    assert abs(float(capacity[b"next_free_at"]) - ends) < 2 and capacity[b"per_minute"] == b"0"


async def test_tokens_per_minute_use_the_estimate_then_the_count(prefix, redis):
    pool = await make_pool(prefix, keys=KEYS[:1], keys_limits={FLASH: {"rpm": 100, "tpm": 1000}})
    lease = await pool.acquire(FLASH, "t1", estimate=300, max_wait_s=0)
    assert lease is not None
    await pool.finish(lease, 900)  # Gemini counted prompt + reply
    assert await grab(pool, estimate=200) is None  # 900 + 200 > 1000
    assert await grab(pool, estimate=50) is not None
    members = await redis.zrange(f"{m(prefix, lease.key_id)}:tokens", 0, -1)
    assert f"{lease.nonce}:900".encode() in members


async def test_a_use_holds_its_slot_for_the_margin_past_60_s(prefix, redis):
    """Google counts a call when it arrives, after the pool recorded it: a slot freed at exactly
    60 s would be reused while Google still counts the old call (an upstream 429)."""
    pool = await make_pool(prefix, limit=1, keys=KEYS[:1], margin_s=1.0)
    kid = key_id(KEYS[0])
    await redis.zadd(f"{m(prefix, kid)}:window", {"old": time.time() * 1000 - 60_300})
    assert await grab(pool) is None
    no_margin = await make_pool(prefix, limit=1, keys=KEYS[:1], margin_s=0)
    assert await grab(no_margin) == kid


async def test_cooling_key_is_skipped_and_cooldown_never_shortened(prefix, redis):
    pool = await make_pool(prefix)
    cold = key_id(KEYS[0])
    await pool.cool_down(cold, FLASH, 30, "rpm", status=429, message="quota")
    await pool.cool_down(cold, FLASH, 1, "rpm", status=429, message="quota again")
    picks = {await grab(pool) for _ in range(20)}
    assert cold not in picks and len(picks) == 2
    assert float(await redis.hget(m(prefix, cold), "cooldown_until")) > time.time() + 25
    state = await redis.hgetall(f"{prefix}keys:{cold}")
    assert state[b"failures"] == b"2" and state[b"last_error"] == b"quota again"
    errors = [json.loads(e) for e in await redis.lrange(f"{prefix}keys:{cold}:errors", 0, -1)]
    assert [(e["code"], e["status"], e["model"]) for e in errors] == [
        ("rate_limited", 429, FLASH)
    ] * 2 and errors[0]["message"] == "quota again"
    series = await redis.hgetall(f"{prefix}keys:series:{cold}")
    assert sum(int(v) for f, v in series.items() if f.endswith(b":rate_limited")) == 2


async def test_a_success_resets_the_failure_count(prefix, redis):
    pool = await make_pool(prefix, keys=KEYS[:1])
    kid = key_id(KEYS[0])
    await pool.note_error(kid, FLASH, code="upstream_unavailable", status=503, message="x",
                          counts=True)
    assert await redis.hget(f"{prefix}keys:{kid}", "failures") == b"1"
    lease = await pool.acquire(FLASH, "t", max_wait_s=0)
    await pool.finish(lease, 10)
    assert await redis.hget(f"{prefix}keys:{kid}", "failures") == b"0"


async def test_waits_for_the_earliest_key_to_free_up(prefix, redis):
    pool = await make_pool(prefix, limit=1, keys=KEYS[:1])
    kid = key_id(KEYS[0])
    # One use 60.6 s ago: with the 1 s margin the key frees up in 0.4 s.
    await redis.zadd(f"{m(prefix, kid)}:window", {"old": time.time() * 1000 - 60_600})
    started = time.monotonic()
    assert await grab(pool, wait_s=3) == kid
    assert 0.3 <= time.monotonic() - started <= 2


async def test_waiting_requests_leave_in_line_order_fair_per_user(prefix, redis):
    """One slot frees every 0.3 s: a heavy user's eight requests, then a light user's two. The
    light user's take turns with the heavy user's rather than waiting behind all eight."""
    pool = await make_pool(prefix, limit=10, keys=KEYS[:1], margin_s=0)
    kid = key_id(KEYS[0])
    now_ms = time.time() * 1000
    # A full window whose uses expire one by one, 0.3 s apart, from 0.6 s on.
    await redis.zadd(f"{m(prefix, kid)}:window", {
        f"old{k}": now_ms - 60_000 + 300 * (k + 2) for k in range(10)
    })
    served: list[str] = []
    positions: dict[str, list[int]] = {}

    async def ask(name: str, user: str) -> None:
        async def on_wait(position: int, eta: float) -> None:
            positions.setdefault(name, []).append(position)

        assert await pool.acquire(FLASH, name, user=user, max_wait_s=5, on_wait=on_wait)
        served.append(name)

    tasks = []
    for name, user in [*((f"heavy{i}", "heavy") for i in range(8)), ("light0", "light"),
                       ("light1", "light")]:
        tasks.append(asyncio.create_task(ask(name, user)))
        await asyncio.sleep(0.02)  # in this order
    await asyncio.wait_for(asyncio.gather(*tasks), 20)
    assert served[:4] == ["heavy0", "light0", "heavy1", "light1"]
    assert served[4:] == [f"heavy{i}" for i in range(2, 8)]
    assert positions["light1"][0] == 4  # behind heavy0, light0, heavy1
    assert await redis.zcard(f"{prefix}pool:line:{FLASH}") == 0


async def test_a_request_that_stops_waiting_leaves_the_line(prefix, redis):
    pool = await make_pool(prefix, limit=1, keys=KEYS[:1])
    await grab(pool)
    assert await grab(pool, wait_s=0.1) is None
    assert await redis.zcard(f"{prefix}pool:line:{FLASH}") == 0


async def test_removed_and_admin_disabled_keys_are_never_picked(prefix, redis):
    pool = await make_pool(prefix)
    await redis.sadd(f"{prefix}keys:removed", key_id(KEYS[0]))
    await redis.hset(f"{prefix}keys:{key_id(KEYS[1])}", "admin_disabled", 1)
    assert {await grab(pool) for _ in range(10)} == {key_id(KEYS[2])}
    await redis.hset(f"{prefix}keys:{key_id(KEYS[2])}", "admin_disabled", 1)
    with pytest.raises(AllKeysDisabled):
        await grab(pool, wait_s=1)


async def test_disabled_key_stays_disabled_across_restarts_until_a_probe(prefix, redis):
    pool = await make_pool(prefix, keys_recheck_minutes=0.01)
    bad = key_id(KEYS[1])
    await pool.disable(bad, FLASH, "api_not_enabled", status=403, message="not enabled")
    restarted = await make_pool(prefix)
    assert bad not in {await grab(restarted) for _ in range(20)}
    state = await redis.hgetall(f"{prefix}keys:{bad}")
    assert state[b"disabled"] == b"1" and state[b"disabled_reason"] == b"api_not_enabled"
    assert float(state[b"recheck_at"]) <= time.time() + 1
    await asyncio.sleep(0.7)
    assert await pool.due_for_probe() == [bad]
    assert await restarted.due_for_probe() == []  # claimed by the first replica
    await pool.probed(bad, ok=True)
    assert bad in {await grab(restarted) for _ in range(20)}


async def test_every_key_429_within_seconds_backs_the_pool_off(prefix, redis):
    pool = await make_pool(prefix)
    ids = [key_id(k) for k in KEYS]
    assert await pool.throttled(ids[0], 5) is None
    assert await pool.throttled(ids[1], 5) is None
    until = await pool.throttled(ids[2], 5)
    assert until and 4 < until - time.time() <= 5
    assert await grab(pool, wait_s=1) is None
    assert 0 < await redis.pttl(f"{prefix}pool:throttled_until") <= 6000


async def test_all_keys_disabled_is_reported(prefix):
    pool = await make_pool(prefix, keys=KEYS[:2])
    for key in KEYS[:2]:
        await pool.disable(key_id(key), FLASH, "key_invalid", status=400, message="invalid")
    with pytest.raises(AllKeysDisabled):
        await grab(pool, wait_s=1)


async def test_a_set_unless_flag_takes_no_key_and_records_nothing(prefix, redis):
    pool = await make_pool(prefix, limit=1, keys=KEYS[:1])
    flag = f"{prefix}cancel:m1"
    assert await grab(pool, unless=flag) == key_id(KEYS[0])
    await redis.set(flag, "1")
    # Checked before the keys: even with the only key busy, the flag answers at once.
    with pytest.raises(FlagSet):
        await grab(pool, wait_s=5, unless=flag)
    assert await redis.zcard(f"{m(prefix, key_id(KEYS[0]))}:window") == 1
    assert await redis.hget(f"{prefix}keys:{key_id(KEYS[0])}", "requests_total") == b"1"


async def test_admin_view_state_has_labels_and_no_key_text(prefix, redis):
    pool = await make_pool(prefix)
    await grab(pool)
    index = await redis.hgetall(f"{prefix}keys:index")
    assert index == {key_id(k).encode(): ("…" + k[-4:]).encode() for k in KEYS}
    for kid in index:
        state = await redis.hgetall(f"{prefix}keys:{kid.decode()}")
        assert {b"disabled", b"admin_disabled", b"failures", b"requests_total"} <= set(state)
    assert sum(
        [int(await redis.hget(f"{prefix}keys:{key_id(k)}", "requests_total")) for k in KEYS]
    ) == 1
    everything = b""
    async for name in redis.scan_iter(match=f"{prefix}*"):
        everything += name
        kind = await redis.type(name)
        if kind == b"hash":
            everything += b"".join(k + v for k, v in (await redis.hgetall(name)).items())
        elif kind == b"zset":
            everything += b"".join(await redis.zrange(name, 0, -1))
    assert not any(k.encode() in everything for k in KEYS)
