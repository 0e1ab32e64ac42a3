"""docker-compose.yml as an operator meets it: it validates with .env.example (Debian's
docker-compose 1.29), a missing secret stops it with its name, every service is checked for
health and restarts, only nginx is public, the worker scales."""

import re
import tempfile
import unittest
from pathlib import Path

from support import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    ROOT,
    compose_config,
    compose_variables,
    resolved_compose,
)

SERVICES = {
    "postgres",
    "redis",
    "rabbitmq",
    "backend",
    "gemini-client",
    "frontend",
    "nginx",
    "hysteria2",
}
BUILT = {"backend": "backend", "gemini-client": "gemini-client", "frontend": "frontend"}


def _port(entry) -> str:
    if isinstance(entry, dict):
        return f"{entry.get('host_ip', '0.0.0.0')}:{entry['published']}:{entry['target']}"
    parts = str(entry).removesuffix("/tcp").split(":")
    return ":".join(["0.0.0.0", *parts] if len(parts) == 2 else parts)


class Compose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.config = resolved_compose()
        cls.services = cls.config["services"]

    def test_validates_with_env_example(self):
        done = compose_config()
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_a_missing_required_variable_is_named(self):
        required = sorted(
            n for n, uses in compose_variables().items() if any(op == ":?" for op, _ in uses)
        )
        self.assertIn("GEMINI_API_KEYS", required)
        self.assertIn("DB_PASSWORD", required)
        lines = ENV_EXAMPLE.read_text().splitlines()
        with tempfile.TemporaryDirectory() as tmp:
            for name in required:
                env_file = Path(tmp) / "env"
                env_file.write_text("\n".join(x for x in lines if not x.startswith(f"{name}=")))
                done = compose_config(env_file)
                self.assertNotEqual(done.returncode, 0, f"compose accepted a missing {name}")
                self.assertIn(f"{name} is required", done.stderr)

    def test_has_the_services(self):
        self.assertLessEqual(SERVICES, set(self.services))
        # The offline stand-in exists only with `--profile offline`.
        extra = set(self.services) - SERVICES
        for name in extra:
            self.assertIn("offline", self.services[name].get("profiles", []), name)

    def test_every_service_restarts_and_is_health_checked(self):
        for name in SERVICES:
            service = self.services[name]
            self.assertEqual(service.get("restart"), "unless-stopped", name)
            if name in BUILT:
                dockerfile = (ROOT / BUILT[name] / "Dockerfile").read_text()
                self.assertRegex(dockerfile, r"(?m)^HEALTHCHECK ", f"{name}: no HEALTHCHECK")
            else:
                self.assertIn("test", service.get("healthcheck", {}), f"{name}: no healthcheck")

    def test_start_order_waits_for_health(self):
        needs = {
            "backend": {"postgres", "redis", "rabbitmq"},
            "gemini-client": {"redis", "rabbitmq"},
            "nginx": {"backend", "frontend"},
        }
        for name, deps in needs.items():
            depends = self.services[name]["depends_on"]
            for dep in deps:
                self.assertEqual(depends[dep]["condition"], "service_healthy", f"{name} -> {dep}")

    def test_backend_migrates_before_serving(self):
        dockerfile = (ROOT / "backend" / "Dockerfile").read_text()
        cmd = re.search(r"(?m)^CMD (.*)$", dockerfile).group(1)
        self.assertRegex(cmd, r"alembic upgrade head && exec uvicorn")

    def test_only_nginx_is_public_and_rabbitmq_ui_is_local(self):
        published = {
            name: [_port(p) for p in s["ports"]]
            for name, s in self.services.items()
            if s.get("ports")
        }
        self.assertEqual(set(published), {"nginx", "rabbitmq"})
        self.assertEqual(published["nginx"], ["0.0.0.0:80:80"])
        self.assertEqual(published["rabbitmq"], ["127.0.0.1:15672:15672"])

    def test_worker_can_be_scaled(self):
        worker = self.services["gemini-client"]
        self.assertNotIn("container_name", worker)
        self.assertNotIn("ports", worker)
        self.assertNotIn("hostname", worker)

    def test_data_lives_in_named_volumes(self):
        self.assertLessEqual(
            {"postgres_data", "redis_data", "rabbitmq_data"}, set(self.config["volumes"])
        )
        mounts = {
            name: [str(v) for v in self.services[name].get("volumes", [])]
            for name in ("postgres", "redis", "rabbitmq")
        }
        self.assertTrue(any("postgres_data" in m for m in mounts["postgres"]))
        self.assertTrue(any("rabbitmq_data" in m for m in mounts["rabbitmq"]))
        self.assertTrue(any("redis_data" in m for m in mounts["redis"]))
        self.assertIn("--appendonly yes", " ".join(self.services["redis"]["command"]))

    def test_worker_uses_the_proxy_from_env(self):
        worker_env = self.services["gemini-client"]["environment"]
        self.assertEqual(worker_env["HTTP_PROXY"], "http://hysteria2:8080")
        # The backend's one Gemini call (checking a key added in the admin page) leaves by the
        # same proxy as the workers' calls; it passes it to that client only (trust_env off).
        backend_env = self.services["backend"]["environment"]
        self.assertEqual(backend_env["HTTP_PROXY"], "http://hysteria2:8080")

    def test_nginx_renders_the_shared_template(self):
        nginx = self.services["nginx"]
        mounts = [str(v) for v in nginx["volumes"]]
        self.assertTrue(
            any(
                "nginx/default.conf.template" in m
                and "/etc/nginx/templates/default.conf.template" in m
                for m in mounts
            )
        )
        self.assertEqual(nginx["environment"]["BACKEND_UPSTREAM"], "backend:8000")
        self.assertEqual(nginx["environment"]["FRONTEND_UPSTREAM"], "frontend:5173")

    def test_hysteria_placeholders_are_marked(self):
        config = (ROOT / "hysteria" / "config.yaml").read_text()
        self.assertRegex(config, r"(?m)^server: CHANGE-ME.*PLACEHOLDER")
        self.assertRegex(config, r"(?m)^auth: CHANGE-ME.*PLACEHOLDER")
        self.assertRegex(config, r"(?m)^  listen: 0\.0\.0\.0:8080")
        self.assertRegex(config, r"(?m)^  listen: 0\.0\.0\.0:1080")

    def test_compose_file_is_where_the_readme_says(self):
        self.assertTrue(COMPOSE_FILE.exists())


if __name__ == "__main__":
    unittest.main()
