"""The native commands the README gives for pip and npm users, each run as written in a fresh
copy of its part: a new venv with pip (not uv), a new node_modules with npm install. They use
the machine's PostgreSQL, Redis and RabbitMQ with a database, key prefix and queues of their
own. Two deviations, said here: the servers listen on a free port rather than 8000/5173 (other
stacks may hold those), and `pytest` and the Vitest scripts run one module or spec each
(all of them would not change what this proves: the tools and plugins install, the suite
collects and runs)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import redis
from conftest import copy_repository, free_port

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


def sh(command: str, cwd: Path, env: dict[str, str], timeout: float = 900):
    print(f"$ {command}", flush=True)
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, text=True, capture_output=True, timeout=timeout
    )
    assert done.returncode == 0, (
        f"`{command}` exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def start(command: str, cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    print(f"$ {command} &", flush=True)
    return subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_until(what: str, check, timeout: float = 120):
    end = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < end, f"not within {timeout}s: {what}"
        time.sleep(1)
    return result


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    dest = tmp_path_factory.mktemp("native") / "gemini-chat"
    dest.mkdir()
    copy_repository(dest)
    return dest


@pytest.fixture(scope="module")
def own_names():
    """A database, Redis prefix and queue names of this run, removed afterwards."""
    tag = secrets.token_hex(3)
    names = {
        "DATABASE_URL": f"{PG}/chat_native_{tag}",
        "REDIS_KEY_PREFIX": f"native:{tag}:",
        "REQUEST_QUEUE": f"gemini.requests.native.{tag}",
        "RESPONSE_QUEUE": f"gemini.responses.native.{tag}",
    }
    subprocess.run(
        ["createdb", "-h", "127.0.0.1", "-U", "postgres", f"chat_native_{tag}"], check=True
    )
    yield names
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", f"chat_native_{tag}"],
        check=False,
    )
    keys = redis.Redis(host="127.0.0.1")
    for key in keys.scan_iter(match=f"native:{tag}:*"):
        keys.delete(key)
    keys.close()
    if shutil.which("rabbitmqctl"):
        listed = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True
        ).stdout.split()
        for queue in (q for q in listed if f".native.{tag}" in q):
            subprocess.run(
                ["rabbitmqctl", "-q", "delete_queue", queue], check=False, capture_output=True
            )


def shell_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "UV_", "PYTHONHOME"))
    }
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if "/.venv/" not in p)
    return {**env, **(extra or {})}


def test_backend_with_pip_venv_alembic_uvicorn_and_pytest(clone, own_names, tmp_path):
    backend = clone / "backend"
    env = shell_env(own_names)
    venv = ". venv/bin/activate && "
    sh("python3 -m venv venv", backend, env)
    sh(venv + 'pip install -e ".[dev]"', backend, env)
    sh(venv + "alembic upgrade head", backend, env)
    port = free_port()
    server = start(
        f". venv/bin/activate && uvicorn app.main:app --reload --port {port}",
        backend,
        env,
        tmp_path / "uvicorn.log",
    )
    try:
        health = wait_until("uvicorn --reload answers /api/health", lambda: _health(port))
        assert health["status"] == "healthy", health
    finally:
        stop(server)
    sh(venv + "pytest tests/test_meta.py", backend, env)
    cov = sh(venv + "pytest --cov=app tests/ -k test_health_reports_each_dependency", backend, env)
    assert "TOTAL" in cov.stdout and "app/main.py" in cov.stdout, cov.stdout[-2000:]


def _health(port: int):
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=3).json()
    except (httpx.HTTPError, ValueError):
        return None


def test_worker_with_pip_install_and_python_m_src_main(clone, own_names, tmp_path):
    worker = clone / "gemini-client"
    env = shell_env(
        {**own_names, "GEMINI_API_KEYS": "offline-key", "GEMINI_BASE_URL": "http://127.0.0.1:9"}
    )
    sh("python3 -m venv venv", worker, env)
    sh(". venv/bin/activate && pip install -e .", worker, env)
    log = tmp_path / "worker.log"
    process = start(". venv/bin/activate && python -m src.main", worker, env, log)
    try:
        wait_until("the worker logs worker_started", lambda: "worker_started" in log.read_text())
    finally:
        stop(process)
    assert "offline-key" not in log.read_text()


def test_frontend_npm_install_dev_test_and_test_unit(clone, tmp_path):
    frontend = clone / "frontend"
    env = shell_env()
    sh("npm install --no-audit --no-fund", frontend, env)
    port = free_port()
    dev = start(f"npm run dev -- --port {port} --strictPort", frontend, env, tmp_path / "vite.log")
    try:
        page = wait_until("npm run dev serves the page", lambda: _page(port))
        assert '<div id="app">' in page
    finally:
        stop(dev)
    assert "passed" in sh("npm run test -- src/lib/format.spec.ts", frontend, env).stdout
    assert "passed" in sh("npm run test:unit -- src/lib/format.spec.ts", frontend, env).stdout


def _page(port: int):
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/", timeout=3)
        return r.text if r.status_code == 200 else None
    except httpx.HTTPError:
        return None
