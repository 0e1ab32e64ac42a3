"""Writes a reply's deltas into the chat's events in order, one script call at a time.

Text that arrives while a call is in flight goes out with the next call as one delta, so a fast
stream costs fewer Redis calls while a slow one (every real reply) still shows each chunk at once.
`seq` stays contiguous from 0; a delta's text is the chunks it carries, joined.
"""

import asyncio

from .events import ChatEvents


class DeltaWriter:
    def __init__(
        self, events: ChatEvents, chat_id: object, message_id: object, request_id: str,
        event: str = "message.delta",
    ) -> None:
        self._events = events
        self._event = event  # message.delta, or message.thought for the model's thoughts
        self._chat_id = chat_id
        self._message_id = message_id
        self._request_id = request_id
        self._buffer: list[str] = []
        self._writing: asyncio.Task[bool] | None = None
        self.seq = 0
        self.cancelled = False
        self.written: list[str] = []  # the text in the events so far, as a client shows it

    async def add(self, text: str) -> bool:
        """Queues a chunk; True once a write has seen the reply's cancel flag."""
        self._buffer.append(text)
        if self._writing is not None:
            if not self._writing.done():
                return False  # the running write picks the chunk up when it is done
            if self._take_result():
                return True
        self._writing = asyncio.create_task(self._drain())
        return False

    async def flush(self) -> bool:
        """Waits until every chunk is written (or the cancel flag is seen); True if it was."""
        while self._writing is not None and not self.cancelled:
            await asyncio.wait([self._writing])
            if not self._take_result() and self._buffer:
                self._writing = asyncio.create_task(self._drain())
        return self.cancelled

    def _take_result(self) -> bool:
        assert self._writing is not None
        writing, self._writing = self._writing, None
        self.cancelled = writing.result()  # raises the write's Redis error, if any
        return self.cancelled

    async def _drain(self) -> bool:
        while self._buffer:
            text = "".join(self._buffer)
            self._buffer.clear()
            seq, self.seq = self.seq, self.seq + 1
            cancelled = await self._events.delta(
                self._chat_id, self._message_id, self._request_id, seq, text, self._event
            )
            self.written.append(text)
            if cancelled:
                return True
        return False
