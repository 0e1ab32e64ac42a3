"""The key pool's Redis state and Lua script, against the real Redis (several pools = replicas)."""

import asyncio
import time
import uuid
from collections import Counter

import pytest
import redis.asyncio as aioredis

from src.rate_limiter.key_pool import AllKeysDisabled, FlagSet, KeyPool

from .support import REDIS_URL, key_id

KEYS = ["pool-key-aaaa-0001", "pool-key-bbbb-0002", "pool-key-cccc-0003"]


@pytest.fixture
async def prefix(redis: aioredis.Redis):
    value = f"gwtest:pool:{uuid.uuid4().hex[:10]}:"
    yield value
    stale = [key async for key in redis.scan_iter(match=f"{value}*")]
    if stale:
        await redis.delete(*stale)


async def make_pool(
    prefix: str, limit: int, keys: list[str] = KEYS, margin_s: float = 1.0
) -> KeyPool:
    pool = KeyPool(aioredis.Redis.from_url(REDIS_URL), prefix, keys, limit, margin_s)
    await pool.register()
    return pool


async def test_least_used_key_first_spreads_evenly(prefix):
    pool = await make_pool(prefix, limit=100)
    picks = Counter([(await pool.try_acquire())[0] for _ in range(30)])
    assert picks == {key_id(k): 10 for k in KEYS}


async def test_per_minute_limit_then_wait_hint(prefix):
    pool = await make_pool(prefix, limit=5)
    picks = [(await pool.try_acquire())[0] for _ in range(15)]
    assert Counter(picks) == {key_id(k): 5 for k in KEYS}
    kid, wait_ms = await pool.try_acquire()
    # 60 s plus the 1 s margin.
    assert kid is None and 60_000 <= wait_ms <= 61_000
    assert await pool.acquire(max_wait_s=0.2) is None


async def test_replicas_together_never_exceed_the_limit(prefix):
    replicas = [await make_pool(prefix, limit=7) for _ in range(4)]

    async def grab(pool: KeyPool) -> str | None:
        return (await pool.try_acquire())[0]

    picks = await asyncio.gather(*(grab(replicas[i % 4]) for i in range(120)))
    used = Counter(p for p in picks if p)
    assert used == {key_id(k): 7 for k in KEYS}


async def test_a_use_holds_its_slot_for_the_margin_past_60_s(prefix, redis):
    """Google counts a call when it arrives, after the pool recorded it: a slot freed at exactly
    60 s would be reused while Google still counts the old call (an upstream 429)."""
    pool = await make_pool(prefix, limit=1, keys=KEYS[:1], margin_s=1.0)
    kid = key_id(KEYS[0])
    await redis.zadd(f"{prefix}keys:{kid}:window", {"old": time.time() * 1000 - 60_300})
    busy, wait_ms = await pool.try_acquire()
    assert busy is None and 0 < wait_ms <= 700
    no_margin = await make_pool(prefix, limit=1, keys=KEYS[:1], margin_s=0)
    assert (await no_margin.try_acquire())[0] == kid


async def test_cooling_key_is_skipped_and_cooldown_never_shortened(prefix, redis):
    pool = await make_pool(prefix, limit=100)
    cold = key_id(KEYS[0])
    await pool.cool_down(cold, 30, "429: quota")
    await pool.cool_down(cold, 1, "429: quota again")
    picks = {(await pool.try_acquire())[0] for _ in range(20)}
    assert cold not in picks and len(picks) == 2
    state = await redis.hgetall(f"{prefix}keys:{cold}")
    assert float(state[b"cooldown_until"]) > time.time() + 25
    assert state[b"failures"] == b"2" and state[b"last_error"] == b"429: quota again"


async def test_waits_for_the_earliest_key_to_free_up(prefix, redis):
    pool = await make_pool(prefix, limit=1, keys=KEYS[:1])
    kid = key_id(KEYS[0])
    # One use 60.6 s ago: with the 1 s margin the key frees up in 0.4 s.
    await redis.zadd(f"{prefix}keys:{kid}:window", {"old": time.time() * 1000 - 60_600})
    started = time.monotonic()
    lease = await pool.acquire(max_wait_s=3)
    assert lease is not None and lease.key_id == kid
    assert 0.3 <= time.monotonic() - started <= 2


async def test_disabled_key_stays_disabled_across_restarts(prefix, redis):
    pool = await make_pool(prefix, limit=100)
    bad = key_id(KEYS[1])
    await pool.disable(bad, "API key not valid. Please pass a valid API key.")
    restarted = await make_pool(prefix, limit=100)
    picks = {(await restarted.try_acquire())[0] for _ in range(20)}
    assert bad not in picks
    assert (await redis.hget(f"{prefix}keys:{bad}", "disabled")) == b"1"


async def test_all_keys_disabled_is_reported(prefix):
    pool = await make_pool(prefix, limit=100, keys=KEYS[:2])
    for key in KEYS[:2]:
        await pool.disable(key_id(key), "API_KEY_INVALID")
    with pytest.raises(AllKeysDisabled):
        await pool.acquire(max_wait_s=1)


async def test_a_set_unless_flag_takes_no_key_and_records_nothing(prefix, redis):
    pool = await make_pool(prefix, limit=1, keys=KEYS[:1])
    flag = f"{prefix}cancel:m1"
    assert (await pool.try_acquire(unless=flag))[0] == key_id(KEYS[0])
    await redis.set(flag, "1")
    # Checked before the keys: even with the only key busy, the flag answers at once.
    with pytest.raises(FlagSet):
        await pool.acquire(max_wait_s=5, unless=flag)
    assert await redis.zcard(f"{prefix}keys:{key_id(KEYS[0])}:window") == 1
    assert await redis.hget(f"{prefix}keys:{key_id(KEYS[0])}", "requests_total") == b"1"


async def test_admin_view_state_has_labels_and_no_key_text(prefix, redis):
    pool = await make_pool(prefix, limit=100)
    await pool.try_acquire()
    index = await redis.hgetall(f"{prefix}keys:index")
    assert index == {key_id(k).encode(): ("…" + k[-4:]).encode() for k in KEYS}
    for kid in index:
        state = await redis.hgetall(f"{prefix}keys:{kid.decode()}")
        assert set(state) == {
            b"disabled", b"cooldown_until", b"failures", b"requests_total", b"last_error"
        }
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
