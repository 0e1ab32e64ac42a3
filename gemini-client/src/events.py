"""The chat's Redis event stream and the cancel flag (docs/CONTRACTS.md, "Event stream")."""

import json

from redis.asyncio import Redis

from .rate_limiter.key_pool import OnGrant

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

    def _stream(self, chat_id: object) -> str:
        return f"{self._prefix}events:{chat_id}"

    async def emit(
        self, chat_id: object, event: str, data: dict, cancel_of: str | None = None
    ) -> bool:
        """Appends one event; with `cancel_of`, also says if that request's cancel flag is set.
        One script call: this runs for every delta of every reply."""
        keys = [self._stream(chat_id)]
        if cancel_of is not None:
            keys.append(self.cancel_flag(cancel_of))
        cancelled = await self._append(
            keys=keys, args=[event, _json(data), STREAM_MAXLEN, STREAM_TTL_S]
        )
        return bool(cancelled)

    def attempt_start(
        self, chat_id: object, message_id: object, attempt: int, reset: bool
    ) -> OnGrant:
        """An attempt's first events (`streaming`, then `message.reset` when an earlier try's
        deltas may be on screen), for the key pool's script to append once it grants the key:
        no round trip of their own, and never written for an attempt that got no key."""
        streaming = {
            "message_id": message_id, "status": "streaming", "attempt": attempt,
            "next_attempt_at": None, "error": None,
        }
        entries = [("message.status", _json(streaming))]
        if reset:
            entries.append(("message.reset", _json({"message_id": message_id})))
        return OnGrant(self._stream(chat_id), entries, STREAM_MAXLEN, STREAM_TTL_S)

    async def queued(
        self, chat_id: object, message_id: object, attempt: int, position: int, eta_s: float
    ) -> None:
        """The request waits in line for the pool's next free slot (not a failure)."""
        await self.emit(chat_id, "message.status", {
            "message_id": message_id, "status": "queued", "attempt": attempt,
            "queue_position": position, "eta_seconds": round(eta_s),
            "next_attempt_at": None, "error": None,
        })

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


def _json(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"))
