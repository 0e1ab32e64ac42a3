"""Glue for one fault scenario: run traffic, inject the fault while it is under way, then hold the
stack to its promise and report what the clients went through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from .expected import expected_replies
from .traffic import Traffic, Verdict


async def run_scenario(
    base_url: str,
    fault: Callable[[Traffic], Awaitable[None]],
    *,
    chats: int = 24,
    duration: float = 120.0,
    tail: float = 2.0,
    max_turns: int = 20,
    think: float = 1.0,
    start_after: int = 6,
    finish_within: float = 120.0,
    check_stream: bool = True,
    allow_failed: bool = False,
    final_deadline: float = 90.0,
) -> tuple[Traffic, Verdict]:
    """`fault(traffic)` runs once `start_after` messages were accepted; traffic keeps flowing
    during it and for `tail` seconds after (`duration` caps the whole run, `max_turns` each
    chat). Fails with every broken promise listed."""
    t0 = time.monotonic()
    traffic = Traffic(
        base_url,
        chats=chats,
        duration=duration,
        max_turns=max_turns,
        final_deadline=final_deadline,
        think=think,
    )
    marks = {}
    async with traffic:
        marks["setup"] = time.monotonic()
        traffic.start()
        await traffic.underway(start_after)
        marks["underway"] = time.monotonic()
        await fault(traffic)
        marks["fault"] = time.monotonic()
        traffic.stop_in(tail)
        await traffic.finish(timeout=finish_within)
        marks["finish"] = time.monotonic()
        verdict = await traffic.verify(
            lambda reqs: expected_replies(reqs),
            allow_failed=allow_failed,
            check_stream=check_stream,
        )
        marks["verify"] = time.monotonic()
    phases, last = [], t0
    for name, at in marks.items():
        phases.append(f"{name} {at - last:.1f}s")
        last = at
    print(f"\n{verdict.summary()}; statuses {dict(verdict.statuses)}; " + ", ".join(phases))
    assert not verdict.problems, "\n".join(verdict.problems[:40])
    assert verdict.accepted >= chats, f"only {verdict.accepted} messages accepted"
    return traffic, verdict


async def hold(seconds: float) -> None:
    """Keeps a fault in place for a set time: the outage's length is the point of the test."""
    await asyncio.sleep(seconds)
