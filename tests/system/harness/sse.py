"""Follows a chat's event stream the way the browser does (docs/CONTRACTS.md, "Event stream"):
reconnects with Last-Event-ID, drops deltas it already applied, clears text on message.reset,
and records every way the stream broke that promise."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

from .api import FINAL


@dataclass
class Frame:
    id: str | None
    event: str
    data: dict


async def parse_frames(lines: AsyncIterator[str]) -> AsyncIterator[Frame]:
    ev_id, ev_type, data = None, "message", []
    async for line in lines:
        if line == "":
            if data:
                yield Frame(ev_id, ev_type, json.loads("\n".join(data)))
            elif ev_id:
                yield Frame(ev_id, "", {})  # id only: where to resume, no event
            ev_id, ev_type, data = None, "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                ev_id = value
            elif name == "event":
                ev_type = value
            elif name == "data":
                data.append(value)


@dataclass
class Reply:
    """What the follower reassembled for one assistant message."""

    text: str = ""
    next_seq: int = 0
    resets: int = 0
    first_delta_at: float | None = None
    completed_at: float | None = None
    completed: dict | None = None
    final_status: str | None = None
    final_events: int = 0
    seen: list[str] = field(default_factory=list)  # every status event, in order
    settled: asyncio.Event = field(default_factory=asyncio.Event)


class ChatFollower:
    """One long-lived SSE reader for one chat, reconnecting until stopped."""

    def __init__(self, http: httpx.AsyncClient, chat_id: str, headers: dict[str, str]):
        self.http = http
        self.chat_id = chat_id
        self.headers = headers
        self.replies: dict[str, Reply] = {}
        self.last_id: str | None = None
        self.connects = 0
        self.failures: list[str] = []  # why each connection attempt or open stream broke
        self.connected = asyncio.Event()
        self.problems: list[str] = []
        self._task: asyncio.Task | None = None

    def reply(self, message_id: str) -> Reply:
        return self.replies.setdefault(message_id, Reply())

    def start(self) -> ChatFollower:
        self._task = asyncio.create_task(self._run(), name=f"sse-{self.chat_id}")
        return self

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            headers = dict(self.headers)
            if self.last_id:
                headers["Last-Event-ID"] = self.last_id
            try:
                async with self.http.stream(
                    "GET",
                    f"/chats/{self.chat_id}/events",
                    headers=headers,
                    timeout=httpx.Timeout(10.0, read=40.0),
                ) as r:
                    if r.status_code != 200:
                        await r.aread()
                        self._failed(f"HTTP {r.status_code}")
                        await asyncio.sleep(0.3)
                        continue
                    self.connects += 1
                    self.connected.set()
                    async for frame in parse_frames(r.aiter_lines()):
                        self._apply(frame)
                    self._failed("ended")
            except (httpx.TransportError, httpx.StreamError) as error:
                self._failed(error.__class__.__name__)
            await asyncio.sleep(0.2)

    def _failed(self, why: str) -> None:
        self.failures = [*self.failures[-9:], f"{time.monotonic():.1f} {why}"]

    def state(self) -> str:
        """For a failure message: how this follower's connections went."""
        return (
            f"{self.connects} connects, last event {self.last_id}, last breaks {self.failures[-4:]}"
        )

    def _apply(self, frame: Frame) -> None:
        now = time.monotonic()
        if frame.id:
            self.last_id = frame.id
        d = frame.data
        if frame.event == "message.delta":
            rep = self.reply(d["message_id"])
            seq = d["seq"]
            if seq < rep.next_seq:
                return  # a replay after reconnect: already applied
            if seq > rep.next_seq:
                self.problems.append(
                    f"gap in {d['message_id']}: expected seq {rep.next_seq}, got {seq}"
                )
            rep.text += d["text"]
            rep.next_seq = seq + 1
            if rep.first_delta_at is None:
                rep.first_delta_at = now
        elif frame.event == "message.reset":
            rep = self.reply(d["message_id"])
            rep.text, rep.next_seq = "", 0
            rep.resets += 1
        elif frame.event == "message.status":
            rep = self.reply(d["message_id"])
            rep.seen.append(d["status"])
            if d["status"] in FINAL:
                self._final(rep, d["status"], now)
        elif frame.event == "message.completed":
            msg = d["message"]
            rep = self.reply(msg["id"])
            rep.completed = msg
            rep.completed_at = rep.completed_at or now
            self._final(rep, msg["status"], now)

    def _final(self, rep: Reply, status: str, now: float) -> None:
        rep.final_events += 1
        rep.final_status = status
        if rep.completed_at is None and status == "completed":
            rep.completed_at = now
        rep.settled.set()
