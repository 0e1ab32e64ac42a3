"""nginx: the one site template passes `nginx -t` rendered both ways (natively by
scripts/stack.py, and as the official image renders it for compose), the front-end image's static
server config too; and the rendered site behaves: event streams pass unbuffered, security headers
and gzip are on, deep links reach the front end, the Vite websocket is forwarded, big bodies are
refused. The upstreams here are small local HTTP servers: the whole app behind this same config
is exercised by tests/system through scripts/stack.py."""

import gzip
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support import ROOT, resolved_compose

sys.path.insert(0, str(ROOT / "scripts"))
from stack import NGINX_TEMPLATE, free_port, port_open, write_nginx_config

EVENTS_PER_ADDRESS = 200  # limit_conn of the events location
FRONTEND_STATIC_CONF = ROOT / "frontend" / "docker" / "nginx.conf"
# The http {} block of the official nginx image's /etc/nginx/nginx.conf, which includes conf.d.
IMAGE_MAIN_CONF = """
worker_processes auto;
error_log stderr notice;
pid {home}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format main '$remote_addr - $remote_user [$time_local] "$request" $status '
                    '$body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"';
    access_log {home}/access.log main;
    client_body_temp_path {home}/client_body_temp;
    proxy_temp_path {home}/proxy_temp;
    sendfile on;
    keepalive_timeout 65;
    include {home}/conf.d/*.conf;
}}
"""


def nginx_test(
    conf: Path, home: Path, wrap: list[str] | None = None
) -> subprocess.CompletedProcess:
    cmd = ["nginx", "-t", "-p", str(home), "-c", str(conf), "-e", "stderr"]
    return subprocess.run((wrap or []) + cmd, capture_output=True, text=True)


class Rendering(unittest.TestCase):
    def setUp(self):
        self.home = Path(tempfile.mkdtemp(prefix="nginx-deploy-"))
        self.addCleanup(shutil.rmtree, self.home, True)

    def test_native_rendering_passes_nginx_t(self):
        conf = write_nginx_config(
            self.home, f"127.0.0.1:{free_port()}", "127.0.0.1:8000", "127.0.0.1:5173"
        )
        done = nginx_test(conf, self.home)
        self.assertEqual(done.returncode, 0, done.stderr)
        site = (self.home / "default.conf").read_text()
        self.assertNotIn("${", site)
        self.assertIn("$http_upgrade", site)  # nginx's own variables survive the substitution

    def test_compose_rendering_passes_nginx_t(self):
        """As the image's entrypoint does it (docker-entrypoint.d/20-envsubst-on-templates.sh):
        envsubst of every name in the container's environment, into conf.d/, included by the
        image's main config."""
        env = {k: str(v) for k, v in resolved_compose()["services"]["nginx"]["environment"].items()}
        image_env = {
            "PATH": "/usr/sbin:/usr/bin",
            "NGINX_VERSION": "1.27.5",
            "HOME": "/root",
            **env,
        }
        self.assertNotIn("NGINX_ENVSUBST_FILTER", env)  # its meaning changed between releases
        names = list(image_env)
        rendered = subprocess.run(
            ["envsubst", " ".join(f"${{{n}}}" for n in names)],
            input=NGINX_TEMPLATE.read_text(),
            capture_output=True,
            text=True,
            env=image_env,
            check=True,
        ).stdout
        self.assertIn("server backend:8000;", rendered)
        self.assertIn("listen 80;", rendered)
        self.assertIn("$chat_csp", rendered)
        (self.home / "conf.d").mkdir()
        (self.home / "conf.d" / "default.conf").write_text(rendered)
        conf = self.home / "nginx.conf"
        conf.write_text(IMAGE_MAIN_CONF.format(home=self.home))
        # nginx resolves the upstreams' names at load: give this test its own /etc/hosts in a
        # private mount namespace, with the compose network's service names. Without root
        # (no mount namespace) the names become 127.0.0.1 and the rest is checked the same.
        if os.geteuid() == 0:
            hosts = self.home / "hosts"
            hosts.write_text("127.0.0.1 localhost backend frontend\n")
            script = f'mount --bind "{hosts}" /etc/hosts && exec "$@"'
            wrap = ["unshare", "-m", "sh", "-c", script, "-"]
        else:
            site = self.home / "conf.d" / "default.conf"
            site.write_text(re.sub(r"server (backend|frontend):", "server 127.0.0.1:", rendered))
            wrap = []
        done = nginx_test(conf, self.home, wrap)
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_frontend_image_static_config_passes_nginx_t(self):
        conf = self._static_conf(listen_port=5173)
        done = nginx_test(conf, self.home)
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_frontend_image_serves_deep_links_and_caches_assets(self):
        port = free_port()
        conf = self._static_conf(listen_port=port)
        proc = subprocess.Popen(
            ["nginx", "-p", str(self.home), "-c", str(conf), "-e", "stderr"], stderr=subprocess.PIPE
        )
        self.addCleanup(_stop, proc)
        _wait_port(port, proc)
        status, headers, body = _get(port, "/chats/0b0e0c1a-1111-2222-3333-444455556666")
        self.assertEqual(status, 200)
        self.assertIn(b'<div id="app">', body)
        self.assertEqual(headers["cache-control"], "no-cache")
        status, headers, _ = _get(port, "/assets/index-abc123.js")
        self.assertEqual(status, 200)
        self.assertIn("immutable", headers["cache-control"])
        self.assertEqual(_get(port, "/assets/missing.js")[0], 404)

    def _static_conf(self, listen_port: int) -> Path:
        self.home.chmod(0o755)  # nginx's worker (nobody when run as root) reads the files
        html = self.home / "html"
        (html / "assets").mkdir(parents=True)
        (html / "index.html").write_text('<!doctype html><div id="app"></div>')
        (html / "assets" / "index-abc123.js").write_text("console.log(1)")
        site = FRONTEND_STATIC_CONF.read_text()
        site = site.replace("listen 5173;", f"listen 127.0.0.1:{listen_port};")
        site = site.replace("root /usr/share/nginx/html;", f"root {html};")
        (self.home / "conf.d").mkdir(exist_ok=True)
        (self.home / "conf.d" / "default.conf").write_text(site)
        conf = self.home / "nginx.conf"
        conf.write_text(
            IMAGE_MAIN_CONF.format(home=self.home).replace(
                "worker_processes auto;", "daemon off;\nworker_processes 1;"
            )
        )
        return conf


class Upstream(ThreadingHTTPServer):
    """A stand-in upstream that records what nginx sent it."""

    daemon_threads = True

    def __init__(self):
        self.seen: list[dict] = []
        self.first_read = threading.Event()
        self.release_held = threading.Event()  # ends the streams of chat "held"
        super().__init__(("127.0.0.1", 0), UpstreamHandler)

    @property
    def port(self) -> int:
        return self.server_address[1]


class UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.seen.append({"path": self.path, "headers": dict(self.headers)})
        if self.path.endswith("/held/events"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b": open\n\n")
            self.wfile.flush()
            self.server.release_held.wait(30)
            self.close_connection = True
            return
        if self.path.endswith("/events"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b'event: message.delta\ndata: {"text": "one"}\n\n')
            self.wfile.flush()
            # The second event only after the client has the first: a buffering proxy would
            # hold the first back until this handler gives up and ends the response.
            self.server.first_read.wait(5)
            self.wfile.write(b'event: message.delta\ndata: {"text": "two"}\n\n')
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.endswith(".json"):
            body, kind = json.dumps({"items": ["x" * 40] * 200}).encode(), "application/json"
        elif self.path.endswith(".js"):
            body, kind = b"export const x = 1;\n" * 200, "text/javascript"
        else:
            body, kind = b'<!doctype html><div id="app"></div>', "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.server.seen.append({"path": self.path, "headers": dict(self.headers)})
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Site(unittest.TestCase):
    """The rendered site template in front of two local upstreams."""

    @classmethod
    def setUpClass(cls):
        cls.home = Path(tempfile.mkdtemp(prefix="nginx-site-"))
        cls.backend, cls.frontend = Upstream(), Upstream()
        for server in (cls.backend, cls.frontend):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        cls.port = free_port()
        conf = write_nginx_config(
            cls.home,
            f"127.0.0.1:{cls.port}",
            f"127.0.0.1:{cls.backend.port}",
            f"127.0.0.1:{cls.frontend.port}",
        )
        cls.nginx = subprocess.Popen(
            ["nginx", "-p", str(cls.home), "-c", str(conf), "-e", "stderr"], stderr=subprocess.PIPE
        )
        _wait_port(cls.port, cls.nginx)

    @classmethod
    def tearDownClass(cls):
        _stop(cls.nginx)
        for server in (cls.backend, cls.frontend):
            server.shutdown()
            server.server_close()
        shutil.rmtree(cls.home, True)

    def test_event_stream_is_not_buffered(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.addCleanup(conn.close)
        started = time.monotonic()
        conn.request("GET", "/api/chats/0b0e0c1a/events", headers={"Accept": "text/event-stream"})
        response = conn.getresponse()
        self.assertEqual(response.status, 200)
        first = b""
        while b"\n\n" not in first:
            first += response.read1(1024)
        waited = time.monotonic() - started
        self.backend.first_read.set()
        self.assertIn(b'"one"', first)
        self.assertNotIn(b'"two"', first)
        self.assertLess(waited, 2.0, "the first event was held back by the proxy")
        self.assertNotEqual(response.getheader("Content-Encoding"), "gzip")
        rest = response.read()
        self.assertIn(b'"two"', rest)

    def test_open_event_streams_per_address_are_capped(self):
        """limit_conn: past EVENTS_PER_ADDRESS open streams from one address, 429; other
        routes from that address still answer."""
        held = []
        self.addCleanup(self.backend.release_held.set)
        for _ in range(EVENTS_PER_ADDRESS):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.addCleanup(conn.close)
            conn.request("GET", "/api/chats/held/events")
            response = conn.getresponse()
            self.assertEqual(response.status, 200)
            response.read1(64)
            held.append(response)
        status, _, _ = _get(self.port, "/api/chats/held/events")
        self.assertEqual(status, 429)
        status, _, _ = _get(self.port, "/api/chats?limit=5")
        self.assertEqual(status, 200)

    def test_api_goes_to_the_backend_with_forwarding_headers(self):
        status, _headers, _ = _get(self.port, "/api/chats?limit=5")
        self.assertEqual(status, 200)
        seen = self.backend.seen[-1]
        self.assertEqual(seen["path"], "/api/chats?limit=5")
        self.assertEqual(seen["headers"]["X-Forwarded-For"], "127.0.0.1")
        self.assertEqual(seen["headers"]["Host"], f"127.0.0.1:{self.port}")

    def test_security_headers(self):
        _, headers, _ = _get(self.port, "/")
        csp = headers["content-security-policy"]
        self.assertIn("script-src 'self';", csp)
        self.assertNotIn("unsafe-inline' https", csp.split("script-src")[1].split(";")[0])
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertEqual(headers["x-content-type-options"], "nosniff")
        self.assertEqual(headers["referrer-policy"], "strict-origin-when-cross-origin")
        self.assertNotIn("nginx/", headers.get("server", ""))
        # Swagger UI needs an inline bootstrap script, only there; its bundle is the backend's.
        _, headers, _ = _get(self.port, "/api/docs")
        docs_csp = headers["content-security-policy"]
        self.assertIn("script-src 'self' 'unsafe-inline';", docs_csp)
        self.assertNotIn("https:", docs_csp)

    def test_sign_in_routes_are_rate_limited_per_address(self):
        def login(source: str) -> tuple[int, dict, bytes]:
            return _post(self.port, "/api/auth/login", b'{"email":"a@b.c","password":"x"}', source)

        # 127.0.0.2 is a loopback address that is not exempt: a client of its own.
        statuses = [login("127.0.0.2")[0] for _ in range(40)]
        self.assertEqual(statuses[:20], [202] * 20)  # the burst goes through at once
        self.assertIn(429, statuses[20:])
        status, headers, body = login("127.0.0.2")
        self.assertEqual(status, 429)
        self.assertEqual(headers["retry-after"], "1")
        self.assertIn("too many sign-in requests", json.loads(body)["detail"])
        # Another address is not affected, nor the rest of the API, nor the native stack's
        # own loopback clients.
        self.assertEqual(login("127.0.0.3")[0], 202)
        self.assertEqual(_post(self.port, "/api/chats/x/messages", b"{}", "127.0.0.2")[0], 202)
        self.assertEqual([login("127.0.0.1")[0] for _ in range(40)], [202] * 40)

    def test_gzip_for_javascript_and_json(self):
        for path in ("/assets/index-abc.js", "/api/chats.json"):
            status, headers, body = _get(self.port, path, {"Accept-Encoding": "gzip"})
            self.assertEqual(status, 200, path)
            self.assertEqual(headers.get("content-encoding"), "gzip", path)
            self.assertTrue(gzip.decompress(body), path)

    def test_deep_links_reach_the_front_end(self):
        status, _, _body = _get(self.port, "/chats/0b0e0c1a-1111")
        self.assertEqual(status, 200)
        self.assertEqual(self.frontend.seen[-1]["path"], "/chats/0b0e0c1a-1111")
        # Vite's allowed-hosts check accepts this name whatever the browser used.
        self.assertEqual(self.frontend.seen[-1]["headers"]["Host"], "localhost")

    def test_vite_hot_reload_websocket_is_forwarded(self):
        _get(
            self.port,
            "/?token=abc",
            {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        headers = self.frontend.seen[-1]["headers"]
        self.assertEqual(headers["Upgrade"], "websocket")
        self.assertEqual(headers["Connection"].lower(), "upgrade")

    def test_oversized_body_is_refused(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.addCleanup(conn.close)
        conn.request(
            "POST",
            "/api/chats/x/messages",
            body=b"x" * (2 * 1024 * 1024),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(conn.getresponse().status, 413)

    def test_healthz(self):
        status, _, body = _get(self.port, "/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))


def _get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _post(port: int, path: str, body: bytes, source: str) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _wait_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited: {proc.stderr.read().decode()}")
        if port_open(port):
            return
        time.sleep(0.05)
    raise AssertionError(f"nginx did not listen on {port}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr:
        proc.stderr.close()


if __name__ == "__main__":
    unittest.main()
