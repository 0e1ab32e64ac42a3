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

    def open_streams(self, user_id: UUID | str) -> str:
        return f"{self.prefix}streams:{user_id}"

    def ratelimit(self, user_id: UUID | str) -> str:
        return f"{self.prefix}ratelimit:{user_id}"

    @property
    def keys_index(self) -> str:
        return f"{self.prefix}keys:index"

    def key(self, key_id: str) -> str:
        return f"{self.prefix}keys:{key_id}"

    def key_window(self, key_id: str) -> str:
        return f"{self.prefix}keys:{key_id}:window"
