"""The chat's Redis event stream and the cancel flag (docs/CONTRACTS.md, "Event stream")."""

import json

from redis.asyncio import Redis

STREAM_MAXLEN = 10_000
STREAM_TTL_S = 86_400


class ChatEvents:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def emit(
        self, chat_id: object, event: str, data: dict, cancel_of: object = None
    ) -> bool:
        """Appends one event; with `cancel_of`, also says (same round trip) if that message's
        cancel flag is set."""
        stream = f"{self._prefix}events:{chat_id}"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(
                stream,
                {"event": event, "data": json.dumps(data, separators=(",", ":"))},
                maxlen=STREAM_MAXLEN,
                approximate=True,
            )
            pipe.expire(stream, STREAM_TTL_S)
            if cancel_of is not None:
                pipe.exists(f"{self._prefix}cancel:{cancel_of}")
            results = await pipe.execute()
        return cancel_of is not None and bool(results[-1])

    async def streaming(self, chat_id: object, message_id: object, attempt: int) -> None:
        await self.emit(chat_id, "message.status", {
            "message_id": message_id, "status": "streaming", "attempt": attempt,
            "next_attempt_at": None, "error": None,
        })

    async def reset(self, chat_id: object, message_id: object) -> None:
        await self.emit(chat_id, "message.reset", {"message_id": message_id})

    async def delta(self, chat_id: object, message_id: object, seq: int, text: str) -> bool:
        """Appends a delta; True when the reply has been cancelled meanwhile."""
        return await self.emit(
            chat_id, "message.delta", {"message_id": message_id, "seq": seq, "text": text},
            cancel_of=message_id,
        )

    async def cancelled(self, message_id: object) -> bool:
        return bool(await self._redis.exists(f"{self._prefix}cancel:{message_id}"))
