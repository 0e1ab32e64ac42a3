"""Every setting a service reads is in .env.example, in the compose file and in the README, with
the same default everywhere; and nothing is documented that no one reads."""

import re
import unittest

from support import (
    MISSING,
    README,
    all_settings,
    compose_variables,
    env_example,
    env_example_active,
    resolved_compose,
    same_value,
    standin_dials,
)

# Compose service that runs each settings class.
COMPOSE_SERVICE = {"backend": "backend", "gemini-client": "gemini-client"}
# Where compose and .env.example deliberately differ from the code's default, and why.
DEPLOYMENT_VALUES = {
    "GEMINI_API_KEYS",
    "DB_PASSWORD",
    "RABBITMQ_PASSWORD",
    "SECRET_KEY",  # secrets: placeholders
    "DB_USER",
    "RABBITMQ_USER",  # the compose stack's own accounts (code: guest or none)
    "HTTP_PROXY",  # the compose stack's hysteria2 client; code default: no proxy
}
# Derived in docker-compose.yml from the parts above them (listed commented out in .env.example).
DERIVED_IN_COMPOSE = {"DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"}


class EnvironmentVariables(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.settings = all_settings()
        cls.read_by_services = set().union(*cls.settings.values())
        cls.example = env_example()
        cls.compose_vars = compose_variables()
        cls.readme = README.read_text()

    def test_settings_classes_were_found(self):
        for service, fields in self.settings.items():
            self.assertGreater(len(fields), 10, f"no settings parsed for {service}")

    def test_every_setting_a_service_reads_is_in_env_example(self):
        missing = sorted(self.read_by_services - set(self.example))
        self.assertEqual(missing, [], "settings read by a service but missing in .env.example")

    def test_every_env_example_variable_is_read_by_a_service_or_compose(self):
        unread = sorted(set(self.example) - self.read_by_services - set(self.compose_vars))
        self.assertEqual(unread, [], ".env.example variables nothing reads")

    def test_every_compose_variable_is_in_env_example(self):
        missing = sorted(set(self.compose_vars) - set(self.example))
        self.assertEqual(missing, [], "docker-compose.yml variables missing in .env.example")

    def test_every_variable_is_in_the_readme(self):
        names = set(self.example) | self.read_by_services | standin_dials()
        missing = sorted(n for n in names if not re.search(rf"`{n}`", self.readme))
        self.assertEqual(missing, [], "variables not documented (as `NAME`) in README.md")

    def test_readme_documents_no_setting_that_does_not_exist(self):
        known = set(self.example) | self.read_by_services | standin_dials()
        table_names = set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|", self.readme, re.M))
        self.assertEqual(sorted(table_names - known), [], "README tables name unknown settings")

    def test_compose_gives_each_service_every_setting_it_reads(self):
        services = resolved_compose()["services"]
        for service, fields in self.settings.items():
            given = set(services[COMPOSE_SERVICE[service]].get("environment", {}))
            self.assertEqual(
                sorted(set(fields) - given), [], f"compose service {service} lacks these settings"
            )

    def test_defaults_agree_between_code_compose_and_env_example(self):
        active = env_example_active()
        for service, fields in self.settings.items():
            for name, default in fields.items():
                if default is MISSING or default is None or name in DEPLOYMENT_VALUES:
                    continue
                for op, text in self.compose_vars.get(name, []):
                    if op == ":-":
                        self.assertTrue(
                            same_value(default, text),
                            f"{name}: compose default {text!r}, {service} {default!r}",
                        )
                if name in active:
                    self.assertTrue(
                        same_value(default, active[name]),
                        f"{name}: .env.example {active[name]!r}, {service} {default!r}",
                    )

    def test_derived_urls_are_listed_commented_out(self):
        active = env_example_active()
        for name in DERIVED_IN_COMPOSE:
            self.assertIn(name, self.example)
            self.assertNotIn(name, active, f"{name} is set by docker-compose.yml, not by .env")

    def test_secrets_have_no_default_in_compose(self):
        for name, uses in self.compose_vars.items():
            if name.endswith("PASSWORD") or name in ("GEMINI_API_KEYS", "SECRET_KEY"):
                for op, _ in uses:
                    self.assertEqual(op, ":?", f"{name} must be required (${{{name}:?...}})")


if __name__ == "__main__":
    unittest.main()
