"""Stops and starts the machine's shared PostgreSQL, Redis and RabbitMQ. Every outage is a context
manager that brings the service back in `finally`, whatever happened inside."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def _run(*cmd: str, timeout: float = 120) -> None:
    subprocess.run(cmd, check=True, timeout=timeout, capture_output=True)


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def _wait(what: str, check, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not come back within {timeout}s")


def _ok(*cmd: str) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


# --- PostgreSQL -------------------------------------------------------------------------------
def _pg_version() -> str:
    return sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]


def postgres_up() -> bool:
    return _ok("pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432")


def start_postgres() -> None:
    if not postgres_up():
        _run("pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "start")
    _wait("PostgreSQL", postgres_up)


def stop_postgres() -> None:
    _run("pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "stop", "-m", "fast")


# --- Redis ------------------------------------------------------------------------------------
def redis_up() -> bool:
    return _ok("redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping")


def start_redis() -> None:
    if not redis_up():
        Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
        Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
        _run(
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        )
    _wait("Redis", redis_up)


def stop_redis() -> None:
    _ok("redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave")
    _wait("Redis to stop", lambda: not _port_open(6379), timeout=20)


# --- RabbitMQ ---------------------------------------------------------------------------------
def rabbitmq_up() -> bool:
    return _port_open(5672)


def start_rabbitmq() -> None:
    if not rabbitmq_up():
        # The app only, if the node still runs (stop_app); else the whole node.
        if not _ok("rabbitmqctl", "start_app"):
            subprocess.run(["rabbitmq-server", "-detached"], check=False, timeout=60)
        _wait("RabbitMQ", rabbitmq_up, timeout=120)
    _ok("rabbitmqctl", "await_startup")


def stop_rabbitmq() -> None:
    # stop_app closes every connection and channel as a broker restart does, while durable queues
    # and persistent messages stay on disk; it comes back in seconds rather than a node restart's
    # tens of seconds.
    _run("rabbitmqctl", "stop_app")


@contextlib.contextmanager
def outage(name: str) -> Iterator[None]:
    stop, start = {
        "postgres": (stop_postgres, start_postgres),
        "redis": (stop_redis, start_redis),
        "rabbitmq": (stop_rabbitmq, start_rabbitmq),
    }[name]
    try:
        stop()
        yield
    finally:
        start()


def ensure_all() -> None:
    start_postgres()
    start_redis()
    start_rabbitmq()
