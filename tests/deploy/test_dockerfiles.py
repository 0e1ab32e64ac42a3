"""The three images: hadolint clean, multi-stage, non-root, locked installs, a HEALTHCHECK, a
.dockerignore, and every file they COPY exists in their build context."""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import unittest

from support import ROOT, TOOLS_BIN

sys.path.insert(0, str(ROOT / "scripts"))
from stack import RABBITMQ_URL

IMAGES = {
    "backend": {"lock": "uv sync --frozen", "needs": ["uvicorn", "alembic", "psycopg"]},
    "gemini-client": {"lock": "uv sync --frozen", "needs": ["google-genai", "aio-pika", "uvicorn"]},
    "frontend": {"lock": "npm ci"},
}


class Dockerfiles(unittest.TestCase):
    def test_hadolint_passes(self):
        hadolint = TOOLS_BIN / "hadolint"
        self.assertTrue(hadolint.exists(), "hadolint missing: run `make test-deploy`")
        for context in IMAGES:
            done = subprocess.run(
                [str(hadolint), "--no-color", str(ROOT / context / "Dockerfile")],
                capture_output=True,
                text=True,
            )
            self.assertEqual(
                done.returncode, 0, f"{context}/Dockerfile:\n{done.stdout}{done.stderr}"
            )

    def test_structure(self):
        for context, expect in IMAGES.items():
            text = (ROOT / context / "Dockerfile").read_text()
            stages = re.split(r"(?m)^FROM ", text)[1:]
            self.assertGreaterEqual(len(stages), 2, f"{context}: not multi-stage")
            final = stages[-1]
            user = re.findall(r"(?m)^USER (\S+)", final)
            self.assertTrue(user and not user[-1].startswith(("root", "0")), f"{context}: root")
            self.assertRegex(final, r"(?m)^HEALTHCHECK ", context)
            self.assertIn(expect["lock"], text, f"{context}: not installed from its lock file")

    def test_python_images_install_runtime_packages_only_from_the_lock(self):
        """The image's own `uv sync` line, run here as a dry run against the lock file."""
        for context, expect in IMAGES.items():
            if "needs" not in expect:
                continue
            text = (ROOT / context / "Dockerfile").read_text()
            line = re.search(r"(?m)^RUN (uv sync .*)$", text).group(1)
            with tempfile.TemporaryDirectory() as venv:
                done = subprocess.run(
                    [*shlex.split(line), "--dry-run"],
                    cwd=ROOT / context,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "UV_PROJECT_ENVIRONMENT": venv},
                )
            self.assertEqual(done.returncode, 0, f"{context}: {line}\n{done.stderr}")
            planned = re.findall(r"^ \+ ([A-Za-z0-9_.-]+)==", done.stderr, re.M)
            for package in expect["needs"]:
                self.assertIn(package, planned, f"{context}: {package} would not be installed")
            self.assertNotIn("pytest", planned, f"{context}: dev tools in the image")

    def test_worker_healthcheck_follows_the_rabbitmq_connection(self):
        """The worker image is healthy while a connection to RabbitMQ is established in its
        network namespace: checked here in this machine's namespace, and in an empty one."""
        text = (ROOT / "gemini-client" / "Dockerfile").read_text()
        command = json.loads(re.search(r"(?m)^\s+CMD (\[.*\])$", text).group(1))
        self.assertEqual(command[0], "python")
        check = [sys.executable, *command[1:]]
        host, port = RABBITMQ_URL.rsplit("@", 1)[1].rstrip("/").split(":")
        self.assertEqual(port, "5672")
        with socket.create_connection((host, int(port)), timeout=5):
            self.assertEqual(subprocess.run(check).returncode, 0)
        alone = subprocess.run(["unshare", "-n", *check])
        self.assertEqual(alone.returncode, 1)

    def test_copied_files_exist_and_dockerignore_keeps_local_junk_out(self):
        for context in IMAGES:
            base = ROOT / context
            ignore = (base / ".dockerignore").read_text()
            python = (base / "pyproject.toml").exists()
            for junk in (".venv", "node_modules", "__pycache__"):
                if (base / junk).exists() or (python and junk == "__pycache__"):
                    self.assertIn(junk, ignore, f"{context}/.dockerignore misses {junk}")
            text = (base / "Dockerfile").read_text()
            for line in re.findall(r"(?m)^COPY (?!--from)(.*)$", text):
                sources = line.split()[:-1]
                for source in sources:
                    if source != ".":
                        self.assertTrue((base / source).exists(), f"{context}: COPY {source}")


if __name__ == "__main__":
    unittest.main()
