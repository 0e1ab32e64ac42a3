"""Worker settings from the environment; a bad one stops the worker with one line naming it."""

from functools import cached_property
from typing import Annotated
from urllib.parse import quote, urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# .env.example's secrets all start so; left in place they would be public passwords.
PLACEHOLDER = "replace-with-"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    gemini_api_keys: Annotated[list[str], NoDecode]
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str = "https://generativelanguage.googleapis.com"
    gemini_timeout_seconds: float = Field(60.0, gt=0)
    http_proxy: str | None = None

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "chat:"
    rabbitmq_url: str | None = None
    rabbitmq_user: str = "guest"
    rabbitmq_password: str = "guest"
    request_queue: str = Field("gemini.requests", min_length=1)
    response_queue: str = Field("gemini.responses", min_length=1)

    keys_max_per_minute: int = Field(10, ge=1)
    keys_cooldown_seconds: float = Field(60.0, ge=0)
    keys_max_wait_seconds: float = Field(10.0, ge=0)
    keys_window_margin_seconds: float = Field(1.0, ge=0, le=60)
    queue_retry_delays: Annotated[list[float], NoDecode] = [60, 600, 3600, 86400]
    queue_max_retries: int = Field(4, ge=0)

    worker_prefetch: int = Field(32, ge=1, le=1000)
    worker_shutdown_seconds: float = Field(8.0, ge=0)
    log_level: str = "INFO"

    @field_validator("gemini_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            value = [k.strip() for k in value.split(",") if k.strip()]
        if not value:
            raise ValueError("at least one key is needed (comma-separated)")
        return value

    # check_fields=False: SECRET_KEY is named too, for when the worker reads it.
    @field_validator(
        "gemini_api_keys", "rabbitmq_url", "rabbitmq_password", "redis_url", "secret_key",
        check_fields=False,
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
        if not value:
            return None
        if urlsplit(value).scheme not in ("http", "https", "socks5", "socks5h"):
            raise ValueError("must start with http:// or socks5://")
        return value

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
