"""One run per (request_id, attempt), however often the broker delivers it.

A copy comes twice when a publish confirm arrives late (the backend's relay sends it again), or
when a worker stops between publishing a retry and acking. The first worker to see it claims it
in Redis (a short TTL, renewed while it runs, so a killed worker's claim lapses and the broker's
redelivery takes over); once the outcome is published it leaves a done marker. A copy that finds
the marker is acked unprocessed; one that finds a live claim waits for either to change.

Keys (docs/CONTRACTS.md, "Redis keys"): `P claim:<request_id>:<attempt>` (the holder's token;
the backend reads it to know whether a worker is alive on a reply) and
`P done:<request_id>:<attempt>`.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Literal

from redis.asyncio import Redis

CLAIM_TTL_MS = 10_000
RENEW_EVERY_S = 3.0
DONE_TTL_S = 86_400
WAIT_EVERY_S = 0.5

# KEYS: claim, done. ARGV: token, ttl ms. -> "done", "held" or "ok".
_TAKE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'done' end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'ok' end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 'ok' end
return 'held'
"""
# KEYS: claim[, done]. ARGV: token, ttl ms (renew) or done TTL s (end).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_END = """
if KEYS[2] then redis.call('SET', KEYS[2], '1', 'EX', ARGV[2]) end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

Claimed = Literal["ok", "done"]


class Claims:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._take = redis.register_script(_TAKE)
        self._renew = redis.register_script(_RENEW)
        self._end = redis.register_script(_END)

    def _keys(self, request_id: str, attempt: int) -> list[str]:
        return [f"{self._prefix}claim:{request_id}:{attempt}",
                f"{self._prefix}done:{request_id}:{attempt}"]

    @contextlib.asynccontextmanager
    async def run_once(self, request_id: str, attempt: int) -> AsyncIterator["Run"]:
        """Yields a Run once this copy holds the claim, or one with `done` set when another copy
        already finished. Leaving without `run.finish()` (an error, a shutdown) frees the
        claim at once, so the redelivery needs no TTL to lapse."""
        claim, done = self._keys(request_id, attempt)
        token = uuid.uuid4().hex
        # Polled: the holder may be another process, whose end no local event could signal.
        waited = False
        while True:
            state = (await self._take(keys=[claim, done], args=[token, CLAIM_TTL_MS])).decode()
            if state != "held":
                break
            waited = True
            await asyncio.sleep(WAIT_EVERY_S)
        run = Run(state == "done", waited)
        if run.done:
            yield run
            return
        renewer = asyncio.create_task(self._keep(claim, token))
        try:
            yield run
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            keys = [claim, done] if run.finished else [claim]
            await self._end(keys=keys, args=[token, DONE_TTL_S])

    async def _keep(self, claim: str, token: str) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            # A Redis error ends the renewal, not the reply: at worst a copy runs twice.
            with contextlib.suppress(Exception):
                await self._renew(keys=[claim], args=[token, CLAIM_TTL_MS])


class Run:
    def __init__(self, done: bool, waited: bool) -> None:
        self.done = done  # another copy already published this attempt's outcome
        # Another copy held it and gave up: its deltas may be on screen, as after a redelivery.
        self.took_over = waited and not done
        self.finished = False

    def finish(self) -> None:
        """The outcome is published: a later copy must not run again."""
        self.finished = True
