"""A real forward proxy (tinyproxy) between the worker and the stand-in, standing in for the
production hysteria2 client, so a test can take it away and bring it back on the same port."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sysproxy-"))
        self.conf = self.dir / "tinyproxy.conf"
        self.conf.write_text(
            f"Port {self.port}\nListen 127.0.0.1\nTimeout 120\nLogLevel Connect\n"
            "MaxClients 400\nAllow 127.0.0.1\nDisableViaHeader Yes\n"
        )
        self.log = self.dir / "tinyproxy.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = self.log.open("a")
        self.proc = subprocess.Popen(
            ["tinyproxy", "-d", "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
        )
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"tinyproxy did not start: {self.log.read_text()[-500:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def requests_seen(self) -> int:
        """Requests the proxy forwarded: proof that traffic really goes through it."""
        if not self.log.exists():
            return 0
        return sum(1 for line in self.log.read_text().splitlines() if "]: Request " in line)
