"""Settings parsing and the retry queue names derived from them."""

import pytest

from src.core.config import Settings, load_settings
from src.queue.topology import Topology


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "test-secret")


def test_lists_and_defaults(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEYS", " key-one , key-two ,")
    monkeypatch.setenv("QUEUE_RETRY_DELAYS", "0.5,1,2")
    settings = Settings()
    assert settings.gemini_api_keys == ["key-one", "key-two"]
    assert settings.queue_retry_delays == [0.5, 1.0, 2.0]
    assert [settings.retry_delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert settings.gemini_model == "gemini-2.5-flash" and settings.keys_max_per_minute == 10
    assert settings.http_proxy is None and settings.gemini_proxies == []
    assert settings.limits("gemini-2.5-pro").rpm == 10 and settings.gemini_fallback_models == {}


def test_limits_per_model_and_fallbacks(monkeypatch):
    monkeypatch.setenv(
        "KEYS_LIMITS", "gemini-2.5-pro:5/min,100/day;gemini-2.5-flash:10/min,250/day,250000tpm"
    )
    monkeypatch.setenv("GEMINI_FALLBACK_MODELS", "gemini-2.5-pro>gemini-2.5-flash>gemini-2.0-flash")
    monkeypatch.setenv("GEMINI_API_KEYS", "")  # the registry may hold every key
    settings = Settings()
    assert settings.gemini_api_keys == []
    pro, flash = settings.limits("gemini-2.5-pro"), settings.limits("gemini-2.5-flash")
    assert (pro.rpm, pro.rpd, pro.tpm) == (5, 100, None)
    assert (flash.rpm, flash.rpd, flash.tpm) == (10, 250, 250000)
    assert settings.limits("gemini-2.5-flash-lite").rpm == settings.keys_max_per_minute
    assert settings.gemini_fallback_models == {
        "gemini-2.5-pro": ["gemini-2.5-flash", "gemini-2.0-flash"]
    }


@pytest.mark.parametrize(("name", "value"), [
    ("KEYS_LIMITS", "gemini-2.5-pro:100/day"),
    ("KEYS_LIMITS", "gemini-2.5-pro:5/hour"),
    ("GEMINI_FALLBACK_MODELS", "gemini-2.5-pro"),
    ("GEMINI_PROXIES", "http://a:1,ftp://b:2"),
    ("SECRET_KEY", ""),
])
def test_bad_pool_settings_stop_with_their_name(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stop:
        load_settings()
    assert name in str(stop.value)


def test_rabbitmq_url_from_user_and_password(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEYS", "k")
    monkeypatch.delenv("RABBITMQ_URL", raising=False)
    monkeypatch.setenv("RABBITMQ_USER", "chat")
    monkeypatch.setenv("RABBITMQ_PASSWORD", "p@ss/word")
    assert Settings().amqp_url == "amqp://chat:p%40ss%2Fword@127.0.0.1:5672/"


def test_bad_setting_names_itself_without_echoing_the_value(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEYS", "k")
    monkeypatch.setenv("HTTP_PROXY", "ftp://user:secret@proxy")
    with pytest.raises(SystemExit) as stop:
        load_settings()
    assert "HTTP_PROXY" in str(stop.value) and "secret" not in str(stop.value)


def test_retry_queue_names():
    topology = Topology("gemini.requests", "gemini.responses", [0.3, 60, 600, 1.5])
    assert topology.dead == "gemini.requests.dead"
    assert list(topology.retry.values()) == [
        "gemini.requests.retry.300ms", "gemini.requests.retry.60s",
        "gemini.requests.retry.600s", "gemini.requests.retry.1500ms",
    ]
