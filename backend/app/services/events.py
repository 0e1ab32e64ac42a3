"""The per-chat event stream in Redis (docs/CONTRACTS.md, "Event stream")."""

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.redis_keys import RedisKeys

log = logging.getLogger(__name__)

STREAM_MAXLEN = 10000
STREAM_TTL_SECONDS = 86400
_SCAN_PAGE = 500
_ENTRY_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")

# KEYS: the stream. ARGV: max length, TTL s, then each entry's event type and JSON data. One
# command per append, not a pipeline of XADDs and an EXPIRE: less work in the client per reply.
_APPEND = """
for i = 3, #ARGV, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[i], 'data', ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class Event:
    id: str
    event: str
    data: str  # JSON text, passed through to the client unchanged


def is_entry_id(value: str) -> bool:
    """A stream entry id Redis accepts: `<ms>` or `<ms>-<seq>`, each below 2**64."""
    return bool(_ENTRY_ID.match(value)) and all(int(part) < 2**64 for part in value.split("-"))


class EventLog:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._append = redis.register_script(_APPEND)  # EVALSHA; EVAL again after a NOSCRIPT

    async def close(self) -> None:
        await self._redis.aclose()

    async def append(self, chat_id: UUID, events: Iterable[tuple[str, dict[str, Any]]]) -> bool:
        """Append events after a commit; False if Redis is unavailable. That must not undo what
        PostgreSQL holds: clients reload GET /messages when they reconnect."""
        args: list[Any] = [STREAM_MAXLEN, STREAM_TTL_SECONDS]
        for event, data in events:
            args += (event, json.dumps(data, default=str))
        try:
            await self._append(keys=[self._keys.events(chat_id)], args=args)
        except RedisError as error:
            log.warning("could not append events to chat %s: %s", chat_id, error)
            return False
        return True

    async def delete(self, chat_id: UUID) -> None:
        try:
            await self._redis.delete(self._keys.events(chat_id))
        except RedisError as error:
            log.warning("could not delete the event stream of chat %s: %s", chat_id, error)

    async def last_id(self, chat_id: UUID) -> str:
        entries = await self._redis.xrevrange(self._keys.events(chat_id), count=1)
        return entries[0][0] if entries else "0-0"

    async def current_attempts(
        self, chat_id: UUID, upto: str, open_message_ids: set[str]
    ) -> list[Event]:
        """For each reply still open, its entries since the start of its current attempt
        (latest `message.status` streaming or pending), in stream order, up to entry `upto`."""
        if not open_message_ids or upto == "0-0":
            return []
        key = self._keys.events(chat_id)
        waiting = set(open_message_ids)
        found: list[Event] = []
        high = upto
        while waiting:
            page = await self._redis.xrevrange(key, max=high, min="-", count=_SCAN_PAGE)
            for entry_id, fields in page:
                message_id, status = _message_and_status(fields)
                if message_id not in waiting:
                    continue
                found.append(Event(entry_id, fields.get("event", ""), fields.get("data", "")))
                if fields.get("event") == "message.status" and status in ("streaming", "pending"):
                    waiting.discard(message_id)
            if len(page) < _SCAN_PAGE:
                break
            high = f"({page[-1][0]}"
        found.reverse()
        return found

    async def attempt_text(self, chat_id: UUID, message_id: UUID) -> str:
        """The text of this reply's current attempt, as a client applying its deltas shows it."""
        shown: list[str] = []
        for event in await self.current_attempts(chat_id, "+", {str(message_id)}):
            if event.event == "message.reset":
                shown.clear()
            elif event.event == "message.delta":
                shown.append(json.loads(event.data).get("text", ""))
        return "".join(shown)

    async def is_streaming(self, chat_id: UUID, message_id: UUID) -> bool:
        """Whether the latest status entry of this reply says a worker is streaming it now."""
        key = self._keys.events(chat_id)
        wanted = str(message_id)
        high = "+"
        while True:
            page = await self._redis.xrevrange(key, max=high, min="-", count=_SCAN_PAGE)
            for _entry_id, fields in page:
                if fields.get("event") != "message.status":
                    continue
                message, status = _message_and_status(fields)
                if message == wanted:
                    return status == "streaming"
            if len(page) < _SCAN_PAGE:
                return False
            high = f"({page[-1][0]}"


def _message_and_status(fields: dict[str, str]) -> tuple[str | None, str | None]:
    try:
        data = json.loads(fields.get("data", ""))
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    message_id = data.get("message_id")
    if message_id is None and isinstance(data.get("message"), dict):
        message_id = data["message"].get("id")
    return (str(message_id) if message_id else None), data.get("status")
