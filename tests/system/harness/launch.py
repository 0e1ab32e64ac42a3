"""Starting a stack through `scripts/stack.py`, and reading what its processes use."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Iterator

import httpx

from .paths import import_stack

# Three keys the stand-in accepts (it accepts any key unless told otherwise); never real ones.
TEST_KEYS = [
    "AIzaSy-standin-key-one-0000000000000001",
    "AIzaSy-standin-key-two-0000000000000002",
    "AIzaSy-standin-key-three-00000000000003",
]

# Fast, bounded settings for whole-stack tests: sub-second retry delays, keys limited only by
# the stand-in's dials, users never rate limited by the backend.
FAST_ENV = {
    "GEMINI_API_KEYS": ",".join(TEST_KEYS),
    "KEYS_MAX_PER_MINUTE": "100000",
    "KEYS_COOLDOWN_SECONDS": "1",
    "KEYS_MAX_WAIT_SECONDS": "2",
    "QUEUE_RETRY_DELAYS": "0.5,1,2",
    "QUEUE_MAX_RETRIES": "8",
    "USER_MESSAGES_PER_MINUTE": "100000",
    "GEMINI_TIMEOUT_SECONDS": "20",
    "STANDIN_FIRST_CHUNK_MS": "60",
    "STANDIN_CHUNKS": "8",
    "STANDIN_CHUNK_MS": "30",
    "LOG_LEVEL": "INFO",
}


@contextlib.contextmanager
def running_stack(
    name: str,
    *,
    components: tuple[str, ...] = ("backend", "worker", "standin", "nginx"),
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> Iterator:
    Stack = import_stack()
    # A name of its own: two runs at once must not share .stack/NAME.json.
    name = f"{name}-{secrets.token_hex(2)}"
    stack = Stack(name, components=list(components), workers=workers, env=env or {})
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def standin_url(stack) -> str:
    base = stack.env.get("GEMINI_BASE_URL")
    if base:
        return base.rstrip("/")
    return f"http://127.0.0.1:{stack.ports['standin']}"


def standin_config(stack, **changes) -> dict:
    r = httpx.post(f"{standin_url(stack)}/_standin/config", json=changes, timeout=10)
    r.raise_for_status()
    return r.json()


def standin_reset(stack) -> None:
    httpx.post(f"{standin_url(stack)}/_standin/reset", timeout=10).raise_for_status()


def standin_stats(stack) -> dict:
    r = httpx.get(f"{standin_url(stack)}/_standin/stats", timeout=10)
    r.raise_for_status()
    return r.json()


def wait_healthy(base_url: str, timeout: float = 60) -> dict:
    end = time.monotonic() + timeout
    last = ""
    while time.monotonic() < end:
        try:
            r = httpx.get(f"{base_url}/api/health", timeout=5)
            if r.status_code == 200:
                return r.json()
            last = f"{r.status_code} {r.text[:300]}"
        except httpx.TransportError as e:
            last = repr(e)
        time.sleep(0.3)
    raise AssertionError(f"stack not healthy within {timeout}s: {last}")


def rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and its children (uvicorn or a launcher wrapper may fork)."""
    total = rss_mib(pid)
    with contextlib.suppress(OSError):
        for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
            total += tree_rss_mib(int(child))
    return total


def key_id(key: str) -> str:
    """The worker's and admin view's id of a key: first 8 hex of its sha256."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]
