"""HTTP_PROXY: Gemini calls (and only they) go through a real proxy; a dead proxy is survived."""

import asyncio
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from standin.replies import reply_text

from .support import free_port, request, wait_for

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"


class Tinyproxy:
    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.log = workdir / f"tinyproxy-{port}.log"
        conf = workdir / f"tinyproxy-{port}.conf"
        conf.write_text(
            f"Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 200\nLogLevel Connect\n"
            "Allow 127.0.0.1\nDisableViaHeader Yes\n"
        )
        self.proc = subprocess.Popen(
            [TINYPROXY, "-d", "-c", str(conf)],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )

    async def ready(self) -> None:
        async def accepting() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            writer.close()
            return True

        await wait_for(accepting, 10, "tinyproxy to listen")

    def posts(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if "Request" in line
                and "POST http://" in line]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def proxies(tmp_path: Path) -> Iterator:
    if not Path(TINYPROXY).exists():
        pytest.fail("tinyproxy is missing: run scripts/ensure-tools.sh")
    started: list[Tinyproxy] = []

    def start(port: int | None = None) -> Tinyproxy:
        started.append(Tinyproxy(tmp_path, port or free_port()))
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop()


async def test_gemini_calls_pass_through_the_http_proxy(spawn, bus, standin, proxies):
    proxy = proxies()
    await proxy.ready()
    await spawn(HTTP_PROXY=f"http://127.0.0.1:{proxy.port}").started()
    bodies = [request(f"via proxy {i}") for i in range(3)]
    for body in bodies:
        await bus.send(body)
    for body in bodies:
        done = await bus.final(body["request_id"])
        assert done["status"] == "completed"
        assert done["content"] == reply_text(body["contents"][0]["text"])
    posts = proxy.posts()
    assert len(posts) == 3
    assert all(f"POST {standin.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent" in p
               for p in posts)


async def test_proxy_down_retries_then_recovers(spawn, bus, proxies):
    port = free_port()
    await spawn(
        HTTP_PROXY=f"http://127.0.0.1:{port}", QUEUE_RETRY_DELAYS="1,2", QUEUE_MAX_RETRIES="4"
    ).started()
    body = request("is the proxy back?")
    await bus.send(body)
    (retrying, *_) = await wait_for(
        lambda: bus.of(body["request_id"], "retrying"), 15, "a retrying response"
    )
    assert retrying["error"]["code"] in ("proxy_error", "connection_error")
    proxy = proxies(port)
    await proxy.ready()
    done = await bus.final(body["request_id"], within=20)
    assert done["status"] == "completed" and done["attempt"] >= 1
    assert len(proxy.posts()) == 1


class Socks5:
    """A minimal SOCKS5 (no auth, CONNECT) relay that counts the connections it carried."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _, methods = await reader.readexactly(2)
            await reader.readexactly(methods)
            writer.write(b"\x05\x00")
            _, _, _, kind = await reader.readexactly(4)
            if kind == 1:
                host = ".".join(str(b) for b in await reader.readexactly(4))
            else:
                host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            (port,) = struct.unpack("!H", await reader.readexactly(2))
            self.connects.append((host, port))
            up_reader, up_writer = await asyncio.open_connection(host, port)
            writer.write(b"\x05\x00\x00\x01" + bytes(4) + b"\x00\x00")

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            writer.close()


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_gemini_calls_pass_through_a_socks5_proxy(spawn, bus, standin, scheme):
    socks = Socks5()
    port = await socks.start()
    try:
        await spawn(HTTP_PROXY=f"{scheme}://127.0.0.1:{port}").started()
        body = request("via socks")
        await bus.send(body)
        done = await bus.final(body["request_id"])
        assert done["status"] == "completed" and done["content"] == reply_text("via socks")
        assert ("127.0.0.1", standin.port) in socks.connects
    finally:
        socks.server.close()


async def test_gemini_proxies_tie_each_key_to_one_proxy_and_survive_one_down(
    spawn, bus, standin, proxies
):
    """GEMINI_PROXIES: each key always goes out through the same proxy, the keys spread over
    the proxies, and with one proxy down the replies still complete on the other proxies' keys
    (its keys are not moved: their calls fail over to another key, as the README says)."""
    keys = [f"test-key-proxies-{i:04d}" for i in range(9)]
    pool = [proxies() for _ in range(3)]
    for proxy in pool:
        await proxy.ready()
    worker = await spawn(
        GEMINI_API_KEYS=",".join(keys),
        GEMINI_PROXIES=",".join(f"http://127.0.0.1:{p.port}" for p in pool),
        QUEUE_RETRY_DELAYS="0.3,0.6", QUEUE_MAX_RETRIES="4",
    ).started()

    # One request at a time: the proxy whose log grew and the key the stand-in saw belong
    # to the same call.
    seen: dict[str, set[int]] = {}
    for i in range(3 * len(keys)):
        posts = [len(p.posts()) for p in pool]
        calls = standin.stats()["calls"]
        body = request(f"which proxy {i}")
        await bus.send(body)
        done = await bus.final(body["request_id"])
        assert done["status"] == "completed", done
        grew = await wait_for(
            lambda before=posts: [n for n, p in enumerate(pool) if len(p.posts()) > before[n]],
            5,
            "the proxy's log line",
        )
        after = standin.stats()["calls"]
        (kid,) = [k for k in after if after[k] > calls.get(k, 0)]
        assert len(grew) == 1
        seen.setdefault(kid, set()).update(grew)
    assert len(seen) == len(keys), "every key was used"
    assert all(len(via) == 1 for via in seen.values()), seen  # one proxy per key, always
    proxy_of = {kid: via.pop() for kid, via in seen.items()}
    by_proxy = {n: {k for k, p in proxy_of.items() if p == n} for n in range(len(pool))}
    assert sum(1 for held in by_proxy.values() if held) > 1, by_proxy  # spread

    down = max(by_proxy, key=lambda n: len(by_proxy[n]))
    pool[down].stop()
    standin.reset()
    bodies = [request(f"one proxy down {i}") for i in range(2 * len(keys))]
    for body in bodies:
        await bus.send(body)
    for body in bodies:
        done = await bus.final(body["request_id"], within=30)
        assert done["status"] == "completed", done
        assert done["content"] == reply_text(body["contents"][0]["text"])
    reached = set(standin.stats()["calls"])
    assert reached and not reached & by_proxy[down], "a down proxy's keys stay on it"
    failed = [line for line in worker.log_lines() if line.get("event") == "gemini_failed"]
    assert failed and all(
        line["key_id"] in by_proxy[down]
        and line["code"] in ("proxy_error", "connection_error") for line in failed
    ), failed
