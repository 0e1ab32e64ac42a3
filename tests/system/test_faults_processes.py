"""Faults in our own processes and in Google (the stand-in) under real load: every accepted
message still reaches exactly one final status with the stand-in's exact text."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from harness.api import ChatClient
from harness.launch import (
    TEST_KEYS,
    key_id,
    standin_config,
    standin_stats,
    wait_healthy,
)
from harness.scenario import hold, run_scenario

pytestmark = pytest.mark.system


def live_pids(stack, component: str) -> list[int]:
    return [p for p in stack.pids(component) if _alive(p)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


async def _until(check, timeout: float, what: str) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < end:
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s")


def test_worker_killed_mid_stream_repeatedly(fresh):
    """kill -9 one of two workers while replies stream, three times; the request goes back to
    the queue, the other worker redoes it, the browser sees a reset and then the whole reply."""
    stack = fresh.stack
    kills = []

    async def fault(traffic):
        for round_ in range(3):
            index = round_ % 2
            t0 = time.monotonic()
            await traffic.in_flight()
            t1 = time.monotonic()
            victim = stack.pids("worker")[index]
            await asyncio.to_thread(stack.stop, "worker", signal.SIGKILL, index)
            kills.append(victim)
            assert not _alive(victim)
            t2 = time.monotonic()
            # The other worker carries on alone while this one restarts.
            await asyncio.to_thread(stack.start, "worker")
            took = time.monotonic() - t2
            print(f"kill {round_}: waited {t1 - t0:.1f}s for a stream, restart took {took:.1f}s")
            assert len(live_pids(stack, "worker")) == 2

    traffic, verdict = asyncio.run(run_scenario(stack.url, fault, chats=24))
    assert len(kills) == 3
    resets = sum(rep.resets for rep in traffic.replies_seen())
    assert resets >= 1, "no reply was reset: no kill landed mid-stream"


def test_backend_restarted_under_load(fresh):
    """The backend goes away twice (SIGTERM, then kill -9) while chats send and stream: sends
    are retried by the client until accepted, event streams resume from Last-Event-ID with no
    gap or duplicate, and the outbox relay publishes what was committed but not yet sent."""
    stack = fresh.stack

    async def fault(traffic):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            await traffic.in_flight()
            await asyncio.to_thread(stack.stop, "backend", sig)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(stack.start, "backend")
            await asyncio.to_thread(wait_healthy, stack.url, 60)

    traffic, verdict = asyncio.run(run_scenario(stack.url, fault, chats=24))
    reconnects = sum(r.follower.connects - 1 for r in traffic.runs)
    assert reconnects >= len(traffic.runs), "event streams did not have to reconnect"


def test_proxy_goes_away_and_comes_back(fresh):
    """The outbound proxy dies for 4 s: calls fail with connection errors, requests wait in the
    retry queues (the user sees "retrying"), and all complete once it is back."""
    proxy = fresh.proxy
    before = proxy.requests_seen()

    async def fault(traffic):
        await traffic.in_flight()
        await asyncio.to_thread(proxy.stop)
        try:
            await hold(4)
        finally:
            await asyncio.to_thread(proxy.start)

    traffic, verdict = asyncio.run(run_scenario(fresh.url, fault, chats=24))
    assert proxy.requests_seen() - before >= verdict.completed, "Gemini calls bypassed the proxy"
    assert any("retrying" in rep.seen for rep in traffic.replies_seen()), (
        "no reply went through 'retrying' while the proxy was away"
    )


@pytest.mark.parametrize(
    "dials",
    [
        pytest.param(
            {"faults": [{"kind": "429", "count": 40, "retry_delay_s": 1}]}, id="429-storm"
        ),
        pytest.param({"fault_rate": 0.3}, id="503s"),
        pytest.param(
            {"faults": [{"kind": "midstream", "count": 12, "after_chunks": 3}]},
            id="midstream-errors",
        ),
    ],
)
def test_google_faults(fresh, dials):
    """Google answers 429 storms, 503s or breaks off mid-stream: keys cool down, requests are
    retried, half-streamed replies are reset, and every reply still completes exactly."""
    stack = fresh.stack

    async def fault(traffic):
        await asyncio.to_thread(standin_config, stack, **dials)
        await hold(6)

    traffic, verdict = asyncio.run(run_scenario(stack.url, fault, chats=24, start_after=1))
    stats = standin_stats(stack)
    if "faults" in dials:
        left = standin_config(stack)["faults"]
        assert not left, f"the stand-in's faults were not all used: {left}"
    if dials.get("faults", [{}])[0].get("kind") == "midstream":
        assert sum(rep.resets for rep in traffic.replies_seen()) >= 1
    if "fault_rate" in dials:
        assert stats["errors"].get("503", 0) >= 1, stats


def test_one_invalid_key_among_three(fresh):
    """One of three keys is invalid: it is disabled after its first refusal and never blamed
    again, no reply fails, and the admin view says so without showing any key."""
    stack = fresh.stack
    bad = TEST_KEYS[2]

    async def fault(traffic):
        await hold(5)

    async def no_fault(traffic):
        pass

    standin_config(stack, invalid_keys=[bad])
    traffic, verdict = asyncio.run(run_scenario(stack.url, fault, chats=24, start_after=1))
    stats = standin_stats(stack)

    async def admin_keys():
        async with ChatClient(stack.url) as admin:
            admin.email = fresh.admin_email
            await admin.login()
            r = await admin.http.get("/admin/keys", headers=admin.auth)
            assert r.status_code == 200, r.text
            return r.text, r.json()

    text, keys = asyncio.run(admin_keys())
    for key in TEST_KEYS:
        assert key not in text
    states = {k["id"]: k["state"] for k in keys}
    assert states[key_id(bad)] == "disabled", keys
    assert all(states[key_id(k)] != "disabled" for k in TEST_KEYS[:2]), keys

    # Once disabled, the key is never tried again.
    tried = stats["calls"].get(key_id(bad), 0)
    assert tried >= 1
    asyncio.run(run_scenario(stack.url, no_fault, chats=6, start_after=1, tail=0))
    assert standin_stats(stack)["calls"].get(key_id(bad), 0) == tried
