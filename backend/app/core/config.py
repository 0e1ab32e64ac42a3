"""Settings from the environment (names as in DESIGN.md and docs/CONTRACTS.md)."""

import sys
from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _with_credentials(url: str, user: str | None, password: str | None) -> str:
    """Put DB_USER/DB_PASSWORD (or RABBITMQ_USER/...) into a URL given without them."""
    if not user and not password:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    name = quote(user or parts.username or "", safe="")
    secret = password if password is not None else parts.password
    auth = f"{name}:{quote(secret, safe='')}" if secret else name
    return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, parts.query, parts.fragment))


RESPONSE_PREFETCH_MAX = 32

# .env.example's secrets all start so; left in place they would be public passwords.
PLACEHOLDER = "replace-with-"
_SECRET_SETTINGS = (
    "DB_PASSWORD",
    "RABBITMQ_PASSWORD",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "RABBITMQ_URL",
    "OIDC_CLIENT_SECRET",
)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    DATABASE_URL: str
    DB_USER: str | None = None
    DB_PASSWORD: str | None = None
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    REDIS_KEY_PREFIX: str = "chat:"
    RABBITMQ_URL: str = "amqp://guest:guest@127.0.0.1:5672/"
    RABBITMQ_USER: str | None = None
    RABBITMQ_PASSWORD: str | None = None
    REQUEST_QUEUE: str = Field("gemini.requests", min_length=1)
    RESPONSE_QUEUE: str = Field("gemini.responses", min_length=1)
    # The worker's retry budget, read here only so the UI can say "attempt 2 of 4".
    QUEUE_MAX_RETRIES: int = Field(4, ge=0)

    # Encrypts the admin-added Gemini keys at rest (Fernet key derived from it, CONTRACTS.md).
    SECRET_KEY: str = Field(min_length=16)

    GEMINI_MODEL: str = "gemini-2.5-flash"
    GEMINI_MODELS: Annotated[list[str], NoDecode] = [
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-2.5-flash-lite",
    ]
    # The model that names a chat after its first reply (a small request through the key pool).
    TITLE_MODEL: str = Field("gemini-2.5-flash-lite", min_length=1, max_length=100)

    # Where a key added in the admin page is probed once (a models `get`, no generation quota),
    # through HTTP_PROXY when set, as the worker calls Google.
    GEMINI_BASE_URL: str = "https://generativelanguage.googleapis.com"
    HTTP_PROXY: str | None = None
    # A send is refused (429, Retry-After) when the key pool cannot start it within this long.
    MAX_QUEUE_WAIT_SECONDS: float = Field(120.0, gt=0)

    # `invite`: sign-up needs an admin's invite (the very first account excepted).
    ALLOW_REGISTRATION: Literal["true", "false", "invite"] = "true"
    INVITE_TTL_HOURS: float = Field(168, gt=0)
    RESET_LINK_TTL_HOURS: float = Field(24, gt=0)
    # Single sign-on (OpenID Connect, discovery from the issuer); off while OIDC_ISSUER is unset.
    OIDC_ISSUER: str | None = None
    OIDC_CLIENT_ID: str | None = None
    OIDC_CLIENT_SECRET: str | None = None
    # Members of any of these groups (the ID token's `groups` claim) are admins.
    OIDC_ADMIN_GROUPS: Annotated[list[str], NoDecode] = []
    # false: sign-in only through SSO (needs OIDC_ISSUER).
    PASSWORD_LOGIN: bool = True
    CORS_ORIGINS: Annotated[list[str], NoDecode] = []
    MAX_MESSAGE_CHARS: int = Field(20000, ge=1)
    # Largest file POST /api/import reads (413 beyond); nginx lets at most 64 MiB through.
    IMPORT_MAX_BYTES: int = Field(20971520, ge=1024)
    USER_MESSAGES_PER_MINUTE: int = Field(20, ge=0)  # 0: no limit
    # Daily quotas per user (UTC days), overridable per user by an admin; 0: no limit.
    USER_MESSAGES_PER_DAY: int = Field(0, ge=0, le=2**31 - 1)
    USER_TOKENS_PER_DAY: int = Field(0, ge=0)
    HISTORY_MAX_CHARS: int = Field(60000, ge=1)
    # Attachments (docs/CONTRACTS.md, "Attachments"): one file, one message's files together,
    # everything one user keeps stored.
    MAX_UPLOAD_MB: float = Field(20, gt=0)
    MAX_MESSAGE_UPLOADS_MB: float = Field(50, gt=0)
    USER_UPLOAD_QUOTA_MB: float = Field(500, gt=0)
    SESSION_TTL_HOURS: float = Field(720, gt=0)
    SESSION_CLEANUP_INTERVAL_SECONDS: float = Field(3600, gt=0)
    # Open event streams (one per open chat tab) per account, over every backend process.
    USER_MAX_OPEN_STREAMS: int = Field(20, ge=1)
    # How often an open event stream's login session is checked again (a logged-out one ends).
    STREAM_SESSION_CHECK_SECONDS: float = Field(30.0, gt=0)
    COOKIE_SECURE: bool = False

    # Sign-in throttling (per process limits on argon2, shared Redis windows for the rest).
    LOGIN_WINDOW_SECONDS: int = Field(900, ge=1)
    LOGIN_FAILURES_PER_ACCOUNT: int = Field(10, ge=0)  # 0: no limit
    LOGIN_FAILURES_PER_ADDRESS: int = Field(100, ge=0)  # 0: no limit
    SIGNUPS_PER_ADDRESS_PER_HOUR: int = Field(20, ge=0)  # 0: no limit
    ARGON2_CONCURRENCY: int = Field(1, ge=1)
    ARGON2_QUEUE: int = Field(16, ge=0)
    LOG_LEVEL: str = "INFO"

    # Not in the shared tables: tuning knobs with safe defaults.
    OUTBOX_RELAY_INTERVAL_SECONDS: float = Field(1.0, gt=0)
    PUBLISH_TIMEOUT_SECONDS: float = Field(3.0, gt=0)
    HEALTH_TIMEOUT_SECONDS: float = Field(1.0, gt=0)
    # Connections per backend process: DB_POOL_SIZE kept open, DB_MAX_OVERFLOW more under load;
    # a request that finds none free within DB_POOL_TIMEOUT_SECONDS is answered 503 (busy).
    DB_POOL_SIZE: int = Field(20, ge=1)
    # Backend processes: read by uvicorn itself (its --workers default), named here so the
    # value is documented and checked with the others.
    WEB_CONCURRENCY: int = Field(2, ge=1)
    DB_MAX_OVERFLOW: int = Field(10, ge=0)
    DB_POOL_TIMEOUT_SECONDS: float = Field(10.0, gt=0)

    @field_validator("GEMINI_MODELS", "CORS_ORIGINS", "OIDC_ADMIN_GROUPS", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("ALLOW_REGISTRATION", mode="before")
    @classmethod
    def _registration(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("OIDC_ISSUER")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _sso_complete(self) -> "Settings":
        if self.OIDC_ISSUER and not (self.OIDC_CLIENT_ID and self.OIDC_CLIENT_SECRET):
            raise ValueError("OIDC_ISSUER: needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET too")
        if not self.PASSWORD_LOGIN and not self.OIDC_ISSUER:
            raise ValueError("PASSWORD_LOGIN: can be false only with OIDC_ISSUER set")
        return self

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if "://" not in value or not scheme.startswith("postgres"):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("RABBITMQ_URL")
    @classmethod
    def _amqp_url(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://")):
            raise ValueError("must be an amqp:// URL")
        return value

    @field_validator("GEMINI_BASE_URL")
    @classmethod
    def _gemini_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("HTTP_PROXY")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://", "socks5://", "socks5h://")):
            raise ValueError("must be an http:// or socks5:// URL")
        return value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value

    @field_validator("CORS_ORIGINS")
    @classmethod
    def _no_wildcard_origin(cls, value: list[str]) -> list[str]:
        if "*" in value:
            # Browsers refuse credentials with a wildcard, and reflecting any origin instead
            # would let every site act as the signed-in user.
            raise ValueError("must list origins: '*' cannot be combined with the login cookie")
        return value

    @model_validator(mode="after")
    def _no_placeholder_secret(self) -> "Settings":
        for name in _SECRET_SETTINGS:
            if PLACEHOLDER in (getattr(self, name, None) or ""):
                raise ValueError(
                    f"{name}: still holds .env.example's placeholder; set a real secret "
                    "(e.g. `openssl rand -hex 24`)"
                )
        return self

    @model_validator(mode="after")
    def _default_model_is_offered(self) -> "Settings":
        if not self.GEMINI_MODELS:
            raise ValueError("GEMINI_MODELS: must name at least one model")
        if self.GEMINI_MODEL not in self.GEMINI_MODELS:
            raise ValueError("GEMINI_MODEL: must be one of GEMINI_MODELS")
        return self

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL for the async psycopg 3 driver."""
        url = _with_credentials(self.DATABASE_URL, self.DB_USER, self.DB_PASSWORD)
        scheme, rest = url.split("://", 1)
        return f"postgresql+psycopg://{rest}" if "+" not in scheme else url

    @property
    def response_concurrency(self) -> int:
        """Responses applied at once: at most half the pool, so sends always find connections."""
        return max(1, min(RESPONSE_PREFETCH_MAX, self.DB_POOL_SIZE // 2))

    @property
    def rabbitmq_url(self) -> str:
        return _with_credentials(self.RABBITMQ_URL, self.RABBITMQ_USER, self.RABBITMQ_PASSWORD)


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    if not first["loc"]:
        return f"setting {message}"
    name = ".".join(str(part) for part in first["loc"])
    if first["type"] == "missing":
        return f"setting {name} is required but not set"
    # Never echo the value: it may be a password or URL with credentials.
    return f"setting {name} is invalid: {message}"


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        print(f"configuration error: {_describe(error)}", file=sys.stderr)
        raise SystemExit(2) from None
