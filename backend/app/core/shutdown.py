"""Notice the stop signal before uvicorn starts waiting for open connections to finish.

Event streams never finish by themselves, so without this a SIGTERM would wait on them
forever. Streams end at once instead; browsers reconnect (with Last-Event-ID) elsewhere."""

import asyncio
import logging
import signal

log = logging.getLogger(__name__)


def on_stop_signal(stopping: asyncio.Event) -> None:
    """Chain a handler in front of the server's own SIGINT/SIGTERM handlers that sets `stopping`."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: object, previous: object = previous) -> None:
            loop.call_soon_threadsafe(stopping.set)
            if callable(previous):
                previous(signum, frame)

        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread (an embedding test harness): nothing to chain
            log.debug("stop signal not watched: not in the main thread")
            return
