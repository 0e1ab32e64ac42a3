"""Worker settings from the environment; a bad one stops the worker with one line naming it."""

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated
from urllib.parse import quote, urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# .env.example's secrets all start so; left in place they would be public passwords.
PLACEHOLDER = "replace-with-"


@dataclass(frozen=True)
class Limits:
    """A model's quota per key, as Google counts it: calls per minute and per Pacific day, tokens
    per minute (None: not limited)."""

    rpm: int
    rpd: int | None = None
    tpm: int | None = None


_LIMIT = re.compile(r"^(\d+)\s*(/min|/day|tpm)$")


def parse_limits(value: str) -> dict[str, Limits]:
    """`gemini-2.5-pro:5/min,100/day;gemini-2.5-flash:10/min,250/day,250000tpm`."""
    found: dict[str, Limits] = {}
    for entry in (e.strip() for e in value.split(";")):
        if not entry:
            continue
        model, sep, rest = entry.partition(":")
        if not sep or not model.strip():
            raise ValueError(f"{entry!r}: expected model:limits")
        units: dict[str, int] = {}
        for part in (p.strip() for p in rest.split(",")):
            match = _LIMIT.match(part)
            if not match or int(match.group(1)) < 1:
                raise ValueError(f"{part!r}: expected N/min, N/day or Ntpm with N >= 1")
            units[match.group(2)] = int(match.group(1))
        if "/min" not in units:
            raise ValueError(f"{model.strip()}: a per-minute limit (N/min) is needed")
        found[model.strip()] = Limits(units["/min"], units.get("/day"), units.get("tpm"))
    return found


def _check_proxy(value: str) -> str:
    if urlsplit(value).scheme not in ("http", "https", "socks5", "socks5h"):
        raise ValueError("must start with http:// or socks5://")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    # May be empty when the admin page's keys (the registry in Redis) are the pool.
    gemini_api_keys: Annotated[list[str], NoDecode] = []
    secret_key: str = Field(min_length=1)  # decrypts the registry's keys (docs/CONTRACTS.md)
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str = "https://generativelanguage.googleapis.com"
    gemini_timeout_seconds: float = Field(60.0, gt=0)
    http_proxy: str | None = None
    gemini_proxies: Annotated[list[str], NoDecode] = []
    gemini_fallback_models: Annotated[dict[str, list[str]], NoDecode] = {}

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "chat:"
    rabbitmq_url: str | None = None
    rabbitmq_user: str = "guest"
    rabbitmq_password: str = "guest"
    request_queue: str = Field("gemini.requests", min_length=1)
    response_queue: str = Field("gemini.responses", min_length=1)

    keys_max_per_minute: int = Field(10, ge=1)
    keys_limits: Annotated[dict[str, Limits], NoDecode] = {}
    keys_cooldown_seconds: float = Field(60.0, ge=0)
    keys_max_wait_seconds: float = Field(90.0, ge=0)
    keys_recheck_minutes: float = Field(10.0, gt=0)
    keys_window_margin_seconds: float = Field(1.0, ge=0, le=60)
    queue_retry_delays: Annotated[list[float], NoDecode] = [60, 600, 3600, 86400]
    queue_max_retries: int = Field(4, ge=0)

    worker_prefetch: int = Field(32, ge=1, le=1000)
    worker_shutdown_seconds: float = Field(8.0, ge=0)
    log_level: str = "INFO"

    # Attachments: the worker reads their bytes from PostgreSQL (the claim check: the queue
    # carries only upload ids). Only needed once a chat has attachments.
    database_url: str | None = None
    db_user: str | None = None
    db_password: str | None = None
    # Gemini's bound on one request (inline data included); older attachments go first past it.
    gemini_max_request_mb: float = Field(100, gt=0)
    # Attachment bytes one worker process holds at once (raw, base64 and the request body
    # together); replies with attachments wait their turn past it.
    worker_attachment_memory_mb: float = Field(256, gt=0)

    @field_validator("gemini_api_keys", "gemini_proxies", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("gemini_proxies")
    @classmethod
    def _proxy_schemes(cls, value: list[str]) -> list[str]:
        return [_check_proxy(p) for p in value]

    @field_validator("keys_limits", mode="before")
    @classmethod
    def _parse_limits(cls, value: object) -> object:
        return parse_limits(value) if isinstance(value, str) else value

    @field_validator("gemini_fallback_models", mode="before")
    @classmethod
    def _parse_fallbacks(cls, value: object) -> object:
        """`gemini-2.5-pro>gemini-2.5-flash,gemini-2.5-flash>gemini-2.5-flash-lite`: a chain
        `a>b>c` lets a fall back to b, then c."""
        if not isinstance(value, str):
            return value
        chains: dict[str, list[str]] = {}
        for chain in (c.strip() for c in value.split(",")):
            if not chain:
                continue
            models = [m.strip() for m in chain.split(">")]
            if len(models) < 2 or not all(models) or len(set(models)) != len(models):
                raise ValueError(f"{chain!r}: expected model>fallback[>fallback...]")
            chains[models[0]] = models[1:]
        return chains

    @field_validator(
        "gemini_api_keys", "rabbitmq_url", "rabbitmq_password", "redis_url", "secret_key"
    )
    @classmethod
    def _no_placeholder(cls, value: object) -> object:
        values = value if isinstance(value, list) else [value]
        if any(PLACEHOLDER in (v or "") for v in values):
            raise ValueError(
                "still holds .env.example's placeholder; set the real value"
            )
        return value

    @field_validator("queue_retry_delays", mode="before")
    @classmethod
    def _split_delays(cls, value: object) -> object:
        if isinstance(value, str):
            value = [d.strip() for d in value.split(",") if d.strip()]
        if not value:
            raise ValueError("at least one delay is needed (seconds, comma-separated)")
        return value

    @field_validator("queue_retry_delays")
    @classmethod
    def _positive_delays(cls, value: list[float]) -> list[float]:
        if any(d <= 0 for d in value):
            raise ValueError("delays must be positive seconds")
        return value

    @field_validator("http_proxy")
    @classmethod
    def _proxy_scheme(cls, value: str | None) -> str | None:
        return _check_proxy(value) if value else None

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @cached_property
    def amqp_url(self) -> str:
        if self.rabbitmq_url:
            return self.rabbitmq_url
        user, password = quote(self.rabbitmq_user, safe=""), quote(self.rabbitmq_password, safe="")
        return f"amqp://{user}:{password}@127.0.0.1:5672/"

    @cached_property
    def postgres_dsn(self) -> str | None:
        """DATABASE_URL as psycopg takes it (no `+psycopg` driver name), with DB_USER and
        DB_PASSWORD put in when given apart, as the backend does."""
        if not self.database_url:
            return None
        parts = urlsplit(self.database_url)
        netloc = parts.netloc
        if self.db_user and "@" not in netloc:
            credentials = quote(self.db_user, safe="")
            if self.db_password:
                credentials += ":" + quote(self.db_password, safe="")
            netloc = f"{credentials}@{netloc}"
        return parts._replace(scheme="postgresql", netloc=netloc).geturl()

    def limits(self, model: str) -> Limits:
        """The model's quota per key; KEYS_MAX_PER_MINUTE for models KEYS_LIMITS leaves out."""
        return self.keys_limits.get(model) or Limits(self.keys_max_per_minute)

    def retry_delay(self, attempt: int) -> float:
        """Delay before retry number `attempt + 1`; the last delay repeats."""
        return self.queue_retry_delays[min(attempt, len(self.queue_retry_delays) - 1)]


def load_settings() -> Settings:
    """Settings, or SystemExit with one line naming the first bad setting."""
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        raise SystemExit(f"gemini-client: bad setting {name}: {error['msg']}") from None
