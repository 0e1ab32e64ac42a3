"""Builds the stand-ins of the official images that docker-compose.yml, our Dockerfiles and
the README name, tagged with exactly those names, so the real files run unchanged although no
image registry is reachable here. Each stand-in is rebuilt only when its build files (or the
host files copied into it) changed: the image carries their SHA-256 as a label. An image of
that name without our label is a real official image and is left alone and used.

Run: python3 tests/compose/images.py (after tests/compose/base.sh made the Debian root)."""

import hashlib
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = "chat-standin/bookworm:base"
LABEL = "chat.standin.hash"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass
class StandIn:
    folder: str
    tag: str
    note: str
    args: dict[str, str] = field(default_factory=dict)
    # host path -> name in the build context (this machine's trust store, its Node 20)
    extra: dict[Path, str] = field(default_factory=dict)


STANDINS = [
    StandIn(
        "python",
        "python:3.11-slim-bookworm",
        "Debian's Python 3.11",
        extra={CA_BUNDLE: "ca-certificates.crt"},
    ),
    StandIn(
        "node",
        "node:20-alpine",
        "this machine's Node 20 on Debian (not Alpine)",
        extra={
            CA_BUNDLE: "ca-certificates.crt",
            Path(shutil.which("node") or "/usr/bin/node").resolve(): "node",
            Path("/usr/lib/node_modules/npm"): "npm",
        },
    ),
    StandIn("nginx", "nginx:1.27-alpine", "Debian's nginx 1.22 under the 1.27 tag"),
    StandIn(
        "nginx",
        "nginxinc/nginx-unprivileged:1.27-alpine",
        "Debian's nginx 1.22 under the 1.27 tag, as uid 101",
        args={"UNPRIVILEGED": "1"},
    ),
    StandIn("postgres", "postgres:16-alpine", "Debian's PostgreSQL 15 under the 16 tag"),
    StandIn("redis", "redis:7-alpine", "Debian's Redis 7.0"),
    StandIn("rabbitmq", "rabbitmq:3-management-alpine", "Debian's RabbitMQ 3.10 with management"),
    StandIn(
        "hysteria", "tobyxdd/hysteria:v2", "NOT Hysteria: a plain HTTP/SOCKS5 forwarding proxy"
    ),
    StandIn("alpine", "alpine:latest", "Debian minbase (sh, tar, gzip)"),
]


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def _hash_path(digest, path: Path) -> None:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        digest.update(str(p.relative_to(path) if path.is_dir() else p.name).encode())
        digest.update(p.read_bytes())


def content_hash(standin: StandIn) -> str:
    digest = hashlib.sha256(docker("image", "inspect", "-f", "{{.Id}}", BASE).stdout.encode())
    _hash_path(digest, HERE / "standins" / standin.folder)
    for host_path in sorted(standin.extra):
        _hash_path(digest, host_path)
    digest.update(repr(sorted(standin.args.items())).encode())
    return digest.hexdigest()


def ensure(standin: StandIn) -> str:
    found = docker(
        "image",
        "inspect",
        "-f",
        f'{{{{index .Config.Labels "{LABEL}"}}}}',
        standin.tag,
        check=False,
    )
    if found.returncode == 0 and found.stdout.strip() in ("", "<no value>"):
        return f"{standin.tag}: the real image is present, used as it is"
    wanted = content_hash(standin)
    if found.returncode == 0 and found.stdout.strip() == wanted:
        return f"{standin.tag}: stand-in reused ({standin.note})"
    with tempfile.TemporaryDirectory(prefix="chat-standin-") as context:
        shutil.copytree(HERE / "standins" / standin.folder, context, dirs_exist_ok=True)
        for host_path, name in standin.extra.items():
            copy = shutil.copytree if host_path.is_dir() else shutil.copy2
            copy(host_path, Path(context) / name)
        build_args = [f"--build-arg={k}={v}" for k, v in standin.args.items()]
        done = subprocess.run(
            [
                "docker",
                "build",
                "-q",
                f"--label={LABEL}={wanted}",
                *build_args,
                "-t",
                standin.tag,
                context,
            ],
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise RuntimeError(f"{standin.tag}: stand-in build failed:\n" + "\n".join(tail))
    return f"{standin.tag}: stand-in built ({standin.note})"


def main() -> int:
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(ensure, s) for s in STANDINS]
        failed = False
        for future in futures:
            try:
                print("stand-in image", future.result(), flush=True)
            except RuntimeError as exc:
                print(f"test-compose: {exc}", file=sys.stderr)
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
