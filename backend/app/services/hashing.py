"""argon2 on threads of its own, a bounded number at once.

A hash takes a fraction of a second of CPU. Unbounded, a burst of sign-ins fills the default
thread pool and every request behind it waits; so at most ARGON2_CONCURRENCY run at once
per process, ARGON2_QUEUE more sign-ins wait, and past that one answers 503 at once: before
it even reads the account, so a refused sign-in costs neither CPU nor a database query."""

import asyncio
import contextlib
from collections.abc import Callable, Iterator
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

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """One sign-in's place among those running or waiting; Busy (503) when none is free."""
        if self._in_flight >= self._capacity:
            raise Busy("too many sign-ins at once; try again in a moment", BUSY_RETRY_SECONDS)
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """Runs one hash; call it inside a `slot()`."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
