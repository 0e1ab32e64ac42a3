#!/usr/bin/env python3
"""Runs the chat stack natively: backend, worker(s), offline Gemini stand-in, front end, nginx.

    python3 scripts/stack.py dev                      # fixed dev ports, foreground, Ctrl-C stops
    python3 scripts/stack.py up --name NAME [--components backend,worker,standin,frontend,nginx]
                                [--workers N] [--frontend built|dev]
    python3 scripts/stack.py down --name NAME

or, from Python (tests, benchmarks):

    sys.path.insert(0, "scripts"); from stack import Stack
    with Stack("mytest", components=["backend", "worker", "standin"]) as stack:
        stack.url, stack.env, stack.stop("worker", signal.SIGKILL, index=0), stack.start("worker")

Every `up` stack gets its own database, Redis key prefix, queue names and free ports, so stacks
never see each other's data; `down` stops its processes and removes all of that again.
Only the standard library is used: this runs before any project venv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".stack"
BACKEND_DIR = ROOT / "backend"
WORKER_DIR = ROOT / "gemini-client"
FRONTEND_DIR = ROOT / "frontend"
NGINX_TEMPLATE = ROOT / "nginx" / "default.conf.template"

COMPONENTS = ("standin", "backend", "worker", "frontend", "nginx")  # also the start order
DEV_PORTS = {"nginx": 8080, "backend": 8000, "frontend": 5173, "standin": 8090}
DEFAULT_REQUEST_QUEUE = "gemini.requests"
DEFAULT_RESPONSE_QUEUE = "gemini.responses"
DEFAULT_RETRY_DELAYS = "60,600,3600,86400"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
# Keys the stand-in accepts; they are not secrets and never reach Google.
STANDIN_KEYS = "standin-key-0001,standin-key-0002,standin-key-0003"

# Given to the processes, never printed nor written to .stack/NAME.json.
SECRET_SETTINGS = ("GEMINI_API_KEYS", "SECRET_KEY", "DB_PASSWORD", "RABBITMQ_PASSWORD")

# Caller settings reported in `.env` (all of the caller's environment reaches the services anyway).
SETTING_PREFIXES = (
    "GEMINI_",
    "KEYS_",
    "QUEUE_",
    "STANDIN_",
    "WORKER_",
    "RABBITMQ_",
    "REDIS_",
    "DB_",
    "LOGIN_",
    "SIGNUPS_",
    "ARGON2_",
)
SETTING_NAMES = {
    "DATABASE_URL",
    "REQUEST_QUEUE",
    "RESPONSE_QUEUE",
    "HTTP_PROXY",
    "SECRET_KEY",
    "ALLOW_REGISTRATION",
    "CORS_ORIGINS",
    "MAX_MESSAGE_CHARS",
    "USER_MESSAGES_PER_MINUTE",
    "USER_MESSAGES_PER_DAY",
    "USER_TOKENS_PER_DAY",
    "HISTORY_MAX_CHARS",
    "SESSION_TTL_HOURS",
    "SESSION_CLEANUP_INTERVAL_SECONDS",
    "COOKIE_SECURE",
    "LOG_LEVEL",
    "WEB_CONCURRENCY",
}

READY_SECONDS = {"standin": 30, "backend": 90, "worker": 60, "frontend": 90, "nginx": 20}
BUILD_SECONDS = 600
STOP_SECONDS = 10


class StackError(RuntimeError):
    """A component did not start or a resource could not be made; the message says which."""


# --------------------------------------------------------------------------- small clients


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def http_status(port: int, path: str, host: str = "127.0.0.1") -> int | None:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", path, headers={"Accept": "*/*"})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def psql(sql: str, database: str = "postgres") -> str:
    cmd = [
        "psql",
        "-h",
        PG_HOST,
        "-p",
        str(PG_PORT),
        "-U",
        PG_USER,
        "-d",
        database,
        "-v",
        "ON_ERROR_STOP=1",
        "-Atqc",
        sql,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise StackError(f"psql failed ({sql}): {done.stderr.strip()}")
    return done.stdout.strip()


class Redis:
    """Just enough RESP to SCAN and DEL a prefix."""

    def __init__(self, url: str):
        parts = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 6379), 10
        )
        self.buf = self.sock.makefile("rb")
        if parts.password:
            self.call("AUTH", *([parts.username] if parts.username else []), parts.password)
        db = (parts.path or "/0").lstrip("/") or "0"
        self.call("SELECT", db)

    def call(self, *args: str):
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.buf.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind == b"-":
            raise StackError(f"redis: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest.decode()
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.buf.read(size + 2)[:-2]
            return data.decode(errors="replace")
        if kind == b"*":
            return [self._read() for _ in range(int(rest))]
        raise StackError(f"redis: unexpected reply {line!r}")

    def delete_prefix(self, prefix: str) -> int:
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"
        cursor, deleted = "0", 0
        while True:
            cursor, keys = self.call("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
            if keys:
                deleted += self.call("DEL", *keys)
            if cursor == "0":
                return deleted

    def close(self) -> None:
        self.sock.close()


class Amqp:
    """Just enough AMQP 0-9-1 to count a queue's consumers and delete queues (no pika here)."""

    def __init__(self, url: str):
        parts = urllib.parse.urlsplit(url)
        vhost = urllib.parse.unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        self.sock = socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 5672), 10
        )
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        self._expect(0, 10, 10)  # connection.start
        user = urllib.parse.unquote(parts.username or "guest")
        password = urllib.parse.unquote(parts.password or "guest")
        self._method(
            0,
            10,
            11,
            b"\x00\x00\x00\x00"
            + self._short_str("PLAIN")
            + self._long_str(f"\0{user}\0{password}")
            + self._short_str("en_US"),
        )
        tune = self._expect(0, 10, 30)
        channel_max, frame_max = struct.unpack(">HI", tune[:6])
        self._method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0))
        self._method(0, 10, 40, self._short_str(vhost) + self._short_str("") + b"\x00")
        self._expect(0, 10, 41)
        self.channel = 0
        self._open_channel()

    @staticmethod
    def _short_str(text: str) -> bytes:
        data = text.encode()
        return struct.pack(">B", len(data)) + data

    @staticmethod
    def _long_str(text: str) -> bytes:
        data = text.encode()
        return struct.pack(">I", len(data)) + data

    def _method(self, channel: int, class_id: int, method_id: int, args: bytes) -> None:
        payload = struct.pack(">HH", class_id, method_id) + args
        self.sock.sendall(struct.pack(">BHI", 1, channel, len(payload)) + payload + b"\xce")

    def _recv_exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise StackError("rabbitmq closed the connection")
            data += chunk
        return data

    def _next_method(self) -> tuple[int, int, int, bytes]:
        while True:
            kind, channel, size = struct.unpack(">BHI", self._recv_exact(7))
            payload = self._recv_exact(size + 1)[:-1]
            if kind == 1:
                class_id, method_id = struct.unpack(">HH", payload[:4])
                return channel, class_id, method_id, payload[4:]

    def _expect(self, channel: int, class_id: int, method_id: int) -> bytes | None:
        """The awaited method's arguments, or None when the broker closed the channel instead."""
        got_channel, got_class, got_method, args = self._next_method()
        if (got_class, got_method) == (20, 40):  # channel.close: e.g. 404 on a passive declare
            self._method(got_channel, 20, 41, b"")
            self._open_channel()
            return None
        if (got_class, got_method) == (10, 50):
            code = struct.unpack(">H", args[:2])[0]
            text = args[3 : 3 + args[2]].decode(errors="replace")
            raise StackError(f"rabbitmq closed the connection: {code} {text}")
        if (got_channel, got_class, got_method) != (channel, class_id, method_id):
            raise StackError(f"rabbitmq: unexpected method {got_class}.{got_method}")
        return args

    def _open_channel(self) -> None:
        self.channel += 1
        self._method(self.channel, 20, 10, self._short_str(""))
        self._expect(self.channel, 20, 11)

    def consumers(self, queue: str) -> int | None:
        """Consumers on the queue, None when it does not exist (a passive declare)."""
        self._method(
            self.channel,
            50,
            10,
            b"\x00\x00" + self._short_str(queue) + b"\x01" + b"\x00\x00\x00\x00",
        )
        args = self._expect(self.channel, 50, 11)
        if args is None:
            return None
        name_len = args[0]
        return struct.unpack(">II", args[1 + name_len : 9 + name_len])[1]

    def delete(self, queue: str) -> None:
        self._method(self.channel, 50, 40, b"\x00\x00" + self._short_str(queue) + b"\x00")
        self._expect(self.channel, 50, 41)

    def close(self) -> None:
        try:
            self._method(
                0,
                10,
                50,
                struct.pack(">H", 200) + self._short_str("bye") + struct.pack(">HH", 0, 0),
            )
            self._expect(0, 10, 51)
        except (OSError, StackError):
            pass
        self.sock.close()


def delay_label(seconds: str) -> str:
    """How a retry delay appears in a queue name: `60s`, or `500ms` below a second."""
    value = float(seconds)
    if value == int(value) and value >= 1:
        return f"{int(value)}s"
    return f"{round(value * 1000)}ms"


def queue_names(env: dict[str, str]) -> list[str]:
    """The stack's queues: both main queues, the worker's retry and dead-letter queues, and
    whatever else the broker holds under either name (the backend's dead letters, say)."""
    request, response = env["REQUEST_QUEUE"], env["RESPONSE_QUEUE"]
    delays = [d.strip() for d in env.get("QUEUE_RETRY_DELAYS", DEFAULT_RETRY_DELAYS).split(",")]
    names = [request, response, f"{request}.dead", f"{response}.dead"]
    names += [f"{request}.retry.{delay_label(d)}" for d in delays if d]
    if shutil.which("rabbitmqctl"):
        listed = subprocess.run(
            ["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if listed.returncode == 0:
            names += [
                n.strip()
                for n in listed.stdout.splitlines()
                if n.strip().startswith((request + ".", response + "."))
            ]
    return list(dict.fromkeys(names))


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


# --------------------------------------------------------------------------- processes


class Proc:
    """One started process, leader of its own process group (so its children die with it)."""

    def __init__(self, component: str, pid: int, popen: subprocess.Popen | None = None):
        self.component, self.pid, self.popen = component, pid, popen
        self.log_offset = 0
        self.port_retries = 0

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        fields = stat.rsplit(")", 1)[1].split()
        return fields[0] != "Z" and int(fields[2]) == self.pid  # state, process group

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def send(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, grace: float = STOP_SECONDS) -> None:
        stop_all([self], sig, grace)


def stop_all(procs: list[Proc], sig: int = signal.SIGTERM, grace: float = STOP_SECONDS) -> None:
    """Signals every group at once, waits up to `grace` for the leaders, then KILLs what is left
    (a leader past its grace, or children it left behind)."""
    procs = [p for p in procs if p.alive() or p.group_alive()]
    for proc in procs:
        proc.send(sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.alive() for p in procs):
        time.sleep(0.05)
    for proc in procs:
        proc.send(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(p.alive() or p.group_alive() for p in procs):
        time.sleep(0.05)


class Stack:
    """A set of the app's processes with their own database, Redis prefix, queues and ports."""

    def __init__(
        self,
        name: str,
        components=None,
        workers: int = 1,
        env: dict | None = None,
        frontend: str = "built",
        dev: bool = False,
    ):
        if not name or any(c not in "abcdefghijklmnopqrstuvwxyz0123456789_-" for c in name):
            raise StackError(f"stack name {name!r}: use lower-case letters, digits, - and _")
        self.name, self.dev, self.frontend_mode = name, dev, frontend
        if frontend not in ("built", "dev"):
            raise StackError(f"--frontend {frontend!r}: use built or dev")
        self.caller_env = dict(env or {})
        keys_given = bool(self.caller_env.get("GEMINI_API_KEYS", os.environ.get("GEMINI_API_KEYS")))
        if components is None:
            components = [c for c in COMPONENTS if c != "standin" or not keys_given]
        unknown = set(components) - set(COMPONENTS)
        if unknown:
            raise StackError(f"unknown component(s) {sorted(unknown)}; known: {list(COMPONENTS)}")
        self.components = [c for c in COMPONENTS if c in components]
        self.workers = workers
        self.dir = STATE_DIR / name
        self.state_file = STATE_DIR / f"{name}.json"
        self.procs: dict[str, list[Proc]] = {}
        self.ports: dict[str, int] = {}
        self.env: dict[str, str] = {}
        self.database = ""
        self.logs = {c: str(self.dir / f"{c}.log") for c in self.components}

    # ----------------------------------------------------------------- public interface

    @property
    def url(self) -> str:
        for component in ("nginx", "backend"):
            if component in self.ports:
                return f"http://127.0.0.1:{self.ports[component]}"
        return ""

    def up(self) -> Stack:
        if self.state_file.exists() and not self.dev:
            raise StackError(
                f"stack {self.name!r} is already up ({self.state_file}); "
                f"run: python3 scripts/stack.py down --name {self.name}"
            )
        self._check_installed()
        self.dir.mkdir(parents=True, exist_ok=True)
        for component in self.components:
            Path(self.logs[component]).write_text("")
        self._plan()
        try:
            # Everything that does not wait on another starts at once; nginx comes last.
            if "standin" in self.components:
                self._spawn("standin")
            if "backend" in self.components:
                self._create_database()
                self._migrate()
                self._spawn("backend")
            if "standin" in self.components:
                self._wait_ready("standin")  # the workers get its final address
            for _ in range(self.workers if "worker" in self.components else 0):
                self._spawn("worker")
            if "frontend" in self.components:
                if self.frontend_mode == "built":
                    self._build_frontend()
                self._spawn("frontend")
            self._write_state()
            for component in self.procs:
                self._wait_ready(component)
            if "nginx" in self.components:
                self._launch("nginx")
            self._write_state()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Stops every process; an `up` stack also loses its database, Redis keys and queues."""
        stop_all([p for procs in self.procs.values() for p in procs])
        self.procs.clear()
        if not self.dev and self.env:
            self._drop_resources()
        self.state_file.unlink(missing_ok=True)

    def start(self, component: str) -> None:
        """(Re)starts every stopped process of the component and waits until each is ready;
        a component not started yet starts (the worker with `workers` processes)."""
        procs = self.procs.get(component)
        if not procs:
            for _ in range(self.workers if component == "worker" else 1):
                self._spawn(component)
        else:
            for index, proc in enumerate(procs):
                if not proc.alive():
                    self._spawn(component, index)
        self._wait_ready(component)
        self._write_state()

    def add_worker(self) -> int:
        """One more worker process (scaling up); returns its index."""
        self._launch("worker")
        self._write_state()
        return len(self.procs["worker"]) - 1

    def stop(self, component: str, sig: int = signal.SIGTERM, index: int | None = None) -> None:
        procs = self.procs.get(component, [])
        stop_all(procs if index is None else [procs[index]], sig)
        self._write_state()

    def restart(self, component: str) -> None:
        self.stop(component)
        self.start(component)

    def pids(self, component: str) -> list[int]:
        return [p.pid for p in self.procs.get(component, []) if p.alive()]

    def log(self, component: str) -> str:
        return Path(self.logs[component]).read_text(errors="replace")

    def __enter__(self) -> Stack:
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    @classmethod
    def load(cls, name: str) -> Stack:
        """The stack `up` left running, from its `.stack/NAME.json`."""
        state_file = STATE_DIR / f"{name}.json"
        try:
            state = json.loads(state_file.read_text())
        except FileNotFoundError:
            raise StackError(f"no stack named {name!r} is up (no {state_file})") from None
        stack = cls(
            name,
            components=list(state["pids"]) or list(COMPONENTS),
            workers=len(state["pids"].get("worker", [])) or 1,
            frontend=state.get("frontend", "built"),
        )
        stack.ports, stack.env, stack.logs = state["ports"], state["env"], state["logs"]
        if "standin" in stack.components and "GEMINI_API_KEYS" not in os.environ:
            # Left out of the state file; the stand-in's keys are the only ones it can be.
            stack.env["GEMINI_API_KEYS"] = STANDIN_KEYS
        for name in SECRET_SETTINGS:
            # Left out of the state file too; a restarted service needs the same value (the
            # admin-added keys are encrypted with SECRET_KEY): read it from a running one.
            value = os.environ.get(name) or _running_setting(state["pids"], name)
            if name not in stack.env and value:
                stack.env[name] = value
        stack.database = state.get("database", "")
        stack.procs = {c: [Proc(c, pid) for pid in pids] for c, pids in state["pids"].items()}
        return stack

    # ----------------------------------------------------------------- setup

    def _check_installed(self) -> None:
        needs = {
            "backend": BACKEND_DIR / ".venv" / "bin" / "uvicorn",
            "worker": WORKER_DIR / ".venv" / "bin" / "python",
            "standin": WORKER_DIR / ".venv" / "bin" / "python",
            "frontend": FRONTEND_DIR / "node_modules" / ".bin" / "vite",
        }
        missing = [
            str(path.relative_to(ROOT))
            for c, path in needs.items()
            if c in self.components and not path.exists()
        ]
        if "nginx" in self.components and not shutil.which("nginx"):
            missing.append("nginx (apt-get install nginx)")
        if missing:
            raise StackError(f"not installed: {', '.join(missing)}; run `make install` first")

    def _plan(self) -> None:
        """Ports, names and the settings every service gets."""
        if self.dev:
            self.ports = {c: DEV_PORTS[c] for c in self.components if c in DEV_PORTS}
            busy = [f"{c} {p}" for c, p in self.ports.items() if port_open(p)]
            if busy:
                raise StackError(f"dev port(s) in use: {', '.join(busy)} (another `make dev`?)")
            self.database = "chat_dev"
            prefix, request, response = "chat:", DEFAULT_REQUEST_QUEUE, DEFAULT_RESPONSE_QUEUE
        else:
            self.ports = {c: free_port() for c in self.components if c in DEV_PORTS}
            tag = secrets.token_hex(4)
            self.database = f"chat_{self.name.replace('-', '_')}_{tag}"
            prefix = f"{self.name}:{tag}:"
            request = f"{DEFAULT_REQUEST_QUEUE}.{self.name}.{tag}"
            response = f"{DEFAULT_RESPONSE_QUEUE}.{self.name}.{tag}"
        isolating = {
            "DATABASE_URL": f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.database}",
            "REDIS_KEY_PREFIX": prefix,
            "REQUEST_QUEUE": request,
            "RESPONSE_QUEUE": response,
        }
        settings = {
            **isolating,
            "REDIS_URL": REDIS_URL,
            "RABBITMQ_URL": RABBITMQ_URL,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "WEB_CONCURRENCY": "2",  # uvicorn's process count, as in docker-compose.yml
            # Every client of a native stack is 127.0.0.1, and the tests and benchmarks sign up
            # hundreds of users: the per-address sign-up limit would stop them (nginx exempts
            # loopback for the same reason). The caller's own value wins.
            "SIGNUPS_PER_ADDRESS_PER_HOUR": "0",
        }
        public = [
            f"http://{host}:{self.ports[c]}"
            for c in ("nginx", "frontend")
            if c in self.ports
            for host in ("127.0.0.1", "localhost")
        ]
        if public:
            settings["CORS_ORIGINS"] = ",".join(public)
        # The caller's own settings win over these defaults, except for what isolates this
        # stack from the others; explicit `env=` wins over everything.
        settings.update(
            {
                k: v
                for k, v in os.environ.items()
                if k in SETTING_NAMES or k.startswith(SETTING_PREFIXES)
            }
        )
        settings.update(isolating)
        if "standin" in self.components:
            settings["GEMINI_BASE_URL"] = f"http://127.0.0.1:{self.ports['standin']}"
            settings["GEMINI_API_KEYS"] = settings.get("GEMINI_API_KEYS") or STANDIN_KEYS
        settings.update(self.caller_env)
        self.env = {k: str(v) for k, v in settings.items()}

    def _create_database(self) -> None:
        database = urllib.parse.urlsplit(self.env["DATABASE_URL"]).path.lstrip("/")
        self.database = database
        exists = psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'")
        if not exists:
            psql(f'CREATE DATABASE "{database}"')

    def _migrate(self) -> None:
        log = Path(self.logs["backend"])
        with log.open("a") as out:
            out.write("$ alembic upgrade head\n")
            out.flush()
            done = subprocess.run(
                [str(BACKEND_DIR / ".venv" / "bin" / "alembic"), "upgrade", "head"],
                cwd=BACKEND_DIR,
                env=self._child_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=300,
            )
        if done.returncode:
            raise StackError(f"migrations failed (alembic upgrade head), {log}:\n{tail(log)}")

    def _build_frontend(self) -> None:
        """`npm run build` when dist/ is missing or older than the sources; one build at a time."""
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with open(STATE_DIR / "frontend-build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            built = FRONTEND_DIR / "dist" / "index.html"
            if built.exists() and built.stat().st_mtime >= self._frontend_sources_mtime():
                return
            log = Path(self.logs["frontend"])
            with log.open("a") as out:
                out.write("$ npm run build\n")
                out.flush()
                done = subprocess.run(
                    ["npm", "run", "build"],
                    cwd=FRONTEND_DIR,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self._child_env(),
                    timeout=BUILD_SECONDS,
                )
            if done.returncode:
                raise StackError(f"front-end build failed (npm run build), {log}:\n{tail(log)}")

    @staticmethod
    def _frontend_sources_mtime() -> float:
        newest = 0.0
        for entry in FRONTEND_DIR.iterdir():
            if entry.name in ("node_modules", "dist", "tests", "test-results", "e2e", "docker"):
                continue
            paths = entry.rglob("*") if entry.is_dir() else [entry]
            for path in paths:
                if path.is_file():
                    newest = max(newest, path.stat().st_mtime)
        return newest

    # ----------------------------------------------------------------- processes

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _command(self, component: str) -> tuple[list[str], Path]:
        port = str(self.ports.get(component, ""))
        if component == "backend":
            return [
                ".venv/bin/uvicorn",
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                port,
            ], BACKEND_DIR
        if component == "worker":
            return [".venv/bin/python", "-m", "src.main"], WORKER_DIR
        if component == "standin":
            return [
                ".venv/bin/python",
                "-m",
                "standin",
                "--host",
                "127.0.0.1",
                "--port",
                port,
            ], WORKER_DIR
        if component == "frontend":
            vite = ["node_modules/.bin/vite"]
            if self.frontend_mode == "built":
                vite.append("preview")
            return [*vite, "--host", "127.0.0.1", "--port", port, "--strictPort"], FRONTEND_DIR
        if component == "nginx":
            conf = self._render_nginx()
            return ["nginx", "-p", str(conf.parent), "-c", str(conf), "-e", "stderr"], ROOT
        raise StackError(f"unknown component {component!r}")

    def _launch(self, component: str, index: int | None = None) -> None:
        self._spawn(component, index)
        self._wait_ready(component)

    def _spawn(self, component: str, index: int | None = None) -> None:
        if component not in self.components:
            raise StackError(f"{component} is not part of stack {self.name!r}")
        cmd, cwd = self._command(component)
        log_path = Path(self.logs[component])
        with log_path.open("a") as log:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            offset = log.tell()
            popen = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=self._child_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = Proc(component, popen.pid, popen)
        proc.log_offset = offset
        procs = self.procs.setdefault(component, [])
        if index is None:
            procs.append(proc)
        else:
            procs[index] = proc

    def _wait_ready(self, component: str) -> None:
        deadline = time.monotonic() + READY_SECONDS[component]
        log = Path(self.logs[component])
        while time.monotonic() < deadline:
            for index, proc in enumerate(self.procs[component]):
                if proc.alive():
                    continue
                if self._lost_port_race(component, proc):
                    # Another process took the free port between our pick and the bind.
                    self._move_port(component, free_port())
                    self._spawn(component, index)
                    self.procs[component][index].port_retries = proc.port_retries + 1
                    continue
                raise StackError(f"{component} exited while starting, {log}:\n{tail(log)}")
            if self._ready(component):
                return
            time.sleep(0.2)
        raise StackError(
            f"{component} not ready after {READY_SECONDS[component]} s "
            f"({self._ready_detail(component)}), {log}:\n{tail(log)}"
        )

    def _move_port(self, component: str, port: int) -> None:
        old, self.ports[component] = self.ports[component], port
        for name in ("GEMINI_BASE_URL", "CORS_ORIGINS"):
            if name in self.env:
                self.env[name] = re.sub(rf":{old}\b", f":{port}", self.env[name])

    def _lost_port_race(self, component: str, proc: Proc) -> bool:
        if self.dev or component not in self.ports or proc.port_retries >= 2:
            return False
        with open(self.logs[component], errors="replace") as log:
            log.seek(proc.log_offset)
            output = log.read()
        return any(sign in output for sign in ("already in use", "EADDRINUSE"))

    def _ready(self, component: str) -> bool:
        port = self.ports.get(component)
        if component == "backend":
            return http_status(port, "/api/health") == 200
        if component == "standin":
            return port_open(port)
        if component == "frontend":
            return http_status(port, "/") == 200
        if component == "nginx":
            if "frontend" in self.components:
                return http_status(port, "/") == 200
            if "backend" in self.components:
                return http_status(port, "/api/health") == 200
            return port_open(port)
        if component == "worker":
            # Ready when every live worker consumes the request queue.
            try:
                amqp = Amqp(self.env["RABBITMQ_URL"])
            except (OSError, StackError):
                return False
            try:
                consumers = amqp.consumers(self.env["REQUEST_QUEUE"]) or 0
            finally:
                amqp.close()
            return consumers >= len(self.pids("worker"))
        return False

    def _ready_detail(self, component: str) -> str:
        port = self.ports.get(component)
        if component == "worker":
            return (
                f"waiting for {len(self.pids('worker'))} consumer(s) on {self.env['REQUEST_QUEUE']}"
            )
        path = "/api/health" if component == "backend" else "/"
        return f"GET http://127.0.0.1:{port}{path} answered {http_status(port, path)}"

    def _render_nginx(self) -> Path:
        return write_nginx_config(
            self.dir / "nginx",
            listen=f"127.0.0.1:{self.ports['nginx']}",
            backend=f"127.0.0.1:{self.ports.get('backend') or free_port()}",
            frontend=f"127.0.0.1:{self.ports.get('frontend') or free_port()}",
        )

    # ----------------------------------------------------------------- teardown, state

    def _drop_resources(self) -> None:
        problems = []
        if self.database:
            try:
                psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            except StackError as exc:
                problems.append(str(exc))
        try:
            redis = Redis(self.env["REDIS_URL"])
            try:
                redis.delete_prefix(self.env["REDIS_KEY_PREFIX"])
            finally:
                redis.close()
        except (OSError, StackError) as exc:
            problems.append(f"redis: {exc}")
        try:
            names = queue_names(self.env)
            amqp = Amqp(self.env["RABBITMQ_URL"])
            try:
                for queue in names:
                    amqp.delete(queue)
            finally:
                amqp.close()
        except (OSError, StackError, subprocess.SubprocessError) as exc:
            problems.append(f"rabbitmq: {exc}")
        for problem in problems:
            print(f"stack {self.name}: cleanup: {problem}", file=sys.stderr)

    def _write_state(self) -> None:
        if self.dev:
            return
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        state = {
            "url": self.url,
            "ports": self.ports,
            "env": {k: v for k, v in self.env.items() if k not in SECRET_SETTINGS},
            "pids": {c: [p.pid for p in procs] for c, procs in self.procs.items()},
            "logs": self.logs,
            "database": self.database,
            "frontend": self.frontend_mode,
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def state(self) -> dict:
        return json.loads(self.state_file.read_text())


def _running_setting(pids: dict[str, list[int]], name: str) -> str | None:
    """A setting from the environment of one of the stack's live processes (Linux /proc)."""
    for pid in (p for group in pids.values() for p in group):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        for entry in environ.split(b"\0"):
            key, _, value = entry.partition(b"=")
            if key.decode(errors="replace") == name:
                return value.decode(errors="replace")
    return None


def write_nginx_config(home: Path, listen: str, backend: str, frontend: str) -> Path:
    """The shared site template inside a small main config whose files all live in `home`;
    returns the main config, to run as `nginx -p HOME -c CONF -e stderr`."""
    home.mkdir(parents=True, exist_ok=True)
    site = render_template(
        NGINX_TEMPLATE.read_text(),
        {
            "NGINX_LISTEN": listen,
            "BACKEND_UPSTREAM": backend,
            "FRONTEND_UPSTREAM": frontend,
        },
    )
    (home / "default.conf").write_text(site)
    mime = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else ""
    temp = "\n".join(
        f"    {kind}_temp_path {home / (kind + '_temp')};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = home / "nginx.conf"
    conf.write_text(f"""# Written by scripts/stack.py; the site is nginx/default.conf.template.
daemon off;
worker_processes 1;
pid {home / "nginx.pid"};
error_log stderr warn;
events {{
    worker_connections 1024;
}}
http {{
    {mime}
    default_type application/octet-stream;
    access_log {home / "access.log"};
{temp}
    sendfile on;
    keepalive_timeout 65;
    include {home / "default.conf"};
}}
""")
    return conf


def render_template(text: str, values: dict[str, str]) -> str:
    """envsubst for just these names, as the nginx image does; nginx's own $vars stay."""
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return text


# --------------------------------------------------------------------------- CLI


def run_dev(frontend: str) -> int:
    stack = Stack("dev", frontend=frontend, dev=True)
    stopping = []

    def on_signal(signum, _frame):
        stopping.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if "standin" in stack.components:
        print(
            "dev: GEMINI_API_KEYS is not set, so replies come from the OFFLINE Gemini stand-in "
            "(gemini-client/standin), not from Google. Set GEMINI_API_KEYS for real answers."
        )
    try:
        stack.up()
    except StackError as exc:
        print(f"dev: {exc}", file=sys.stderr)
        return 1
    print(
        f"dev: the app is at http://localhost:{stack.ports['nginx']}  "
        f"(API docs: /api/docs; logs in .stack/dev/; Ctrl-C stops everything)"
    )
    offsets = {c: Path(p).stat().st_size for c, p in stack.logs.items()}
    code = 0
    while not stopping:
        for component, path in stack.logs.items():
            with open(path, errors="replace") as log:
                log.seek(offsets[component])
                chunk = log.read()
                offsets[component] = log.tell()
            for line in chunk.splitlines():
                print(f"[{component}] {line}", flush=True)
        dead = [c for c, procs in stack.procs.items() if any(not p.alive() for p in procs)]
        if dead:
            print(f"dev: {', '.join(dead)} stopped; stopping the rest", file=sys.stderr)
            code = 1
            break
        time.sleep(0.3)
    stack.down()
    print("dev: stopped everything (the chat_dev database and its data stay)")
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Runs the chat stack natively.")
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="the whole stack on the fixed dev ports, in the foreground")
    dev.add_argument("--frontend", choices=("dev", "built"), default="dev")
    up = sub.add_parser("up", help="start a stack detached with its own database, keys and queues")
    up.add_argument("--name", required=True)
    up.add_argument("--components", help=f"comma-separated subset of {','.join(COMPONENTS)}")
    up.add_argument("--workers", type=int, default=1)
    up.add_argument("--frontend", choices=("built", "dev"), default="built")
    down = sub.add_parser("down", help="stop a stack and drop its database, Redis keys and queues")
    down.add_argument("--name", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    if args.command == "dev":
        return run_dev(args.frontend)
    try:
        if args.command == "up":
            components = args.components.split(",") if args.components else None
            stack = Stack(
                args.name, components=components, workers=args.workers, frontend=args.frontend
            )
            if "standin" in stack.components and not os.environ.get("GEMINI_API_KEYS"):
                print(
                    "stack: replies come from the OFFLINE Gemini stand-in, not from Google.",
                    file=sys.stderr,
                )
            stack.up()
            print(json.dumps(stack.state(), indent=2))
        else:
            Stack.load(args.name).down()
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
