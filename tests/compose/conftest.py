"""One production stack for the whole suite: the real docker-compose.yml, Dockerfiles and nginx
template, run by the README's own `docker compose` commands in a copy of the repository (like a
user's clone), with an `.env` made from `.env.example`. The official images are the local
stand-ins of tests/compose/standins (built by images.py before pytest starts); `docker compose`
is Debian's docker-compose 1.29 behind a CLI-plugin shim (docker-compose-plugin.py).

Requests reach the stack only through the ports it publishes on 127.0.0.1. Everything,
volumes included, is removed at the end."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "system"))

# Seconds `up -d --build --wait` may take once the images exist (the healthchecks' intervals
# chain: datastores, then backend and worker, then nginx).
UP_BOUND_SECONDS = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_repository(dest: Path) -> None:
    """What a clone holds: the tracked files and new ones not ignored, as they are on disk."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        src = ROOT / name.decode()
        if src.is_file():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name.decode())


def env_from_example(example: str, values: dict[str, str]) -> str:
    """`.env.example` with the given settings filled in, as a user edits it."""
    lines, seen = [], set()
    for line in example.splitlines():
        name = line.split("=", 1)[0]
        if "=" in line and not line.startswith("#") and name in values:
            line, _ = f"{name}={values[name]}", seen.add(name)
        lines.append(line)
    lines += [f"{k}={v}" for k, v in values.items() if k not in seen]
    return "\n".join(lines) + "\n"


@dataclass
class Compose:
    """The user's shell in their clone: `run` types a README command as written."""

    dir: Path
    env: dict[str, str]
    project: str
    http_port: int
    management_port: int
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def run(
        self, command: str, *, check: bool = True, timeout: float = 600, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        print(f"$ {command}", flush=True)
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.dir,
            env=self.env,
            text=True,
            capture_output=True,
            timeout=timeout,
            input=input,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"`{command}` exited {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def write_env(self, **changes: str) -> None:
        self.settings.update(changes)
        example = (self.dir / ".env.example").read_text()
        (self.dir / ".env").write_text(env_from_example(example, self.settings))

    def container_ids(self, service: str) -> list[str]:
        return self.run(f"docker compose ps -q {service}").stdout.split()

    def logs(self, service: str) -> str:
        done = self.run(f"docker compose logs --no-color {service}")
        return done.stdout + done.stderr

    def wait_for(self, what: str, predicate, timeout: float = 120, every: float = 1.0):
        end = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > end:
                raise AssertionError(f"not within {timeout}s: {what}")
            time.sleep(every)

    def healthy(self, timeout: float = 120) -> dict:
        def check():
            try:
                r = httpx.get(f"{self.url}/api/health", timeout=3)
                return r.json() if r.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                return None

        try:
            return self.wait_for("/api/health answers healthy", check, timeout)
        except AssertionError as error:
            # What the services said, since the teardown removes them before anyone can look.
            ps = self.run("docker compose ps", check=False)
            logs = self.run("docker compose logs --tail 40 backend nginx", check=False)
            raise AssertionError(f"{error}\n{ps.stdout}\n{logs.stdout[-6000:]}") from None

    def standin(self, path: str, body: dict | None = None) -> dict:
        """The Gemini stand-in's control API, from inside its container (nothing is published)."""
        program = (
            "import json, sys, urllib.request; data = sys.stdin.read().encode() or None; "
            "req = urllib.request.Request('http://127.0.0.1:8090' + sys.argv[1], data=data, "
            "headers={'Content-Type': 'application/json'}); "
            "print(urllib.request.urlopen(req, timeout=10).read().decode())"
        )
        import json

        done = self.run(
            f"docker compose exec -T gemini-standin python -c {shlex.quote(program)} {path}",
            input=json.dumps(body) if body is not None else "",
        )
        return json.loads(done.stdout)


def engine_note() -> None:
    print(
        "compose suite: `docker compose` is Debian's docker-compose 1.29 behind a CLI-plugin "
        "shim; `up --wait` is emulated by polling health. Official images are local "
        "stand-ins (tests/compose/standins): PostgreSQL 15 under postgres:16-alpine, nginx 1.22 "
        "under nginx:1.27-alpine, RabbitMQ 3.10 under rabbitmq:3-management-alpine, and a "
        "plain forwarding proxy, not Hysteria, under tobyxdd/hysteria:v2.",
        flush=True,
    )


@pytest.fixture(scope="session")
def compose(tmp_path_factory):
    engine_note()
    workdir = Path(tempfile.mkdtemp(prefix="chat-compose-"))
    clone = workdir / "gemini-chat"
    clone.mkdir()
    copy_repository(clone)
    docker_config = workdir / "docker-config"
    (docker_config / "cli-plugins").mkdir(parents=True)
    os.symlink(HERE / "docker-compose-plugin.py", docker_config / "cli-plugins" / "docker-compose")
    project = f"chatcompose{secrets.token_hex(3)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    env.update(DOCKER_CONFIG=str(docker_config), COMPOSE_PROJECT_NAME=project)
    stack = Compose(clone, env, project, free_port(), free_port())
    stack.write_env(
        GEMINI_API_KEYS="standin-key-1,standin-key-2",
        DB_PASSWORD=secrets.token_hex(16),
        RABBITMQ_PASSWORD=secrets.token_hex(16),
        REDIS_PASSWORD=secrets.token_hex(16),
        SECRET_KEY=secrets.token_hex(24),
        GEMINI_BASE_URL="http://gemini-standin:8090",
        HTTP_PROXY="http://hysteria2:8080",
        HTTP_PORT=str(stack.http_port),
        RABBITMQ_MANAGEMENT_PORT=str(stack.management_port),
        # Short retry delays, so a reply that waited for a key settles within the test.
        QUEUE_RETRY_DELAYS="2,5",
        # Every command includes the offline profile's Gemini stand-in, as `--profile offline`.
        COMPOSE_PROFILES="offline",
    )
    try:
        yield stack
    finally:
        stack.run("docker compose down -v --remove-orphans --timeout 5", check=False)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def up(compose):
    """The stack up and healthy: the README's quick start."""
    started = time.monotonic()
    compose.run("docker compose up -d --build --wait", timeout=1200)
    compose.took_up = time.monotonic() - started
    compose.healthy()
    return compose


def secret_values(compose: Compose) -> list[str]:
    return [
        v for k, v in compose.settings.items() if re.search(r"PASSWORD|SECRET|API_KEYS", k)
    ] + compose.settings["GEMINI_API_KEYS"].split(",")
