"""Round trips per reply, counted rather than timed: the same on a busy machine as on a quiet one.

    tests/.venv/bin/python bench/roundtrips.py [--replies 20]

Starts its own stack (backend, 1 worker, zero-latency stand-in, nginx), sends replies one after
another in one chat followed over SSE, and counts per reply, by process:
- Redis commands each client sent (MONITOR), and the commands run inside Lua scripts;
- SQL statements the backend sent (PostgreSQL's `log_statement = 'all'`, set with ALTER SYSTEM
  for the run and reset after: other databases on the server log too meanwhile).
Needs the server's log at /var/log/postgresql/ (Debian's layout) and root for `ss -p`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench
from harness.launch import running_stack, wait_healthy

PG_LOG = next(Path("/var/log/postgresql").glob("postgresql-*-main.log"), None)
MONITOR_LINE = re.compile(r'\+?[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"(.*)')
PG_STATEMENT = re.compile(r"\] \S*@(\S+) LOG:  (?:statement|execute [^:]*): (.*)")


class Monitor(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        self.lines: list[str] = []

    def run(self) -> None:
        sock = socket.create_connection(("127.0.0.1", 6379))
        sock.sendall(b"MONITOR\r\n")
        sock.settimeout(0.2)
        data = b""
        while not self.stopping.is_set():
            try:
                data += sock.recv(1 << 20)
            except TimeoutError:
                continue
        sock.close()
        self.lines = data.decode(errors="replace").split("\r\n")


ID_PART = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|[0-9a-f]{8,}|\d{4}-\d\d-\d\d")


def script_name(args: str, prefix: str) -> str:
    """A script call named by its first key, ids left out: `events:*`, `claim:*:0`, ..."""
    words = re.findall(r'"((?:[^"\\]|\\.)*)"', args)
    if len(words) < 3 or words[1] == "0":
        return "(no keys)"
    return ID_PART.sub("*", words[2].removeprefix(prefix))


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qAtc", sql], check=True
    )


def redis_clients() -> dict[str, int]:
    """Local address of each Redis connection on the machine → pid."""
    out = subprocess.run(
        ["ss", "-tnpH"], check=False, capture_output=True, text=True
    ).stdout
    found = {}
    for line in out.splitlines():
        cols = line.split()
        pid = re.search(r"pid=(\d+)", line)
        if len(cols) >= 5 and cols[4].endswith(":6379") and pid:
            found[cols[3]] = int(pid.group(1))
    return found


def parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def owner_of(pid: int, roots: dict[int, str]) -> str | None:
    while pid > 1:
        if pid in roots:
            return roots[pid]
        pid = parent_of(pid)
    return None


async def traffic(url: str, replies: int) -> tuple[Monitor, dict[str, int], int]:
    async with bench.Chats(url, 1, 1) as chats:
        for i in range(3):  # the stack's first requests compile and connect
            await chats.one(0, f"warm-up {i}")
        chats.turns[0] = -replies  # one chat for the whole run
        psql("ALTER SYSTEM SET log_statement = 'all'")
        psql("SELECT pg_reload_conf()")
        log_from = PG_LOG.stat().st_size
        monitor = Monitor()
        monitor.start()
        await asyncio.sleep(0.3)  # MONITOR is on before the first send
        try:
            for i in range(replies):
                sample = await chats.one(0, f"question {i}")
                assert sample.status == "completed", sample
            await asyncio.sleep(0.5)  # the last reply's trailing writes (outbox mark)
            clients = redis_clients()
        finally:
            monitor.stopping.set()
            monitor.join()
            psql("ALTER SYSTEM RESET log_statement")
            psql("SELECT pg_reload_conf()")
        return monitor, clients, log_from


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replies", type=int, default=20)
    n = parser.parse_args().replies
    env = {**bench.BASE_ENV, "STANDIN_FIRST_CHUNK_MS": "0", "STANDIN_CHUNK_MS": "0"}
    with running_stack("roundtrips", workers=1, env=env) as stack:
        wait_healthy(stack.url)
        prefix = stack.env["REDIS_KEY_PREFIX"]
        database = stack.database
        monitor, clients, log_from = asyncio.run(traffic(stack.url, n))
        roots = {
            pid: c for c in ("backend", "worker") for pid in bench.pids_of(stack, c)
        }
        owners = {address: owner_of(pid, roots) for address, pid in clients.items()}

    sent: dict[str, Counter] = defaultdict(Counter)
    scripts: dict[str, Counter] = defaultdict(Counter)
    in_lua: Counter = Counter()
    for line in monitor.lines:
        m = MONITOR_LINE.match(line)
        if not m:
            continue
        who, command, args = m.groups()
        if who == "lua":
            if prefix in args:
                in_lua[command.upper()] += 1
        elif (owner := owners.get(who)) is not None:
            sent[owner][command.upper()] += 1
            if command.upper() in ("EVALSHA", "EVAL"):
                scripts[owner][script_name(args, prefix)] += 1
    statements: Counter = Counter()
    with PG_LOG.open(errors="replace") as log:
        log.seek(log_from)
        for line in log:
            m = PG_STATEMENT.search(line)
            if m and m.group(1) == database:
                statements[
                    m.group(2).strip()[:80] or "(a statement over several lines)"
                ] += 1

    print(f"per reply, over {n} replies in one chat:")
    for owner, counts in sorted(sent.items()):
        top = ", ".join(f"{c} {v / n:.2f}" for c, v in counts.most_common())
        print(
            f"  Redis commands sent by the {owner}: {sum(counts.values()) / n:.2f} ({top})"
        )
        if scripts[owner]:
            top = ", ".join(f"{c} {v / n:.2f}" for c, v in scripts[owner].most_common())
            print(f"    scripts, by their first key: {top}")
    top = ", ".join(f"{c} {v / n:.1f}" for c, v in in_lua.most_common(8))
    print(
        f"  Redis commands inside Lua scripts: {sum(in_lua.values()) / n:.1f} ({top})"
    )
    print(f"  SQL statements: {sum(statements.values()) / n:.2f}")
    for text, count in statements.most_common(10):
        print(f"    {count / n:.2f}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
