"""scripts/stack.py, the native launcher everything else starts the app with: a stack answers
through nginx, survives a worker killed with -9 and a backend restart, and `down` leaves
nothing behind: no process, database, Redis key or queue."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import unittest
import urllib.request

import yaml
from support import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from stack import Amqp, Redis, Stack, psql


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Launcher(unittest.TestCase):
    def test_stack_up_faults_and_down(self):
        stack = Stack(f"deploy-{os.getpid()}", components=["backend", "worker", "standin", "nginx"])
        stack.up()
        try:
            env = stack.env
            with urllib.request.urlopen(stack.url + "/api/health", timeout=10) as response:
                self.assertEqual(json.load(response)["status"], "healthy")
            self.assertTrue(env["REQUEST_QUEUE"].startswith(f"gemini.requests.{stack.name}."))
            self.assertTrue(env["REDIS_KEY_PREFIX"].startswith(f"{stack.name}:"))
            self.assertIn(f"/{stack.database}", env["DATABASE_URL"])
            self.assertEqual(env["GEMINI_BASE_URL"], f"http://127.0.0.1:{stack.ports['standin']}")
            state = json.loads((ROOT / ".stack" / f"{stack.name}.json").read_text())
            self.assertEqual(state["url"], stack.url)
            self.assertEqual(set(state["pids"]), {"backend", "worker", "standin", "nginx"})

            killed = stack.pids("worker")[0]
            stack.stop("worker", signal.SIGKILL, index=0)
            self.assertEqual(stack.pids("worker"), [])
            stack.start("worker")  # returns once the new worker consumes the request queue
            self.assertNotIn(killed, stack.pids("worker"))
            stack.restart("backend")
            with urllib.request.urlopen(stack.url + "/api/health", timeout=10) as response:
                self.assertEqual(response.status, 200)
            self._image_healthchecks_pass(stack)

            redis = Redis(env["REDIS_URL"])
            redis.call("SET", env["REDIS_KEY_PREFIX"] + "deploy-test", "1")
            redis.close()
            pids = [pid for component in stack.procs for pid in stack.pids(component)]
        finally:
            stack.down()

        self.assertFalse([pid for pid in pids if _exists(pid)], "processes outlived down")
        self.assertEqual(
            psql(f"SELECT count(*) FROM pg_database WHERE datname = '{stack.database}'"), "0"
        )
        redis = Redis(env["REDIS_URL"])
        self.assertEqual(redis.call("EXISTS", env["REDIS_KEY_PREFIX"] + "deploy-test"), 0)
        redis.close()
        amqp = Amqp(env["RABBITMQ_URL"])
        try:
            for queue in (
                env["REQUEST_QUEUE"],
                env["RESPONSE_QUEUE"],
                env["REQUEST_QUEUE"] + ".dead",
                env["REQUEST_QUEUE"] + ".retry.60s",
                env["RESPONSE_QUEUE"] + ".dead",
            ):
                self.assertIsNone(amqp.consumers(queue), f"{queue} outlived down")
        finally:
            amqp.close()
        self.assertFalse((ROOT / ".stack" / f"{stack.name}.json").exists())
        shutil.rmtree(stack.dir, ignore_errors=True)  # its logs: kept only when the test fails

    def _image_healthchecks_pass(self, stack):
        """The backend image's HEALTHCHECK and compose's nginx healthcheck, aimed at this
        stack's ports instead of the containers' 8000 and 80."""
        dockerfile = (ROOT / "backend" / "Dockerfile").read_text()
        command = json.loads(re.search(r"(?m)^\s+CMD (\[.*\])$", dockerfile).group(1))
        command = [sys.executable, *command[1:]]
        command[-1] = command[-1].replace(":8000/", f":{stack.ports['backend']}/")
        self.assertEqual(subprocess.run(command, capture_output=True).returncode, 0)
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        check = compose["services"]["nginx"]["healthcheck"]["test"][1:]
        check[-1] = check[-1].replace("127.0.0.1/", f"127.0.0.1:{stack.ports['nginx']}/")
        self.assertEqual(subprocess.run(check).returncode, 0)

    def test_cli_up_and_down(self):
        name = f"deploy-cli-{os.getpid()}"
        script = [sys.executable, str(ROOT / "scripts" / "stack.py")]
        secrets = {"GEMINI_API_KEYS": "AIzaSy-deploy-test-key", "SECRET_KEY": "s3cret-deploy"}
        up = subprocess.run(
            [*script, "up", "--name", name, "--components", "nginx"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **secrets},
        )
        self.assertEqual(up.returncode, 0, up.stderr)
        state = json.loads(up.stdout)
        try:
            written = (ROOT / ".stack" / f"{name}.json").read_text()
            for secret in secrets.values():
                self.assertNotIn(secret, up.stdout + up.stderr)
                self.assertNotIn(secret, written)
            with urllib.request.urlopen(state["url"] + "/healthz", timeout=10) as response:
                self.assertEqual(response.status, 200)
        finally:
            down = subprocess.run(
                [*script, "down", "--name", name], capture_output=True, text=True, timeout=120
            )
        self.assertEqual(down.returncode, 0, down.stderr)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", state["ports"]["nginx"]), timeout=2)
        again = subprocess.run([*script, "down", "--name", name], capture_output=True, text=True)
        self.assertEqual(again.returncode, 1)
        self.assertIn(f"no stack named {name!r} is up", again.stderr)
        shutil.rmtree(ROOT / ".stack" / name, ignore_errors=True)

    def test_failure_names_the_component_and_shows_its_log(self):
        stack = Stack(
            f"deploy-bad-{os.getpid()}",
            components=["backend"],
            env={"MAX_MESSAGE_CHARS": "not-a-number"},
        )
        with self.assertRaises(Exception) as caught:
            stack.up()
        message = str(caught.exception)
        self.assertIn("backend", message)
        self.assertIn("MAX_MESSAGE_CHARS", message)  # the log tail with the backend's own line
        self.assertEqual(
            psql(f"SELECT count(*) FROM pg_database WHERE datname = '{stack.database}'"), "0"
        )
        shutil.rmtree(stack.dir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
