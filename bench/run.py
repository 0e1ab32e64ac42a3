#!/usr/bin/env python3
"""`make bench`: how fast the pipeline is, against stacks it starts natively (scripts/stack.py),
loopback only, with the offline stand-in at fixed latencies. Prints figures; not a pass/fail test.

    tests/.venv/bin/python bench/run.py
        [all | overhead throughput quota perday overload baseline streams attachments] [--quick]
        [--profile] [--out bench/results/latest.json]

overhead    POST /messages -> first delta / message.completed, minus the stand-in's own first-chunk
            and total time, at 1, 20 and 100 concurrent chats
throughput  completed replies per second for 60 s with a zero-latency stand-in and ample keys,
            then on to 10,000 replies for the memory figures (backend and worker RSS)
quota       3 keys x (pro 5/min + flash 30/min), 3 workers, twice each model's quota offered for
            3 minutes: upstream calls per model as a share of its quota, and upstream 429s
perday      3 keys x 20/day: upstream calls for 100 messages (exactly 60), and upstream 429s
overload    3 keys x 10/min, twice the quota offered for 2 minutes: waits, order, retry queues
baseline    the same stand-in called straight from one asyncio loop with the google-genai SDK
streams     2,000 open idle event streams on one backend process: the memory each costs, and
            live replies (20 chats) timed without and then with the idle streams open
attachments 20 concurrent replies each with a 15 MB PDF through one worker: its peak RSS
            (bench/attachments.py)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "system"))

from attachments import REPLIES as REPLIES_WITH_FILES  # noqa: E402
from attachments import bench_attachments  # noqa: E402
from harness.api import ChatClient  # noqa: E402
from harness.launch import (  # noqa: E402
    TEST_KEYS,
    running_stack,
    standin_config,
    standin_stats,
    standin_url,
    tree_rss_mib,
    wait_healthy,
)
from harness.sse import ChatFollower  # noqa: E402

# The stand-in's fixed latencies for the latency figures: first chunk after FIRST ms, then
# CHUNKS-1 more chunks CHUNK ms apart.
FIRST_MS, CHUNKS, CHUNK_MS = 100, 8, 20
NOMINAL_FIRST = FIRST_MS / 1000
NOMINAL_TOTAL = (FIRST_MS + (CHUNKS - 1) * CHUNK_MS) / 1000
SETTLE_SECONDS = 8  # traffic before the latency figures, once the stack is up

BASE_ENV = {
    "GEMINI_API_KEYS": ",".join(TEST_KEYS),
    "KEYS_MAX_PER_MINUTE": "1000000",
    "USER_MESSAGES_PER_MINUTE": "0",
    "QUEUE_RETRY_DELAYS": "1,2,5",
    "STANDIN_FIRST_CHUNK_MS": str(FIRST_MS),
    "STANDIN_CHUNKS": str(CHUNKS),
    "STANDIN_CHUNK_MS": str(CHUNK_MS),
}


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_ms": ms(pct(values, 50)),
        "p99_ms": ms(pct(values, 99)),
        "max_ms": ms(max(values)) if values else None,
    }


@dataclass
class Sample:
    t_post: float
    t_first: float | None
    t_done: float | None
    status: str
    t_accepted: float | None = None  # when the 202 arrived


class Chats:
    """`n` chat slots over `users` accounts, each followed over SSE like a browser tab. A slot
    moves to a new chat every TURNS_PER_CHAT messages: a chat's whole history travels with each
    request, so endless chats would measure history size rather than the pipeline."""

    TURNS_PER_CHAT = 10

    def __init__(self, url: str, n: int, users: int):
        self.url, self.n, self.n_users = url, n, max(1, min(users, n))
        self.clients: list[ChatClient] = []
        self.chats: list[tuple[ChatClient, str, ChatFollower]] = []
        self.turns: Counter = Counter()
        self.errors: Counter = Counter()

    async def _new_chat(self, i: int) -> tuple[ChatClient, str, ChatFollower]:
        c = self.clients[i % self.n_users]
        chat_id = (await c.create_chat(f"bench #{i}"))["id"]
        follower = ChatFollower(c.http, chat_id, c.auth).start()
        await asyncio.wait_for(follower.connected.wait(), 60)
        return c, chat_id, follower

    async def __aenter__(self) -> Chats:
        async def user() -> ChatClient:
            c = ChatClient(self.url, timeout=30, max_connections=400)
            await c.register_and_login()
            return c

        self.clients = list(await asyncio.gather(*(user() for _ in range(self.n_users))))
        self.chats = list(await asyncio.gather(*(self._new_chat(i) for i in range(self.n))))
        return self

    async def __aexit__(self, *exc) -> None:
        for *_, follower in self.chats:
            await follower.stop()
        for c in self.clients:
            await c.aclose()

    async def one(self, index: int, text: str) -> Sample:
        if self.turns[index] >= self.TURNS_PER_CHAT:
            await self.chats[index][2].stop()
            self.chats[index] = await self._new_chat(index)
            self.turns[index] = 0
        self.turns[index] += 1
        client, chat_id, follower = self.chats[index]
        t0 = time.monotonic()
        r = await client.http.post(
            f"/chats/{chat_id}/messages",
            json={"content": text, "role": "user"},
            headers=client.auth,
        )
        if r.status_code != 202:
            self.errors[f"HTTP {r.status_code}"] += 1
            await asyncio.sleep(0.1)
            return Sample(t0, None, None, f"http-{r.status_code}")
        t_acc = time.monotonic()
        rep = follower.reply(r.json()["assistant_message"]["id"])
        try:
            await asyncio.wait_for(rep.settled.wait(), 60)
        except TimeoutError:
            self.errors["no final event within 60 s"] += 1
            return Sample(t0, rep.first_delta_at, None, "timeout", t_acc)
        if rep.final_status != "completed":
            self.errors[f"reply {rep.final_status}"] += 1
        return Sample(t0, rep.first_delta_at, rep.completed_at, rep.final_status or "?", t_acc)

    async def closed_loop(
        self,
        *,
        rounds: int | None = None,
        until: float | None = None,
        stop=None,
        on_sample=None,
        spread: float = 0.0,
    ) -> list[Sample]:
        """Every chat sends, waits for its reply, sends again: `rounds` times each, or until the
        monotonic time `until`, or until `stop()` says so. With `spread`, each chat starts at a
        random moment within that many seconds, as people do, instead of all in the same
        millisecond (with the stand-in's fixed latencies they would then stay in lockstep)."""
        samples: list[Sample] = []

        async def loop(i: int) -> None:
            if spread:
                await asyncio.sleep(random.uniform(0, spread))
            k = 0
            while True:
                if rounds is not None and k >= rounds:
                    return
                if until is not None and time.monotonic() >= until:
                    return
                if stop is not None and stop():
                    return
                s = await self.one(i, f"bench chat {i} round {k} {random.random():.6f}")
                samples.append(s)
                if on_sample:
                    on_sample(s)
                k += 1

        await asyncio.gather(*(loop(i) for i in range(self.n)))
        return samples


def latency_figures(samples: list[Sample]) -> dict:
    ok = [s for s in samples if s.status == "completed" and s.t_first and s.t_done]
    return {
        "replies": len(ok),
        "errors": len(samples) - len(ok),
        "post_answered": summary([s.t_accepted - s.t_post for s in ok]),
        "to_first_delta": summary([s.t_first - s.t_post for s in ok]),
        "to_completed": summary([s.t_done - s.t_post for s in ok]),
        "overhead_first_delta": summary([s.t_first - s.t_post - NOMINAL_FIRST for s in ok]),
        "overhead_completed": summary([s.t_done - s.t_post - NOMINAL_TOTAL for s in ok]),
    }


def pids_of(stack, component: str) -> list[int]:
    return stack.pids(component)


def rss(stack) -> dict:
    return {
        c: round(sum(tree_rss_mib(p) for p in pids_of(stack, c)), 1) for c in ("backend", "worker")
    }


_TICK = os.sysconf("SC_CLK_TCK")
_SERVICES = {"postgres": "postgresql", "redis-server": "redis", "beam.smp": "rabbitmq"}


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(k) for k in kids] + [g for k in kids for g in _children(int(k))]


def cpu_snapshot(stack) -> dict[str, float]:
    """CPU seconds used so far by each part: the stack's processes, the shared services, this
    load generator, and everything else on the machine (other people's work)."""
    seen: set[int] = set()
    out: Counter = Counter()
    for component in ("backend", "worker", "standin", "nginx"):
        for pid in pids_of(stack, component):
            for p in [pid, *_children(pid)]:
                seen.add(p)
                out[component] += _cpu_of(p)
    me = os.getpid()
    seen.add(me)
    out["load generator"] += _cpu_of(me)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in seen:
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in _SERVICES:
            out[_SERVICES[comm]] += _cpu_of(int(entry.name))
    total = Path("/proc/stat").read_text().split("\n")[0].split()[1:]
    out["machine busy"] = (sum(int(v) for v in total) - int(total[3]) - int(total[4])) / _TICK
    return dict(out)


def cpu_per_reply(before: dict, after: dict, replies: int, seconds: float) -> dict:
    """Cores used and CPU ms per reply of each part; "others" is the rest of the machine's busy
    time: other people's work on the shared machine, and processes that ended meanwhile."""
    used = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    used["others"] = used["machine busy"] - sum(v for k, v in used.items() if k != "machine busy")
    return {
        k: {"cores": round(v / seconds, 2), "ms_per_reply": round(1000 * v / max(1, replies), 2)}
        for k, v in used.items()
    }


def profile(stack, seconds: int, out_dir: Path) -> dict:
    """py-spy on every backend and worker process for `seconds`; returns the top own-time
    frames of each, and leaves the raw collapsed stacks in out_dir."""
    procs = []
    for component in ("backend", "worker"):
        for i, pid in enumerate(pids_of(stack, component)):
            out = out_dir / f"profile-{component}-{i}.txt"
            procs.append(
                (
                    component,
                    i,
                    out,
                    subprocess.Popen(
                        [
                            str(ROOT / "tests/.venv/bin/py-spy"),
                            "record",
                            "--pid",
                            str(pid),
                            "--duration",
                            str(seconds),
                            "--rate",
                            "50",
                            "--format",
                            "raw",
                            "--nonblocking",
                            "--subprocesses",  # uvicorn's worker processes
                            "-o",
                            str(out),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    ),
                )
            )
    tops = {}
    for component, i, out, proc in procs:
        _, err = proc.communicate(timeout=seconds + 60)
        if proc.returncode or not out.exists():
            tops[f"{component}-{i}"] = f"py-spy failed: {err.decode()[-300:]}"
            continue
        tops[f"{component}-{i}"] = top_frames(out)
    return tops


def _frame_file(frame: str) -> str:
    return frame.rpartition(" (")[2].split(":")[0]


def _own_code(frame: str) -> bool:
    return _frame_file(frame).startswith(("app/", "src/"))


def top_frames(raw: Path, n: int = 10) -> list[str]:
    """Where a process spent its CPU, from py-spy's collapsed stacks: by the outermost function
    of our own code on the stack (which request or task), by the innermost one (which of our
    calls, with the libraries beneath it), and by the leaf frame."""
    outer, inner, leaf, total = Counter(), Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        count = int(count)
        total += count
        frames = [f.split(":")[0] + ")" for f in stack.split(";")]
        ours = [f for f in frames if _own_code(f)]
        outer[ours[0] if ours else "(no code of ours: server, event loop, libraries)"] += count
        inner[ours[-1] if ours else "(no code of ours: server, event loop, libraries)"] += count
        leaf[frames[-1]] += count
    lines = [f"{total} samples"]
    for title, counter in (
        ("outermost own frame", outer),
        ("innermost own frame", inner),
        ("leaf frame", leaf),
    ):
        lines.append(f"by {title}:")
        lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in counter.most_common(n)]
    return lines


# ------------------------------------------------------------------------------------- parts
async def bench_overhead(url: str, quick: bool) -> dict:
    """Each concurrency twice: chats starting at random moments within one reply's time (the
    figure the target is about), and all chats sending in the same millisecond (lockstep: the
    worst case, every step of the pipeline meets a burst of `conc` at once)."""
    results = {}
    # A stack just started still does one-off work in its first seconds (the outbox relay's
    # first scan 3 s in, compiling its statements on the event loop): not what is measured.
    async with Chats(url, 1, users=1) as chats:
        await chats.closed_loop(until=time.monotonic() + SETTLE_SECONDS)
    for conc, rounds in ((1, 60), (20, 12), (100, 5)):
        if quick:
            rounds = max(2, rounds // 4)
        for name, spread in (("", NOMINAL_TOTAL), ("_lockstep", 0.0)):
            if conc == 1 and spread == 0.0:
                continue  # one chat has nothing to be in step with
            async with Chats(url, conc, users=min(conc, 10)) as chats:
                # Warm-up: connections, statement caches, and every backend and worker process
                # having served (one round left a cold process's first request in the p99).
                await chats.closed_loop(rounds=3)
                samples = await chats.closed_loop(rounds=rounds, spread=spread)
            key = f"{conc}_chats{name}"
            results[key] = latency_figures(samples)
            label = f"{conc:3d} chats{' in lockstep' if name else ''}"
            print(f"  overhead at {label}: {fmt_latency(results[key])}", flush=True)
    return results


def fmt_latency(r: dict) -> str:
    f, c = r["overhead_first_delta"], r["overhead_completed"]
    return (
        f"first delta +{f['p50_ms']} ms p50 / +{f['p99_ms']} ms p99; completed "
        f"+{c['p50_ms']} ms p50 / +{c['p99_ms']} ms p99 ({r['replies']} replies, "
        f"{r['errors']} errors)"
    )


async def bench_sustained(stack, quick: bool, do_profile: bool, out_dir: Path) -> dict:
    """Zero-latency stand-in: 60 s of closed-loop load for throughput, then on to 10,000 replies
    for memory."""
    standin_config(stack, first_chunk_ms=0, chunk_ms=0)
    seconds = 15 if quick else 60
    target = 1500 if quick else 10_000
    conc = 48
    done = Counter()
    memory = {}

    def on_sample(s: Sample) -> None:
        if s.status == "completed":
            done["n"] += 1
            if done["n"] in (1000, target):
                memory[f"after_{done['n']}"] = rss(stack)

    async with Chats(stack.url, conc, users=8) as chats:
        memory["start"] = rss(stack)
        await chats.closed_loop(rounds=1, on_sample=on_sample)
        calls0 = standin_stats(stack)["total_calls"]
        cpu0 = cpu_snapshot(stack)
        t0 = time.monotonic()
        prof = None
        if do_profile:
            prof = asyncio.get_running_loop().run_in_executor(
                None, profile, stack, min(20, seconds - 5), out_dir
            )
        samples = await chats.closed_loop(until=t0 + seconds, on_sample=on_sample)
        elapsed = time.monotonic() - t0
        cpu1 = cpu_snapshot(stack)
        calls = standin_stats(stack)["total_calls"] - calls0
        completed = [s for s in samples if s.status == "completed"]
        throughput = {
            "concurrent_chats": conc,
            "seconds": round(elapsed, 1),
            "completed": len(completed),
            "replies_per_second": round(len(completed) / elapsed, 1),
            "errors": len(samples) - len(completed),
            "error_kinds": dict(chats.errors),
            "upstream_calls": calls,
            "to_completed": summary([s.t_done - s.t_post for s in completed]),
            "cpu": cpu_per_reply(cpu0, cpu1, len(completed), elapsed),
        }
        print(
            f"  throughput: {throughput['replies_per_second']}/s over {elapsed:.0f} s "
            f"({len(completed)} replies, {throughput['errors']} errors)",
            flush=True,
        )
        for part, use in sorted(throughput["cpu"].items(), key=lambda kv: -kv[1]["cores"]):
            print(
                f"    cpu {part:16s} {use['cores']:5.2f} cores  {use['ms_per_reply']:6.2f} ms/reply"
            )
        profiles = await prof if prof else None
        await chats.closed_loop(stop=lambda: done["n"] >= target, on_sample=on_sample)
    memory["replies"] = done["n"]
    a, b = memory.get("after_1000"), memory.get(f"after_{target}")
    if a and b:
        memory["growth_pct"] = {c: round(100 * (b[c] - a[c]) / a[c], 1) for c in a}
    print(f"  memory (MiB): {memory}", flush=True)
    return {"throughput": throughput, "memory": memory, "profile": profiles}


IDLE_STREAMS = 2000
IDLE_USERS = 10


async def bench_streams(stack, quick: bool) -> dict:
    """Idle streams straight to the one backend process (nginx caps streams per address), each
    read like a browser tab; live replies go through nginx as usual."""
    backend = f"http://127.0.0.1:{stack.ports['backend']}"
    pid = pids_of(stack, "backend")[0]
    rounds = 3 if quick else 10
    live_chats = 20

    async def live() -> dict:
        async with Chats(stack.url, live_chats, users=5) as chats:
            await chats.closed_loop(rounds=2)
            return latency_figures(await chats.closed_loop(rounds=rounds, spread=NOMINAL_TOTAL))

    result: dict = {"idle_streams": IDLE_STREAMS, "live_chats": live_chats}
    async with Chats(stack.url, 1, users=1) as warm:
        await warm.closed_loop(until=time.monotonic() + SETTLE_SECONDS)
    result["live_without_idle"] = await live()
    print(f"  live replies, no idle streams: {fmt_latency(result['live_without_idle'])}")

    users = []
    for _ in range(IDLE_USERS):
        c = ChatClient(backend, timeout=30)
        await c.register_and_login()
        users.append(c)
    chats = [await c.create_chat("idle") for c in users]
    rss_before = tree_rss_mib(pid)
    http = httpx.AsyncClient(
        base_url=backend + "/api",
        timeout=httpx.Timeout(30, read=None),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
    )
    statuses: Counter = Counter()
    frames: Counter = Counter()
    stop = asyncio.Event()

    async def idle(i: int) -> None:
        c, chat = users[i % IDLE_USERS], chats[i % IDLE_USERS]
        try:
            async with http.stream("GET", f"/chats/{chat['id']}/events", headers=c.auth) as r:
                statuses[r.status_code] += 1
                if r.status_code != 200:
                    return
                async for line in r.aiter_lines():
                    if line.startswith(":"):
                        frames["heartbeat"] += 1
                    if stop.is_set():
                        return
        except httpx.HTTPError as error:
            statuses[type(error).__name__] += 1

    t0 = time.monotonic()
    tasks = []
    for i in range(IDLE_STREAMS):
        tasks.append(asyncio.create_task(idle(i)))
        if i % 100 == 99:
            await asyncio.sleep(0.2)  # tabs open over a few seconds, not in one millisecond
    deadline = time.monotonic() + 120
    while sum(statuses.values()) < IDLE_STREAMS and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    result["open_seconds"] = round(time.monotonic() - t0, 1)
    result["answers"] = dict(statuses)
    await asyncio.sleep(5)
    rss_after = tree_rss_mib(pid)
    result["backend_rss_mib"] = {"before": round(rss_before, 1), "with_idle": round(rss_after, 1)}
    result["kib_per_stream"] = round(1024 * (rss_after - rss_before) / IDLE_STREAMS, 1)
    print(
        f"  {statuses[200]}/{IDLE_STREAMS} idle streams open in {result['open_seconds']} s "
        f"({dict(statuses)}); backend RSS {rss_before:.0f} -> {rss_after:.0f} MiB, "
        f"{result['kib_per_stream']} KiB per stream",
        flush=True,
    )
    result["live_with_idle"] = await live()
    print(f"  live replies, {IDLE_STREAMS} idle streams: {fmt_latency(result['live_with_idle'])}")
    await asyncio.sleep(16)  # every idle stream has had its heartbeat by now
    result["heartbeats_seen"] = frames["heartbeat"]
    result["still_open"] = sum(1 for t in tasks if not t.done())
    print(f"  {result['still_open']} still open, {frames['heartbeat']} heartbeats", flush=True)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await http.aclose()
    for c in users:
        await c.aclose()
    return result


PRO, FLASH = "gemini-2.5-pro", "gemini-2.5-flash"
QUOTA_LIMITS = {
    PRO: 5,
    FLASH: 30,
}  # per key per minute, for the worker and the stand-in


async def _clients(url: str, n: int = 6) -> list[ChatClient]:
    clients = []
    for _ in range(n):
        c = ChatClient(url, timeout=30)
        await c.register_and_login()
        clients.append(c)
    return clients


async def _offer(
    clients,
    chats,
    rate: float,
    seconds: float,
    accepted: Counter,
    sent: dict,
    refused: dict | None = None,
):
    """Open loop: message i of `chats` sent at t0 + i / rate; returns the send tasks.
    `refused`, when given, gets i -> (seconds the refusal took, its Retry-After) for non-202s."""

    async def send(i: int) -> None:
        c = clients[i % len(clients)]
        sent[i] = time.time()
        r = await c.http.post(
            f"/chats/{chats[i]['id']}/messages",
            json={"content": f"quota {i}", "role": "user"},
            headers=c.auth,
        )
        accepted[r.status_code] += 1
        if refused is not None and r.status_code != 202:
            refused[i] = (time.time() - sent[i], r.headers.get("retry-after"))

    t0 = time.monotonic()
    tasks = []
    for i in range(len(chats)):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.sleep(max(0.0, t0 + seconds - time.monotonic()))
    return tasks


async def bench_quota(url: str, stack, quick: bool) -> dict:
    """3 keys x (pro 5/min + flash 30/min), twice each model's quota offered at an even rate (a
    fresh chat per message), 3 minutes: upstream calls per model as a share of its quota."""
    keys = 3
    minutes = 0.5 if quick else 3.0
    rates = {m: 2 * keys * per / 60 for m, per in QUOTA_LIMITS.items()}  # messages per second
    clients = await _clients(url)
    order = []  # the model of each message, interleaved at the models' rates
    for m, rate in rates.items():
        order += [(i / rate, m) for i in range(int(rate * minutes * 60))]
    order.sort()
    chats = await asyncio.gather(
        *(clients[i % 6].create_chat(f"quota #{i}", model=m) for i, (_, m) in enumerate(order))
    )
    before = standin_stats(stack)
    accepted: Counter = Counter()
    tasks = await _offer(clients, chats, sum(rates.values()), minutes * 60, accepted, {})
    after = standin_stats(stack)
    await asyncio.gather(*tasks)
    for c in clients:
        await c.aclose()

    def used(stats: dict, what: str, model: str) -> int:
        return sum(stats[what].get(model, {}).values())

    result = {
        "keys": keys,
        "workers": 3,
        "minutes": minutes,
        "accepted": dict(accepted),
    }
    line = []
    for m, per in QUOTA_LIMITS.items():
        quota = keys * per * minutes
        calls = used(after, "calls_by_model", m) - used(before, "calls_by_model", m)
        served_429 = used(after, "served_429_by_model", m) - used(before, "served_429_by_model", m)
        ok = calls - served_429
        result[m] = {
            "per_key_per_minute": per,
            "offered_messages": sum(1 for _, x in order if x == m),
            "quota_calls": quota,
            "upstream_calls": calls,
            "upstream_429": served_429,
            "quota_used_pct": round(100 * ok / quota, 1),
        }
        line.append(f"{m} {ok}/{quota:.0f} = {result[m]['quota_used_pct']}%, {served_429} x 429")
    print("  quota: " + "; ".join(line), flush=True)
    return result


async def bench_perday(url: str, stack, quick: bool) -> dict:
    """A daily limit of 20 per key, 3 keys, 100 messages: exactly 60 upstream calls, none over."""
    clients = await _clients(url)
    n = 100
    chats = await asyncio.gather(*(clients[i % 6].create_chat(f"day #{i}") for i in range(n)))
    before = standin_stats(stack)
    accepted: Counter = Counter()
    tasks = await _offer(clients, chats, 10, n / 10, accepted, {})
    await asyncio.gather(*tasks)
    await asyncio.sleep(15)  # replies in flight land; the rest wait in the retry queue
    after = standin_stats(stack)
    completed = 0
    for i, chat in enumerate(chats):
        reply = (await clients[i % 6].messages(chat["id"]))[-1]
        completed += reply["status"] == "completed"
    for c in clients:
        await c.aclose()
    result = {
        "keys": 3,
        "per_key_per_day": 20,
        "offered_messages": n,
        "accepted": dict(accepted),
        "upstream_calls": after["total_calls"] - before["total_calls"],
        "upstream_429": after["total_429"] - before["total_429"],
        "completed": completed,
    }
    print(
        f"  per day: {result['upstream_calls']} upstream calls for 3 keys x 20/day, "
        f"{result['upstream_429']} x 429, {completed} replies completed",
        flush=True,
    )
    return result


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


async def bench_overload(url: str, stack, quick: bool) -> dict:
    """3 keys x 10/min, twice the quota offered for 2 minutes from many users: every reply
    waits in line for the pool's next free slot (no retry queue), in arrival order."""
    keys, per_minute = 3, 10
    minutes = 0.5 if quick else 2.0
    rate = 2 * keys * per_minute / 60
    n = int(rate * minutes * 60)
    clients = await _clients(url, 12)
    chats = await asyncio.gather(*(clients[i % 12].create_chat(f"over #{i}") for i in range(n)))
    before = standin_stats(stack)
    accepted: Counter = Counter()
    sent: dict[int, float] = {}
    refused: dict[int, tuple[float, str | None]] = {}
    tasks = await _offer(clients, chats, rate, minutes * 60, accepted, sent, refused)
    await asyncio.gather(*tasks)
    end = time.monotonic() + 600
    replies: dict[int, dict] = {}
    # A send refused by admission control stored nothing: only accepted ones are waited for.
    waiting = [i for i in range(n) if i not in refused]
    while len(replies) < len(waiting) and time.monotonic() < end:
        for i in waiting:
            chat = chats[i]
            if i not in replies:
                reply = (await clients[i % 12].messages(chat["id"]))[-1]
                if reply["status"] in ("completed", "failed", "cancelled"):
                    replies[i] = reply
        await asyncio.sleep(2)
    after = standin_stats(stack)
    for c in clients:
        await c.aclose()
    done = {i: r for i, r in replies.items() if r["status"] == "completed"}
    waits = {i: _ts(r["completed_at"]) - sent[i] for i, r in done.items()}
    by_finish = sorted(done, key=lambda i: _ts(done[i]["completed_at"]))
    # How far a reply finished from its arrival rank: 0 = strict arrival order.
    displacement = [abs(rank - sorted(done).index(i)) for rank, i in enumerate(by_finish)]
    result = {
        "keys": keys,
        "per_key_per_minute": per_minute,
        "minutes": minutes,
        "offered_messages": n,
        "accepted": dict(accepted),
        "completed": len(done),
        "failed": sum(r["status"] == "failed" for r in replies.values()),
        "retried": sum(r["attempt"] > 0 for r in replies.values()),
        "upstream_calls": after["total_calls"] - before["total_calls"],
        "upstream_429": after["total_429"] - before["total_429"],
        "wait_s": {
            "p50": round(pct(list(waits.values()), 50) or 0, 1),
            "max": round(max(waits.values(), default=0), 1),
        },
        "order_max_displacement": max(displacement, default=0),
        "refused": len(refused),
        "refused_answer_s_max": round(max((t for t, _ in refused.values()), default=0), 3),
        "refused_without_retry_after": sum(ra is None for _, ra in refused.values()),
    }
    print(
        f"  overload: {len(done)}/{n} completed, {result['retried']} via a retry queue, "
        f"{result['upstream_429']} x 429, wait p50 {result['wait_s']['p50']} s max "
        f"{result['wait_s']['max']} s, finish order off arrival order by at most "
        f"{result['order_max_displacement']}; {len(refused)} refused at the send (slowest "
        f"answer {result['refused_answer_s_max']} s, "
        f"{result['refused_without_retry_after']} without Retry-After)",
        flush=True,
    )
    return result


async def bench_baseline(base: str, quick: bool) -> dict:
    """The stand-in straight from one asyncio loop through google-genai, configured as the worker
    configures it (v1beta, one pooled httpx client, no SDK retries)."""
    from google import genai
    from google.genai import types

    http = httpx.AsyncClient(
        trust_env=False,
        timeout=60,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
    )
    client = genai.Client(
        api_key=TEST_KEYS[0],
        http_options=types.HttpOptions(
            base_url=base,
            api_version="v1beta",
            httpx_async_client=http,
            httpx_client=httpx.Client(trust_env=False),
        ),
    )

    async def call(text: str) -> tuple[float, float, float]:
        t0 = time.monotonic()
        first = None
        chunks = await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents=text
        )
        async for chunk in chunks:
            if first is None and chunk.text:
                first = time.monotonic()
        return t0, first, time.monotonic()

    async def conc_loop(conc: int, rounds: int = 0, until: float = 0) -> list[tuple]:
        out = []

        async def loop(i: int) -> None:
            k = 0
            while (rounds and k < rounds) or (until and time.monotonic() < until):
                out.append(await call(f"direct {i} {k} {random.random()}"))
                k += 1

        await asyncio.gather(*(loop(i) for i in range(conc)))
        return out

    results = {}
    await http.post(
        f"{base}/_standin/config",
        json={"first_chunk_ms": FIRST_MS, "chunk_ms": CHUNK_MS, "chunks": CHUNKS},
    )
    for conc, rounds in ((1, 60), (20, 12), (100, 5)):
        if quick:
            rounds = max(2, rounds // 4)
        await conc_loop(conc, rounds=1)
        res = await conc_loop(conc, rounds=rounds)
        results[f"{conc}_chats"] = {
            "calls": len(res),
            "to_first_chunk": summary([f - t for t, f, _ in res]),
            "to_end": summary([e - t for t, _, e in res]),
            "overhead_first_chunk": summary([f - t - NOMINAL_FIRST for t, f, _ in res]),
            "overhead_end": summary([e - t - NOMINAL_TOTAL for t, _, e in res]),
        }
        r = results[f"{conc}_chats"]
        print(
            f"  direct SDK at {conc:3d} concurrent: first chunk +"
            f"{r['overhead_first_chunk']['p50_ms']} ms p50, end +{r['overhead_end']['p50_ms']}"
            f" ms p50",
            flush=True,
        )
    await http.post(f"{base}/_standin/config", json={"first_chunk_ms": 0, "chunk_ms": 0})
    seconds = 10 if quick else 20
    await conc_loop(48, rounds=1)
    t0 = time.monotonic()
    res = await conc_loop(48, until=t0 + seconds)
    elapsed = time.monotonic() - t0
    results["throughput"] = {
        "concurrent": 48,
        "seconds": round(elapsed, 1),
        "calls": len(res),
        "calls_per_second": round(len(res) / elapsed, 1),
    }
    print(f"  direct SDK throughput: {results['throughput']['calls_per_second']}/s", flush=True)
    await http.aclose()
    return results


# ------------------------------------------------------------------------------------- main
def machine() -> dict:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit,
        "loadavg_at_start": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("parts", nargs="*", default=["all"])
    parser.add_argument("--quick", action="store_true", help="short runs, to try the bench")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the backend and workers during the throughput run",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench/results/latest.json"))
    args = parser.parse_args()
    parts = (
        {
            "overhead",
            "throughput",
            "quota",
            "perday",
            "overload",
            "baseline",
            "streams",
            "attachments",
        }
        if "all" in args.parts
        else set(args.parts)
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "machine": machine(),
        "standin_latency": {"first_chunk_ms": FIRST_MS, "chunks": CHUNKS, "chunk_ms": CHUNK_MS},
    }
    t_start = time.monotonic()

    if parts & {"overhead", "throughput"}:
        print(f"pipeline stack: backend, {args.workers} workers, stand-in, nginx", flush=True)
        with running_stack("bench", workers=args.workers, env=BASE_ENV) as stack:
            wait_healthy(stack.url)
            report["pipeline_workers"] = args.workers
            if "overhead" in parts:
                report["overhead"] = asyncio.run(bench_overhead(stack.url, args.quick))
            if "throughput" in parts:
                report.update(
                    asyncio.run(bench_sustained(stack, args.quick, args.profile, out.parent))
                )
    quota_env = {
        **BASE_ENV,
        "QUEUE_RETRY_DELAYS": "60,600,3600,86400",
        "QUEUE_MAX_RETRIES": "4",
    }
    if "quota" in parts:
        limits = ";".join(f"{m}:{per}/min" for m, per in QUOTA_LIMITS.items())
        print(
            f"quota stack: 3 keys x ({limits}), 3 workers, the stand-in enforcing the same",
            flush=True,
        )
        env = {**quota_env, "KEYS_LIMITS": limits, "STANDIN_LIMITS": limits}
        with running_stack("benchquota", workers=3, env=env) as stack:
            wait_healthy(stack.url)
            report["quota"] = asyncio.run(bench_quota(stack.url, stack, args.quick))
    if "perday" in parts:
        limits = f"{FLASH}:1000/min,20/day"
        print(
            f"per-day stack: 3 keys x {limits}, 3 workers, the stand-in enforcing it",
            flush=True,
        )
        env = {**quota_env, "KEYS_LIMITS": limits, "STANDIN_LIMITS": limits}
        with running_stack("benchday", workers=3, env=env) as stack:
            wait_healthy(stack.url)
            report["perday"] = asyncio.run(bench_perday(stack.url, stack, args.quick))
    if "overload" in parts:
        print(
            "overload stack: 3 keys x 10/min, 3 workers, 2x the quota offered",
            flush=True,
        )
        env = {**quota_env, "KEYS_MAX_PER_MINUTE": "10", "STANDIN_RPM": "10"}
        with running_stack("benchover", workers=3, env=env) as stack:
            wait_healthy(stack.url)
            report["overload"] = asyncio.run(bench_overload(stack.url, stack, args.quick))
    if "streams" in parts:
        print(f"streams stack: one backend process, {IDLE_STREAMS} idle streams", flush=True)
        env = {**BASE_ENV, "WEB_CONCURRENCY": "1", "USER_MAX_OPEN_STREAMS": str(IDLE_STREAMS)}
        with running_stack("benchstreams", workers=args.workers, env=env) as stack:
            wait_healthy(stack.url)
            report["streams"] = asyncio.run(bench_streams(stack, args.quick))
    if "attachments" in parts:
        print(f"attachments stack: one worker, {REPLIES_WITH_FILES} replies with a 15 MB PDF each")
        with running_stack("benchfiles", workers=1, env=BASE_ENV) as stack:
            wait_healthy(stack.url)
            report["attachments"] = asyncio.run(bench_attachments(stack, args.quick))
    if "baseline" in parts:
        print("baseline: the stand-in alone, called through google-genai", flush=True)
        with running_stack("benchdirect", components=("standin",), env=BASE_ENV) as stack:
            report["baseline"] = asyncio.run(bench_baseline(standin_url(stack), args.quick))

    if "overhead" in report and "baseline" in report:
        ratio = {}
        for conc in ("1_chats", "20_chats", "100_chats"):
            p, d = report["overhead"][conc], report["baseline"][conc]
            ratio[conc] = {
                "first_delta_p50_pipeline_over_direct": round(
                    p["to_first_delta"]["p50_ms"] / d["to_first_chunk"]["p50_ms"], 2
                ),
                "completed_p50_pipeline_over_direct": round(
                    p["to_completed"]["p50_ms"] / d["to_end"]["p50_ms"], 2
                ),
            }
        report["ratio_to_direct"] = ratio
    if "throughput" in report and "baseline" in report:
        report["throughput_ratio_to_direct"] = round(
            report["throughput"]["replies_per_second"]
            / report["baseline"]["throughput"]["calls_per_second"],
            2,
        )
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    report["wall_seconds"] = round(time.monotonic() - t_start)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
