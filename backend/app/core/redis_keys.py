"""Redis key names (docs/CONTRACTS.md, "Redis keys"); every key starts with REDIS_KEY_PREFIX."""

from uuid import UUID


class RedisKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def events(self, chat_id: UUID | str) -> str:
        return f"{self.prefix}events:{chat_id}"

    def cancel(self, message_id: UUID | str) -> str:
        return f"{self.prefix}cancel:{message_id}"

    def session(self, digest: str) -> str:
        return f"{self.prefix}session:{digest}"

    def ratelimit(self, user_id: UUID | str) -> str:
        return f"{self.prefix}ratelimit:{user_id}"

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
