#!/usr/bin/env python3
"""Where one reply's time goes: one chat, replies one after another, each step timed from the
Redis stream ids of the events it wrote (milliseconds since the epoch, Redis's clock, the same
machine's as the client's) against the moment the client started its POST.

    tests/.venv/bin/python bench/timeline.py [--sends 40]

Prints, per reply and as medians, ms after the POST started: the backend's `pending` event
(written once the send committed), the 202, the worker's `streaming` event, the first delta's
append and its arrival at the client, both less the stand-in's 100 ms to its first chunk."""

import argparse
import asyncio
import statistics
import sys
import time

import run as bench
from harness.launch import running_stack, wait_healthy
from redis import Redis

COLUMNS = ("pending event", "202", "streaming event", "delta appended", "delta at client")


async def timeline(stack, sends: int) -> list[tuple[float, ...]]:
    redis = Redis.from_url(stack.env["REDIS_URL"])
    events_key = stack.env["REDIS_KEY_PREFIX"] + "events:"
    rows = []
    async with bench.Chats(stack.url, 1, users=1) as chats:
        await chats.closed_loop(until=time.monotonic() + bench.SETTLE_SECONDS)
        for k in range(sends):
            wall, mono = time.time(), time.monotonic()
            sample = await chats.one(0, f"timeline {k}")
            entries = redis.xrange(events_key + chats.chats[0][1])
            start = max(i for i, (_, f) in enumerate(entries) if b'"pending"' in f[b"data"])
            mine = entries[start:]

            streaming = next(_at(e, wall) for e, f in mine if b'"streaming"' in f[b"data"])
            delta = next(_at(e, wall) for e, f in mine if f[b"event"] == b"message.delta")
            rows.append(
                (
                    _at(mine[0][0], wall),
                    (sample.t_accepted - mono) * 1000,
                    streaming,
                    delta - bench.FIRST_MS,
                    (sample.t_first - mono) * 1000 - bench.FIRST_MS,
                )
            )
    return rows


def _at(entry_id: bytes, wall: float) -> float:
    """ms from `wall` (seconds since the epoch) to when Redis wrote the entry."""
    return int(entry_id.split(b"-")[0]) - wall * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=40)
    args = parser.parse_args()
    with running_stack("benchtimeline", workers=2, env=bench.BASE_ENV) as stack:
        wait_healthy(stack.url)
        rows = asyncio.run(timeline(stack, args.sends))
    print("ms after the POST started (the last two less the stand-in's 100 ms):")
    print("        " + "".join(f"{name:>17s}" for name in COLUMNS))
    for row in rows:
        print("        " + "".join(f"{v:17.1f}" for v in row))
    medians = [statistics.median(column) for column in zip(*rows)]
    print("median  " + "".join(f"{v:17.1f}" for v in medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
