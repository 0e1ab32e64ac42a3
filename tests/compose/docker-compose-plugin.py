#!/usr/bin/env python3
"""`docker compose` for this machine, where only Debian's docker-compose 1.29 exists: a docker
CLI plugin (installed by the suite into its own DOCKER_CONFIG/cli-plugins) that hands every
command to docker-compose, so the suite types the README's commands verbatim.

The one difference it bridges: 1.29 has no `up --wait`. The shim runs `up` without it, then
polls until every container of the project is healthy (or running, when it has no
healthcheck), for at most COMPOSE_WAIT_SECONDS (default 600), and says so on stderr."""

import json
import os
import subprocess
import sys
import time

if sys.argv[1:2] == ["docker-cli-plugin-metadata"]:
    print(
        json.dumps(
            {
                "SchemaVersion": "0.1.0",
                "Vendor": "gemini-chat tests",
                "Version": "1.29-shim",
                "ShortDescription": "docker-compose 1.29 under the compose plugin's name",
            }
        )
    )
    sys.exit(0)

args = sys.argv[2:]  # argv[1] is the plugin's name, "compose"
up_at = next((i for i, a in enumerate(args) if a == "up"), None)
if up_at is None or "--wait" not in args[up_at:]:
    os.execvp("docker-compose", ["docker-compose", *args])

print(
    "compose shim: `up --wait` emulated: docker-compose 1.29 `up`, then polling health",
    file=sys.stderr,
    flush=True,
)
args = args[:up_at] + [a for a in args[up_at:] if a != "--wait"]
done = subprocess.run(["docker-compose", *args])
if done.returncode:
    sys.exit(done.returncode)
deadline = time.monotonic() + float(os.environ.get("COMPOSE_WAIT_SECONDS", "600"))
ps = ["docker-compose", *args[:up_at], "ps", "-q"]
while True:
    ids = subprocess.run(ps, capture_output=True, text=True, check=True).stdout.split()
    states = {}
    for cid in ids:
        info = json.loads(
            subprocess.run(
                ["docker", "inspect", cid], capture_output=True, text=True, check=True
            ).stdout
        )[0]
        state = info["State"]
        status = state.get("Health", {}).get("Status") or state["Status"]
        states[info["Name"].lstrip("/")] = status
    waiting = {n: s for n, s in states.items() if s not in ("healthy", "running")}
    if ids and not waiting:
        sys.exit(0)
    bad = {n: s for n, s in waiting.items() if s in ("exited", "dead", "unhealthy")}
    if bad or time.monotonic() > deadline:
        print(f"compose shim: not healthy: {bad or waiting}", file=sys.stderr)
        sys.exit(1)
    time.sleep(2)
