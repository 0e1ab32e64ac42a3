"""Redis key names (docs/CONTRACTS.md, "Redis keys"); every key starts with REDIS_KEY_PREFIX."""

from collections.abc import Iterable
from uuid import UUID


class RedisKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def events(self, chat_id: UUID | str) -> str:
        return f"{self.prefix}events:{chat_id}"

    def cancel(self, request_id: UUID | str) -> str:
        # Keyed by request: a Retry's new request must not revive, or be stopped by, an old one.
        return f"{self.prefix}cancel:{request_id}"

    def claims(self, request_id: UUID | str, attempts: Iterable[int]) -> list[str]:
        """The worker's claims on these attempts of a request: set while a worker runs one."""
        return [f"{self.prefix}claim:{request_id}:{attempt}" for attempt in attempts]

    def session(self, digest: str) -> str:
        return f"{self.prefix}session:{digest}"

    def open_streams(self, user_id: UUID | str) -> str:
        return f"{self.prefix}streams:{user_id}"

    def ratelimit(self, user_id: UUID | str) -> str:
        return f"{self.prefix}ratelimit:{user_id}"

    def login_failures_account(self, email_digest: str) -> str:
        return f"{self.prefix}auth:failures:account:{email_digest}"

    def login_failures_address(self, address: str) -> str:
        return f"{self.prefix}auth:failures:address:{address}"

    def signups(self, address: str) -> str:
        return f"{self.prefix}auth:signups:{address}"

    @property
    def keys_index(self) -> str:
        return f"{self.prefix}keys:index"

    def key(self, key_id: str) -> str:
        return f"{self.prefix}keys:{key_id}"

    def key_window(self, key_id: str) -> str:
        return f"{self.prefix}keys:{key_id}:window"

    # Key pool v2 (docs/CONTRACTS.md, "Key pool v2").
    @property
    def keys_registry(self) -> str:
        return f"{self.prefix}keys:registry"

    @property
    def keys_registry_version(self) -> str:
        return f"{self.prefix}keys:registry:version"

    @property
    def keys_removed(self) -> str:
        return f"{self.prefix}keys:removed"

    @property
    def keys_limits(self) -> str:
        return f"{self.prefix}keys:limits"

    def key_model(self, key_id: str, model: str) -> str:
        return f"{self.prefix}keys:{key_id}:m:{model}"

    def key_model_window(self, key_id: str, model: str) -> str:
        return f"{self.prefix}keys:{key_id}:m:{model}:window"

    def key_model_tokens(self, key_id: str, model: str) -> str:
        return f"{self.prefix}keys:{key_id}:m:{model}:tokens"

    def key_model_day(self, key_id: str, model: str, day: str) -> str:
        return f"{self.prefix}keys:{key_id}:m:{model}:day:{day}"

    def key_errors(self, key_id: str) -> str:
        return f"{self.prefix}keys:{key_id}:errors"

    def key_series(self, key_id: str) -> str:
        return f"{self.prefix}keys:series:{key_id}"

    @property
    def pool_throttled_until(self) -> str:
        return f"{self.prefix}pool:throttled_until"

    def pool_capacity(self, model: str) -> str:
        return f"{self.prefix}pool:capacity:{model}"

    # Teams (docs/CONTRACTS.md, "Teams").
    @property
    def sessions_ended(self) -> str:
        """Pub/sub channel: digests of login sessions that just ended, space-separated."""
        return f"{self.prefix}sessions:ended"

    def oidc_state(self, state: str) -> str:
        return f"{self.prefix}oidc:state:{state}"

    def quota(self, user_id: UUID | str, day: str) -> str:
        """One user's messages and tokens of one UTC day (app.services.quotas)."""
        return f"{self.prefix}quota:{user_id}:{day}"
