"""Key rotation, 429 cool-downs and invalid keys through real workers and the stand-in."""

import time
from collections import Counter

from .conftest import KEYS
from .support import key_id, request, wait_for

IDS = [key_id(k) for k in KEYS]


async def send_all(bus, count: int, label: str) -> list[dict]:
    bodies = [request(f"{label} {i}") for i in range(count)]
    for body in bodies:
        await bus.send(body)
    return [await bus.final(body["request_id"]) for body in bodies]


async def test_rotation_spreads_load_evenly(spawn, bus, standin):
    await spawn().started()
    done = await send_all(bus, 12, "spread")
    assert {d["status"] for d in done} == {"completed"}
    assert Counter(d["key_id"] for d in done) == {kid: 4 for kid in IDS}
    assert standin.stats()["calls"] == {kid: 4 for kid in IDS}


async def test_429_cools_only_that_key_and_the_reply_succeeds_on_another(
    spawn, bus, standin, redis, env
):
    await spawn(KEYS_COOLDOWN_SECONDS="300").started()
    hot = IDS[0]
    standin.config(faults=[{"kind": "429", "key": hot, "retry_delay_s": 20}])
    done = await send_all(bus, 6, "quota")
    assert {d["status"] for d in done} == {"completed"}
    assert not [r for r in bus.responses if r["status"] == "retrying"]
    assert standin.stats()["served_429"] == {hot: 1}
    prefix = env["REDIS_KEY_PREFIX"]
    flash = ":m:gemini-2.5-flash"
    cooling = float(await redis.hget(f"{prefix}keys:{hot}{flash}", "cooldown_until"))
    # Google's RetryInfo (20 s) wins over KEYS_COOLDOWN_SECONDS (300 s).
    assert 0 < cooling - time.time() <= 20
    for other in IDS[1:]:
        assert await redis.hget(f"{prefix}keys:{other}{flash}", "cooldown_until") is None
    # While it cools, the hot key is left alone (a call that raced the 429 may have used it).
    calls = standin.stats()["calls"][hot]
    assert hot not in {d["key_id"] for d in await send_all(bus, 6, "after")}
    assert standin.stats()["calls"][hot] == calls

    # A 429 without RetryInfo cools the key for KEYS_COOLDOWN_SECONDS.
    standin.config(faults=[{"kind": "429", "key": IDS[1], "retry_delay_s": None}])
    assert {d["status"] for d in await send_all(bus, 4, "no hint")} == {"completed"}
    cooling = float(await redis.hget(f"{prefix}keys:{IDS[1]}{flash}", "cooldown_until"))
    assert 250 < cooling - time.time() <= 300


async def test_invalid_key_is_disabled_and_never_used_again(spawn, bus, standin, redis, env):
    bad = IDS[2]
    standin.config(invalid_keys=[KEYS[2]])
    worker = await spawn().started()
    # One at a time first, so the bad key is met by exactly one call (least-used first).
    done = [(await send_all(bus, 1, f"one by one {i}"))[0] for i in range(3)]
    done += await send_all(bus, 6, "invalid")
    assert {d["status"] for d in done} == {"completed"}
    assert bad not in {d["key_id"] for d in done}
    assert standin.stats()["calls"][bad] == 1
    state = await redis.hgetall(f"{env['REDIS_KEY_PREFIX']}keys:{bad}")
    assert state[b"disabled"] == b"1" and b"API key not valid" in state[b"last_error"]

    worker.signal(15)
    assert await worker.wait_exit(15) == 0
    await spawn().started()
    done = await send_all(bus, 6, "restarted")
    assert {d["status"] for d in done} == {"completed"}
    assert standin.stats()["calls"][bad] == 1


async def test_all_keys_cooling_briefly_the_worker_waits(spawn, bus, standin):
    await spawn(KEYS_MAX_WAIT_SECONDS="5").started()
    standin.config(faults=[{"kind": "429", "key": kid, "retry_delay_s": 1} for kid in IDS])
    started = time.monotonic()
    (done,) = await send_all(bus, 1, "wait")
    assert done["status"] == "completed" and done["attempt"] == 0
    assert time.monotonic() - started >= 0.9
    assert not bus.of(done["request_id"], "retrying")
    assert standin.stats()["total_429"] == 3


async def test_all_keys_cooling_longer_goes_to_the_retry_queue(spawn, bus, standin):
    await spawn(KEYS_MAX_WAIT_SECONDS="0.2", QUEUE_RETRY_DELAYS="1.5").started()
    standin.config(faults=[{"kind": "429", "key": kid, "retry_delay_s": 1} for kid in IDS])
    (done,) = await send_all(bus, 1, "later")
    (retrying,) = bus.of(done["request_id"], "retrying")
    assert retrying["attempt"] == 1 and retrying["error"]["code"] == "keys_busy"
    assert retrying["next_attempt_at"].endswith("Z")
    assert done["status"] == "completed" and done["attempt"] == 1


async def test_keys_never_appear_in_logs_or_messages(spawn, bus, standin, redis, env):
    # Google's 403 names the key ("Consumer 'api_key:…' has been suspended").
    standin.config(invalid_keys=[KEYS[0]], denied_keys=[KEYS[1]],
                   faults=[{"kind": "429", "key": IDS[2]}])
    worker = await spawn().started()
    await send_all(bus, 4, "secret")
    state = [await redis.hgetall(f"{env['REDIS_KEY_PREFIX']}keys:{kid}") for kid in IDS]
    assert b"suspended" in state[1][b"last_error"]
    text = worker.log_text() + repr(bus.responses) + repr(state)
    for key in KEYS:
        assert key not in text
    events = [line["event"] for line in worker.log_lines()]
    assert "gemini_failed" in events


async def test_a_long_message_quoting_the_key_is_redacted_before_it_is_cut(
    spawn, bus, standin, redis, env
):
    """Cut first, redact second left the key's head (the part past the cut no longer matched)."""
    long_key = "k" + "0123456789abcdef" * 20  # the 403 quotes it from character 37 on
    standin.config(denied_keys=[key_id(long_key)])
    worker = await spawn(GEMINI_API_KEYS=long_key).started()
    body = request("quoted key")
    await bus.send(body)
    assert (await bus.final(body["request_id"]))["error"]["code"] == "no_usable_key"
    state = await redis.hgetall(f"{env['REDIS_KEY_PREFIX']}keys:{key_id(long_key)}")
    assert state[b"disabled"] == b"1" and b"[key]" in state[b"last_error"]
    text = worker.log_text() + repr(bus.responses) + repr(state)
    assert long_key[:24] not in text


async def test_key_index_comes_back_after_redis_loses_its_data(spawn, bus, redis, env):
    """A Redis restarted without persistence comes back empty: the admin view refills."""
    await spawn().started()
    prefix = env["REDIS_KEY_PREFIX"]
    index = f"{prefix}keys:index"
    assert set(await redis.hkeys(index)) == {kid.encode() for kid in IDS}
    lost = [key async for key in redis.scan_iter(match=f"{prefix}keys:*", count=500)]
    await redis.delete(*lost)

    async def republished() -> bool:
        return set(await redis.hkeys(index)) == {kid.encode() for kid in IDS}

    await wait_for(republished, within=15, what="the key index published again")
    for kid in IDS:
        assert await redis.hget(f"{prefix}keys:{kid}", "disabled") == b"0"
