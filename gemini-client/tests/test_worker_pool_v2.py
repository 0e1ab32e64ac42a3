"""Key pool v2 through real workers and the stand-in: quotas per model and per day, failover in
seconds, keys that heal, keys added and removed live (docs/CONTRACTS.md, "Key pool v2")."""

import json
import time
from collections import Counter

from src.rate_limiter.key_pool import pacific_day
from src.rate_limiter.registry import fernet_for

from .conftest import KEYS
from .support import key_id, request, wait_for

IDS = [key_id(k) for k in KEYS]
PRO, FLASH = "gemini-2.5-pro", "gemini-2.5-flash"


async def send_all(bus, bodies: list[dict], within: float = 30) -> list[dict]:
    for body in bodies:
        await bus.send(body)
    return [await bus.final(body["request_id"], within) for body in bodies]


def model_hash(env: dict, kid: str, model: str) -> str:
    return f"{env['REDIS_KEY_PREFIX']}keys:{kid}:m:{model}"


async def test_pro_without_quota_leaves_flash_untouched(spawn, bus, standin, redis, env):
    standin.config(limits=f"{PRO}:100/min,0/day")
    await spawn().started()
    (pro,) = await send_all(bus, [request("pro please", model=PRO)])
    assert pro["status"] == "failed" and pro["error"]["code"] == "keys_busy"
    # One call per key found out; the retries asked nobody (every key rests until the reset).
    assert standin.stats()["calls_by_model"][PRO] == {kid: 1 for kid in IDS}
    _, day_end = pacific_day(time.time())
    for kid in IDS:
        state = await redis.hgetall(model_hash(env, kid, PRO))
        assert state[b"cooldown_reason"] == b"rpd"
        assert abs(float(state[b"cooldown_until"]) - day_end) < 5
        assert await redis.hget(model_hash(env, kid, FLASH), "cooldown_until") is None
    started = time.monotonic()
    flash = await send_all(bus, [request(f"flash {i}") for i in range(6)])
    assert {d["status"] for d in flash} == {"completed"}
    assert {d["model"] for d in flash} == {FLASH}
    assert time.monotonic() - started < 10
    assert not [r for d in flash for r in bus.of(d["request_id"], "retrying")]


async def test_per_day_quota_stops_that_model_and_flash_goes_on(spawn, bus, standin, redis, env):
    standin.config(limits=f"{PRO}:100/min,2/day")
    await spawn(KEYS_LIMITS=f"{PRO}:100/min,2/day").started()
    pro = await send_all(bus, [request(f"pro {i}", model=PRO) for i in range(8)])
    assert Counter(d["status"] for d in pro) == {"completed": 6, "failed": 2}
    # The pool knew the daily limit: exactly 2 calls per key, none over, no 429.
    stats = standin.stats()
    assert stats["calls_by_model"][PRO] == {kid: 2 for kid in IDS}
    assert stats["total_429"] == 0
    day, _ = pacific_day(time.time())
    for kid in IDS:
        assert await redis.get(f"{model_hash(env, kid, PRO)}:day:{day}") == b"2"
    capacity = await redis.hgetall(f"{env['REDIS_KEY_PREFIX']}pool:capacity:{PRO}")
    assert capacity[b"per_minute"] == b"0"
    flash = await send_all(bus, [request(f"flash {i}") for i in range(3)])
    assert {d["status"] for d in flash} == {"completed"}


async def test_one_503_costs_seconds_on_another_key(spawn, bus, standin):
    await spawn().started()
    standin.config(faults=[{"kind": "503"}])
    started = time.monotonic()
    (done,) = await send_all(bus, [request("brief outage")])
    assert done["status"] == "completed" and done["attempt"] == 0
    assert time.monotonic() - started < 5
    assert not bus.of(done["request_id"], "retrying")
    tried = [r["key_id"] for r in standin.requests()]
    assert len(tried) == 2 and tried[0] != tried[1] and tried[1] == done["key_id"]


async def test_a_bad_request_is_not_tried_on_other_keys(spawn, bus, standin):
    await spawn().started()
    standin.config(faults=[{"kind": "400"}])
    (done,) = await send_all(bus, [request("bad")])
    assert done["status"] == "failed" and done["error"]["code"] == "bad_request"
    assert standin.stats()["total_calls"] == 1


async def test_overloaded_model_falls_back(spawn, bus, standin):
    await spawn(GEMINI_FALLBACK_MODELS=f"{PRO}>{FLASH}").started()
    standin.config(faults=[{"kind": "503", "model": PRO, "count": 5}])
    (done,) = await send_all(bus, [request("fall back", model=PRO)])
    assert done["status"] == "completed" and done["model"] == FLASH
    assert [r["model"] for r in standin.requests()] == [PRO, FLASH]


async def test_a_refused_key_heals_when_google_accepts_it_again(spawn, bus, standin, redis, env):
    standin.config(denied_keys=[KEYS[0]])
    await spawn(KEYS_RECHECK_MINUTES="0.02").started()  # a probe 1.2 s after the refusal
    for i in range(3):  # one at a time: the least-used key order meets key 0 once
        await send_all(bus, [request(f"before {i}")])
    state = await redis.hgetall(f"{env['REDIS_KEY_PREFIX']}keys:{IDS[0]}")
    assert state[b"disabled"] == b"1" and state[b"disabled_reason"] == b"permission_denied"
    errors = await redis.lrange(f"{env['REDIS_KEY_PREFIX']}keys:{IDS[0]}:errors", 0, -1)
    assert json.loads(errors[0])["status"] == 403 and KEYS[0] not in errors[0].decode()
    await wait_for(lambda: standin.stats()["probes"].get(IDS[0]), 10, "a probe of key 0")
    assert await redis.hget(f"{env['REDIS_KEY_PREFIX']}keys:{IDS[0]}", "disabled") == b"1"
    standin.config(denied_keys=[])

    async def healed() -> bool:
        return await redis.hget(f"{env['REDIS_KEY_PREFIX']}keys:{IDS[0]}", "disabled") == b"0"

    await wait_for(healed, 15, "key 0 re-enabled by a probe")
    assert standin.stats()["calls_by_model"][FLASH][IDS[0]] == 1  # probes cost no generation
    done = await send_all(bus, [request(f"after {i}") for i in range(6)])
    assert IDS[0] in {d["key_id"] for d in done}


async def test_403_bodies_tell_why(spawn, bus, standin, redis, env):
    await spawn().started()
    kinds = {"403_api_not_enabled": "api_not_enabled", "403_billing": "billing",
             "400_region": "region"}
    standin.config(faults=[
        {"kind": kind, "key": kid} for kind, kid in zip(kinds, IDS, strict=True)
    ])
    for i in range(3):
        await send_all(bus, [request(f"why {i}")])
    reasons = [
        await redis.hget(f"{env['REDIS_KEY_PREFIX']}keys:{kid}", "disabled_reason") for kid in IDS
    ]
    assert [r.decode() for r in reasons] == list(kinds.values())


async def test_every_key_429_backs_the_pool_off_as_a_whole(spawn, bus, standin, redis, env):
    await spawn(KEYS_COOLDOWN_SECONDS="2", KEYS_MAX_WAIT_SECONDS="10").started()
    standin.config(throttled=True)
    body = request("throttled")
    await bus.send(body)
    throttled = f"{env['REDIS_KEY_PREFIX']}pool:throttled_until"
    await wait_for(lambda: redis.get(throttled), 10, "the pool backing off")
    standin.config(throttled=False)
    done = await bus.final(body["request_id"], 20)
    assert done["status"] == "completed" and done["attempt"] == 0
    assert standin.stats()["total_429"] == 3


async def test_a_request_waiting_for_a_slot_is_queued_not_retried(spawn, bus, standin, redis,
                                                                   env, events):
    await spawn(KEYS_MAX_WAIT_SECONDS="10").started()
    until = f"{time.time() + 3:.3f}"
    for kid in IDS:  # every key resting 3 s, as after a per-minute 429
        await redis.hset(model_hash(env, kid, FLASH), "cooldown_until", until)
    bodies = [request(f"wait {i}", user_id=f"user-{i}") for i in range(2)]
    done = await send_all(bus, bodies)
    assert [d["status"] for d in done] == ["completed"] * 2
    assert [d["attempt"] for d in done] == [0, 0]
    for body in bodies:
        assert not bus.of(body["request_id"], "retrying")
        statuses = [d for e, d in await events.of(body["chat_id"]) if e == "message.status"]
        assert statuses[0]["status"] == "queued" and statuses[-1]["status"] == "streaming"
        assert statuses[0]["queue_position"] in (1, 2) and statuses[0]["eta_seconds"] <= 4


async def registry_add(redis, env: dict, key: str) -> None:
    """What the backend does when an admin adds a key (docs/CONTRACTS.md)."""
    prefix = env["REDIS_KEY_PREFIX"]
    token = fernet_for(env["SECRET_KEY"]).encrypt(key.encode()).decode()
    entry = {"token": token, "label": "new one", "added_at": int(time.time())}
    await redis.hset(f"{prefix}keys:registry", key_id(key), json.dumps(entry))
    await redis.hset(f"{prefix}keys:index", key_id(key), "new one")
    await redis.incr(f"{prefix}keys:registry:version")


async def test_a_key_added_in_the_admin_page_is_used_within_seconds_by_every_replica(
    spawn, bus, standin, redis, env
):
    workers = [await spawn(GEMINI_API_KEYS=KEYS[0]).started() for _ in range(2)]
    new = "test-key-delta-0004"
    await registry_add(redis, env, new)

    def every_replica_knows() -> bool:
        return all(
            any(line.get("event") == "keys_changed" and key_id(new) in line.get("added", [])
                for line in w.log_lines())
            for w in workers
        )

    # The registry is polled every second; 5 s leaves room for a busy test machine.
    await wait_for(every_replica_knows, 5, "every worker to load the new key")
    done = await send_all(bus, [request(f"new key {i}") for i in range(8)])
    assert Counter(d["key_id"] for d in done) == {IDS[0]: 4, key_id(new): 4}
    for w in workers:
        assert new not in w.log_text()


async def test_a_removed_key_is_never_used_again(spawn, bus, standin, redis, env):
    await spawn().started()
    await send_all(bus, [request(f"warm {i}") for i in range(3)])
    prefix = env["REDIS_KEY_PREFIX"]
    await redis.sadd(f"{prefix}keys:removed", IDS[1])
    await redis.incr(f"{prefix}keys:registry:version")
    calls = standin.stats()["calls"][IDS[1]]
    done = await send_all(bus, [request(f"after {i}") for i in range(9)])
    assert {d["status"] for d in done} == {"completed"}
    assert IDS[1] not in {d["key_id"] for d in done}
    assert standin.stats()["calls"][IDS[1]] == calls
