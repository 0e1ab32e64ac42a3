"""argon2 on threads of its own, a bounded number at once.

A hash takes a fraction of a second of CPU. Unbounded, a burst of sign-ins fills the default
thread pool and every request behind it waits; so at most ARGON2_CONCURRENCY run at once
per process, ARGON2_QUEUE more wait, and past that a sign-in answers 503 at once."""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from app.services.errors import Busy

T = TypeVar("T")

BUSY_RETRY_SECONDS = 1


class HashPool:
    def __init__(self, concurrency: int, queue: int) -> None:
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="argon2")
        self._capacity = concurrency + queue
        self._in_flight = 0

    async def run(self, work: Callable[..., T], *args: object) -> T:
        if self._in_flight >= self._capacity:
            raise Busy("too many sign-ins at once; try again in a moment", BUSY_RETRY_SECONDS)
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
        finally:
            self._in_flight -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
