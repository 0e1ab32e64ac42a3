import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from src.queue.topology import Topology

from .support import REDIS_URL, Bus, Events, StandIn, Worker

KEYS = ["test-key-alpha-0001", "test-key-bravo-0002", "test-key-charlie-0003"]


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def standin(log_dir: Path) -> Iterator[StandIn]:
    server = StandIn(log_dir, {"STANDIN_FIRST_CHUNK_MS": "20", "STANDIN_CHUNK_MS": "5"})
    yield server
    server.stop()


def fresh_standin(standin: StandIn) -> None:
    standin.reset()
    standin.config(first_chunk_ms=20, chunk_ms=5)


def worker_env(standin: StandIn) -> dict[str, str]:
    """Worker settings with their own Redis prefix and queue names."""
    run = uuid.uuid4().hex[:10]
    return {
        "GEMINI_API_KEYS": ",".join(KEYS),
        "SECRET_KEY": "test-secret-key-for-the-key-registry",
        "GEMINI_BASE_URL": standin.url,
        "GEMINI_TIMEOUT_SECONDS": "5",
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": f"gwtest:{run}:",
        "REQUEST_QUEUE": f"gemini.requests.gwtest.{run}",
        "RESPONSE_QUEUE": f"gemini.responses.gwtest.{run}",
        "QUEUE_RETRY_DELAYS": "0.3,0.6",
        "QUEUE_MAX_RETRIES": "2",
        "KEYS_MAX_PER_MINUTE": "1000",
        "KEYS_COOLDOWN_SECONDS": "30",
        "KEYS_MAX_WAIT_SECONDS": "2",
        "WORKER_SHUTDOWN_SECONDS": "5",
        "LOG_LEVEL": "INFO",
    }


async def drop_everything(bus: Bus, prefix: str) -> None:
    """Deletes the run's queues and Redis keys."""
    await bus.close(sorted(bus.queue_names))
    client = aioredis.Redis.from_url(REDIS_URL)
    stale = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    if stale:
        await client.delete(*stale)
    await client.aclose()


@pytest.fixture
def env(standin: StandIn) -> dict[str, str]:
    """This test's worker settings; the stand-in back to its test dials."""
    fresh_standin(standin)
    return worker_env(standin)


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def bus(env: dict[str, str]) -> AsyncIterator[Bus]:
    opened = await Bus(env).open()
    yield opened
    await drop_everything(opened, env["REDIS_KEY_PREFIX"])


@pytest.fixture
def events(env: dict[str, str], redis: aioredis.Redis) -> Events:
    return Events(redis, env["REDIS_KEY_PREFIX"])


@pytest.fixture
def spawn(env: dict[str, str], bus: Bus, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Starts workers with the test's settings (plus overrides); kills leftovers at the end."""
    started: list[Worker] = []

    def start(**overrides: str) -> Worker:
        settings = {**env, **overrides}
        delays = [float(d) for d in settings["QUEUE_RETRY_DELAYS"].split(",")]
        bus.queue_names |= set(
            Topology(settings["REQUEST_QUEUE"], settings["RESPONSE_QUEUE"], delays).all_names()
        )
        worker = Worker(settings, tmp_path / f"worker-{len(started)}.log")
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.kill()


def shared_worker(**overrides: str) -> tuple:
    """Module-scoped `env`, `bus` and `worker` fixtures (plus an autouse stand-in reset): the
    tests of a module share one worker, its queues and Redis prefix, each test with its own
    chat, message and request ids. Use: `env, bus, worker, _fresh = shared_worker(...)`."""

    @pytest.fixture(scope="module")
    def env(standin: StandIn) -> dict[str, str]:
        return {**worker_env(standin), **overrides}

    @pytest.fixture(scope="module")
    async def bus(env: dict[str, str]) -> AsyncIterator[Bus]:
        opened = await Bus(env).open()
        yield opened
        await drop_everything(opened, env["REDIS_KEY_PREFIX"])

    @pytest.fixture(scope="module")
    async def worker(env: dict[str, str], bus: Bus, log_dir: Path) -> AsyncIterator[Worker]:
        delays = [float(d) for d in env["QUEUE_RETRY_DELAYS"].split(",")]
        bus.queue_names |= set(
            Topology(env["REQUEST_QUEUE"], env["RESPONSE_QUEUE"], delays).all_names()
        )
        log = log_dir / f"worker-{env['REQUEST_QUEUE'].rsplit('.', 1)[-1]}.log"
        running = await Worker(env, log).start().started()
        yield running
        running.kill()

    @pytest.fixture(autouse=True)
    def _fresh(standin: StandIn, worker: Worker) -> None:
        fresh_standin(standin)
        assert worker.proc is not None and worker.proc.poll() is None, worker.log_text()

    return env, bus, worker, _fresh
