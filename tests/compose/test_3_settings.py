"""Settings gone wrong, as the README's troubleshooting table describes them."""

from __future__ import annotations


def test_config_quiet_passes_with_the_filled_in_env(up):
    assert up.run("docker compose config --quiet").returncode == 0


def test_a_missing_required_variable_stops_compose_and_names_it(up):
    env = (up.dir / ".env").read_text()
    try:
        (up.dir / ".env").write_text(
            "".join(line + "\n" for line in env.splitlines() if not line.startswith("DB_PASSWORD="))
        )
        done = up.run("docker compose up -d", check=False)
        assert done.returncode != 0
        assert "DB_PASSWORD is required (see .env.example)" in done.stderr
    finally:
        (up.dir / ".env").write_text(env)


def test_a_bad_setting_is_named_in_the_service_s_log_and_fixing_it_recovers(up):
    good = {k: up.settings.get(k) for k in ("MAX_MESSAGE_CHARS", "KEYS_MAX_PER_MINUTE")}
    up.write_env(MAX_MESSAGE_CHARS="lots", KEYS_MAX_PER_MINUTE="-3")
    try:
        # compose itself gives up on nginx, whose backend never becomes healthy: the log says why.
        up.run("docker compose up -d", check=False)
        up.wait_for(
            "the backend names MAX_MESSAGE_CHARS",
            lambda: "configuration error: setting MAX_MESSAGE_CHARS" in up.logs("backend"),
        )
        up.wait_for(
            "the worker names KEYS_MAX_PER_MINUTE",
            lambda: "bad setting KEYS_MAX_PER_MINUTE" in up.logs("gemini-client"),
        )
    finally:
        for name, value in good.items():
            if value is None:
                up.settings.pop(name, None)
            else:
                up.settings[name] = value
        up.write_env()
        up.run("docker compose up -d --wait", timeout=600)
    up.healthy()
