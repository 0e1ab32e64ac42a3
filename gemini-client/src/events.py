"""The chat's Redis event stream and the cancel flag (docs/CONTRACTS.md, "Event stream")."""

import json

from redis.asyncio import Redis

STREAM_MAXLEN = 10_000
STREAM_TTL_S = 86_400


# KEYS: stream[, cancel flag]. ARGV: event type, JSON data, max length, TTL seconds.
_APPEND = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'event', ARGV[1], 'data', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if KEYS[2] then return redis.call('EXISTS', KEYS[2]) end
return 0
"""


class ChatEvents:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._append = redis.register_script(_APPEND)

    async def emit(
        self, chat_id: object, event: str, data: dict, cancel_of: str | None = None
    ) -> bool:
        """Appends one event; with `cancel_of`, also says if that request's cancel flag is set.
        One script call: this runs for every delta of every reply."""
        keys = [f"{self._prefix}events:{chat_id}"]
        if cancel_of is not None:
            keys.append(self.cancel_flag(cancel_of))
        cancelled = await self._append(
            keys=keys,
            args=[event, json.dumps(data, separators=(",", ":")), STREAM_MAXLEN, STREAM_TTL_S],
        )
        return bool(cancelled)

    async def streaming(self, chat_id: object, message_id: object, attempt: int) -> None:
        await self.emit(chat_id, "message.status", {
            "message_id": message_id, "status": "streaming", "attempt": attempt,
            "next_attempt_at": None, "error": None,
        })

    async def queued(
        self, chat_id: object, message_id: object, attempt: int, position: int, eta_s: float
    ) -> None:
        """The request waits in line for the pool's next free slot (not a failure)."""
        await self.emit(chat_id, "message.status", {
            "message_id": message_id, "status": "queued", "attempt": attempt,
            "queue_position": position, "eta_seconds": round(eta_s),
            "next_attempt_at": None, "error": None,
        })

    async def reset(self, chat_id: object, message_id: object) -> None:
        await self.emit(chat_id, "message.reset", {"message_id": message_id})

    async def delta(
        self, chat_id: object, message_id: object, request_id: str, seq: int, text: str,
        event: str = "message.delta",
    ) -> bool:
        """Appends a delta (or a `message.thought`); True when the request has been cancelled
        meanwhile."""
        return await self.emit(
            chat_id, event, {"message_id": message_id, "seq": seq, "text": text},
            cancel_of=request_id,
        )

    def cancel_flag(self, request_id: str) -> str:
        # Keyed by request, not message: a Retry's new request must not revive a stopped one.
        return f"{self._prefix}cancel:{request_id}"
