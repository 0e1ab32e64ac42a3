"""`python -m src.main`: the Gemini worker. Stops cleanly on SIGTERM or SIGINT."""

import asyncio
import contextlib
import gc
import signal

import uvloop

from .core.config import load_settings
from .core.logging import log, setup_logging


async def serve() -> None:
    settings = load_settings()
    setup_logging(settings.log_level)
    # Imported once the settings are known good: a bad setting is reported without the SDK's
    # seconds-long import.
    from aio_pika.exceptions import AMQPError
    from redis.exceptions import RedisError

    from .attachments import return_freed_memory
    from .worker import Worker

    return_freed_memory()
    worker = Worker(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    delay = 0.5
    while not stop.is_set():
        try:
            await worker.start()
            break
        except (OSError, ConnectionError, RedisError, AMQPError) as exc:
            # RabbitMQ or Redis not up yet: keep trying, as they come up in any order.
            log.warning("start_failed", extra={"error": type(exc).__name__, "retry_in_s": delay})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 10)
    # What start-up made (the SDK's models above all) lives as long as the process: out of the
    # collector's sight, a full collection scans only what requests made (50 ms pauses otherwise).
    gc.collect()
    gc.freeze()
    await stop.wait()
    log.info("stop_requested")
    await worker.stop()


def main() -> None:
    uvloop.run(serve())


if __name__ == "__main__":
    main()
