"""Worker CPU time per reply, read from /proc (wall time means little on a shared machine).

    .venv/bin/python -m tests.cpu_per_reply [--replies 400] [--turns 1] [--callgrind]

One worker, the stand-in at zero latency (8 chunks per reply), real RabbitMQ and Redis, this
run's own queues and Redis prefix; prints the worker's user+system CPU ms per reply.

--callgrind runs the worker under valgrind's callgrind, instrumented only while the measured
replies run, and also prints the instructions it executed per reply: a count that a busy
machine barely moves (the worker's timers, ~1/s, still add a little per second of the run, and
under valgrind a run takes ~50 times longer).
"""

import argparse
import asyncio
import os
import re
import subprocess
import tempfile
from pathlib import Path

import redis.asyncio as aioredis

from .conftest import drop_everything, worker_env
from .support import REDIS_URL, Bus, StandIn, Worker, request, wait_for


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def history(turns: int, text: str) -> list[dict]:
    """`turns` turns of ~400 characters (150 turns ≈ HISTORY_MAX_CHARS), the last from the user."""
    filler = "lorem ipsum dolor sit amet " * 15
    contents = [
        {"role": "user" if (turns - i) % 2 else "model", "text": f"turn {i} {filler}"}
        for i in range(turns - 1)
    ]
    return [*contents, {"role": "user", "text": text}]


async def batch(bus: Bus, count: int, turns: int) -> list[str]:
    bodies = [request(contents=history(turns, f"reply {i}")) for i in range(count)]
    for body in bodies:
        await bus.send(body)
    ids = {b["request_id"] for b in bodies}

    def done() -> bool:
        return ids <= {r["request_id"] for r in bus.responses if r["status"] == "completed"}

    await wait_for(done, 600, f"{count} replies")
    return [b["chat_id"] for b in bodies]


async def delta_events(prefix: str, chat_ids: list[str]) -> int:
    """How many `message.delta` entries (one Redis script call each) the replies took."""
    client = aioredis.Redis.from_url(REDIS_URL)
    count = 0
    for chat_id in chat_ids:
        entries = await client.xrange(f"{prefix}events:{chat_id}")
        count += sum(fields[b"event"] == b"message.delta" for _, fields in entries)
    await client.aclose()
    return count


def callgrind(pid: int, command: str) -> str:
    return subprocess.run(
        ["callgrind_control", command, str(pid)], check=True, capture_output=True, text=True
    ).stdout


def instructions(out_prefix: Path, pid: int) -> int:
    """The instructions of the dump `callgrind_control -d` just wrote (the measured replies)."""
    dumps = sorted(out_prefix.parent.glob(f"{out_prefix.name}.{pid}.*"))
    text = dumps[-1].read_text(errors="replace")
    return int(re.search(r"^summary: (\d+)", text, re.M).group(1))


async def main(replies: int, turns: int, under_callgrind: bool) -> None:
    logs = Path(tempfile.mkdtemp(prefix="cpu_per_reply_"))
    standin = StandIn(logs, {"STANDIN_FIRST_CHUNK_MS": "0", "STANDIN_CHUNK_MS": "0"})
    env = {**worker_env(standin), "KEYS_MAX_PER_MINUTE": "100000"}
    if under_callgrind:  # ~50 times slower: no call may time out and take the retry path
        env["GEMINI_TIMEOUT_SECONDS"] = "600"
    bus = await Bus(env).open()
    out_prefix = logs / "callgrind"
    wrapper = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={out_prefix}.%p",
    ] if under_callgrind else None
    worker = Worker(env, logs / "worker.log", wrapper).start()
    try:
        await worker.started(within=300 if under_callgrind else 30)
        await batch(bus, 20, turns)  # warm-up: connections, imports, script loading
        assert worker.proc is not None
        pid = worker.proc.pid
        if under_callgrind:
            callgrind(pid, "--instr=on")
        before = cpu_seconds(pid)
        chat_ids = await batch(bus, replies, turns)
        spent = cpu_seconds(pid) - before
        counted = ""
        if under_callgrind:
            callgrind(pid, "--dump")
            per_reply = instructions(out_prefix, pid) / replies
            counted = f", {per_reply / 1e6:.2f} M instructions per reply (callgrind)"
        deltas = await delta_events(env["REDIS_KEY_PREFIX"], chat_ids)
        failed = worker.log_text().count('"gemini_failed"')
        if failed:
            counted += f", {failed} failed calls (not comparable)"
        print(f"{replies} replies, {turns}-turn history: worker CPU {spent:.2f} s, "
              f"{1000 * spent / replies:.1f} ms per reply, {deltas / replies:.1f} deltas per reply"
              f"{counted}")
    finally:
        worker.kill()
        await drop_everything(bus, env["REDIS_KEY_PREFIX"])
        standin.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replies", type=int, default=400)
    parser.add_argument("--turns", type=int, default=1)
    parser.add_argument("--callgrind", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.replies, args.turns, args.callgrind))
