"""A missing or malformed setting stops start-up with one line naming it (and no secret)."""

import subprocess

import pytest

from app.core.config import Settings, get_settings
from tests.support import BACKEND, child_env

GOOD = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/unused",
    "SECRET_KEY": "settings-test-secret",
}


def _start(settings: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BACKEND / ".venv/bin/python"), "-c", "import app.main"],
        cwd=BACKEND,
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_missing_setting_stops_the_process_with_one_line() -> None:
    done = _start({})
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "configuration error: setting DATABASE_URL is required but not set"
    ]


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(BACKEND / "tests")  # no .env file here
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_each_bad_setting_is_named_on_one_line(environment, capsys) -> None:
    cases = {
        "MAX_MESSAGE_CHARS": {**GOOD, "MAX_MESSAGE_CHARS": "lots"},
        "USER_MESSAGES_PER_MINUTE": {**GOOD, "USER_MESSAGES_PER_MINUTE": "-1"},
        "ALLOW_REGISTRATION": {**GOOD, "ALLOW_REGISTRATION": "perhaps"},
        "REDIS_URL": {**GOOD, "REDIS_URL": "localhost:6379"},
        "GEMINI_MODEL": {**GOOD, "GEMINI_MODEL": "gemini-0.1"},
        "LOG_LEVEL": {**GOOD, "LOG_LEVEL": "LOUD"},
        "SECRET_KEY": {**GOOD, "SECRET_KEY": "short"},
        "GEMINI_BASE_URL": {**GOOD, "GEMINI_BASE_URL": "generativelanguage.googleapis.com"},
        "MAX_QUEUE_WAIT_SECONDS": {**GOOD, "MAX_QUEUE_WAIT_SECONDS": "0"},
        "HTTP_PROXY": {**GOOD, "HTTP_PROXY": "ftp://proxy:21"},
    }
    for name, settings in cases.items():
        for key in Settings.model_fields:
            environment.delenv(key, raising=False)
        for key, value in settings.items():
            environment.setenv(key, value)
        get_settings.cache_clear()
        with pytest.raises(SystemExit):
            get_settings()
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, (name, lines)
        assert name in lines[0], (name, lines[0])


def test_a_bad_url_is_reported_without_its_password(environment, capsys) -> None:
    environment.setenv("DATABASE_URL", "mysql://admin:hunter2secret@db/chat")
    with pytest.raises(SystemExit):
        get_settings()
    error = capsys.readouterr().err
    assert "DATABASE_URL" in error
    assert "hunter2secret" not in error


def test_db_user_and_password_go_into_the_url(environment) -> None:
    for key, value in {
        "DATABASE_URL": "postgresql://db:5432/chat",
        "DB_USER": "chat",
        "DB_PASSWORD": "p@ss word",
        "RABBITMQ_URL": "amqp://rabbit:5672/",
        "RABBITMQ_USER": "app",
        "RABBITMQ_PASSWORD": "s3cret",
        "SECRET_KEY": "settings-test-secret",
    }.items():
        environment.setenv(key, value)
    settings = get_settings()
    assert [settings.database_url, settings.rabbitmq_url] == [
        "postgresql+psycopg://chat:p%40ss%20word@db:5432/chat",
        "amqp://app:s3cret@rabbit:5672/",
    ]


def test_env_example_placeholders_are_refused(environment, capsys) -> None:
    placeholder = "replace-with-a-long-random-hex-string"  # as in .env.example
    for name, value in {
        "DB_PASSWORD": placeholder,
        "RABBITMQ_PASSWORD": placeholder,
        "SECRET_KEY": placeholder,
        "REDIS_URL": f"redis://:{placeholder}@redis:6379/0",
    }.items():
        for key in Settings.model_fields:
            environment.delenv(key, raising=False)
        for key, good in GOOD.items():
            environment.setenv(key, good)
        environment.setenv(name, value)
        get_settings.cache_clear()
        with pytest.raises(SystemExit):
            get_settings()
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and "placeholder" in lines[0], lines
        assert placeholder not in lines[0]


def test_a_wildcard_cors_origin_is_refused_at_start() -> None:
    done = _start({**GOOD, "CORS_ORIGINS": "https://chat.example.com,*"})
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("configuration error: setting CORS_ORIGINS is invalid")
    assert "'*'" in line
