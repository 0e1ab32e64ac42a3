"""Drives real chat traffic against a stack and checks, at the end, the promise the product
makes: every accepted message reached exactly one final status, completed replies carry the
stand-in's exact text, and nothing was lost or doubled."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

from .api import FINAL, Accepted, ChatClient
from .sse import ChatFollower


@dataclass
class ChatRun:
    client: ChatClient
    chat: dict
    follower: ChatFollower | None
    accepted: list[Accepted] = field(default_factory=list)

    @property
    def chat_id(self) -> str:
        return self.chat["id"]


@dataclass
class Verdict:
    accepted: int
    completed: int
    failed: int
    problems: list[str]
    statuses: Counter
    send_outcomes: Counter

    def summary(self) -> str:
        return (
            f"{self.accepted} accepted, {self.completed} completed, {self.failed} failed; "
            f"send outcomes {dict(self.send_outcomes)}"
        )


class Traffic:
    """`chats` conversations spread over `users` accounts; each chat sends one message, waits for
    its reply to be final, and sends the next, until `duration` seconds have passed since start
    or `stop_in` was called (at least `min_turns`, at most `max_turns` messages per chat)."""

    def __init__(
        self,
        base_url: str,
        *,
        chats: int = 24,
        users: int = 4,
        duration: float = 0.0,
        min_turns: int = 1,
        max_turns: int = 6,
        follow: bool = True,
        final_deadline: float = 120.0,
        think: float = 0.0,
        model: str | None = None,
    ):
        self.base_url = base_url
        self.n_chats = chats
        self.n_users = users
        self.duration = duration
        self.min_turns = min_turns
        self.max_turns = max_turns
        self.follow = follow
        self.final_deadline = final_deadline
        self.think = think
        self.model = model
        self.clients: list[ChatClient] = []
        self.runs: list[ChatRun] = []
        self.errors: list[str] = []
        self._tasks: list[asyncio.Task] = []
        self._t0 = 0.0
        self._until = 0.0
        self.tag = secrets.token_hex(3)
        self.first_accepts = asyncio.Event()
        self._n_accepted = 0
        self._accept_goal = 1

    # -- setting up ------------------------------------------------------------------------------
    async def setup(self) -> None:
        async def user() -> ChatClient:
            c = ChatClient(self.base_url)
            await c.register_and_login()
            return c

        self.clients = list(await asyncio.gather(*(user() for _ in range(self.n_users))))

        async def chat(i: int) -> ChatRun:
            c = self.clients[i % self.n_users]
            fields = {"model": self.model} if self.model else {}
            chat = await c.create_chat(f"load {self.tag} #{i}", **fields)
            follower = None
            if self.follow:
                follower = ChatFollower(c.http, chat["id"], c.auth).start()
            return ChatRun(c, chat, follower)

        self.runs = list(await asyncio.gather(*(chat(i) for i in range(self.n_chats))))
        if self.follow:
            await asyncio.wait_for(
                asyncio.gather(*(r.follower.connected.wait() for r in self.runs)), 20
            )

    async def aclose(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for r in self.runs:
            if r.follower:
                await r.follower.stop()
        for c in self.clients:
            await c.aclose()

    async def __aenter__(self) -> Traffic:
        await self.setup()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    # -- running ---------------------------------------------------------------------------------
    def stop_in(self, seconds: float) -> None:
        """No new messages after `seconds` from now (what was sent still runs to its end)."""
        self._until = time.monotonic() + seconds

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._until = self._t0 + self.duration
        self._tasks = [
            asyncio.create_task(self._chat(i, r), name=f"chat-{i}") for i, r in enumerate(self.runs)
        ]

    async def underway(self, accepted: int, timeout: float = 30.0) -> None:
        """Wait until at least `accepted` messages were accepted, so a fault lands under load."""
        self._accept_goal = accepted
        if self._n_accepted >= accepted:
            return
        self.first_accepts.clear()
        await asyncio.wait_for(self.first_accepts.wait(), timeout)

    async def in_flight(self, timeout: float = 30.0) -> int:
        """Wait until some reply is being streamed right now; returns how many are."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            n = sum(
                1
                for r in self.runs
                if r.follower
                for a in r.accepted
                if a.final is None
                and (rep := r.follower.replies.get(a.assistant_id))
                and rep.first_delta_at is not None
                and not rep.settled.is_set()
            )
            if n:
                return n
            await asyncio.sleep(0.05)
        raise AssertionError(f"no reply was streaming within {timeout}s")

    async def finish(self, timeout: float | None = None) -> None:
        done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for t in pending:
            t.cancel()
        if pending:
            self.errors.append(f"{len(pending)} chats still busy after {timeout}s")
        for t in done:
            if t.exception() is not None:
                self.errors.append(f"{t.get_name()}: {t.exception()!r}")

    async def _chat(self, i: int, run: ChatRun) -> None:
        turn = 0
        while turn < self.max_turns and (turn < self.min_turns or time.monotonic() < self._until):
            nonce = f"{self.tag}-{secrets.token_hex(3)}"
            text = f"chat {i} turn {turn} [{nonce}]: what is {i} + {turn}?"
            acc = await run.client.send(run.chat_id, text, deadline=self.final_deadline)
            run.accepted.append(acc)
            self._n_accepted += 1
            if self._n_accepted >= self._accept_goal:
                self.first_accepts.set()
            settled = run.follower.reply(acc.assistant_id).settled if run.follower else None
            await run.client.wait_final(acc, self.final_deadline, settled)
            turn += 1
            if self.think:
                await asyncio.sleep(self.think)

    # -- checking --------------------------------------------------------------------------------
    async def _streams_caught_up(self, deadline: float = 20.0) -> None:
        """The final event follows the row's commit, and a stream that was cut (a backend
        restart) reconnects first: give every final reply's event that long to arrive."""
        waits = [
            asyncio.ensure_future(r.follower.reply(a.assistant_id).settled.wait())
            for r in self.runs
            if r.follower
            for a in r.accepted
            if a.final is not None
        ]
        if waits:
            _, late = await asyncio.wait(waits, timeout=deadline)
            for waiting in late:
                waiting.cancel()

    def replies_seen(self):
        """Every reply as the event followers saw it."""
        return [rep for r in self.runs if r.follower for rep in r.follower.replies.values()]

    def all_accepted(self) -> list[Accepted]:
        return [a for r in self.runs for a in r.accepted]

    async def verify(
        self,
        expected_reply,
        *,
        allow_failed: bool = False,
        check_stream: bool = True,
    ) -> Verdict:
        """`expected_reply(requests)` maps, for each completed reply, what the worker sent upstream
        (`{"model", "system_instruction", "contents": [{"role", "text"}, ...]}`) to the stand-in's
        text for it."""
        problems = list(self.errors)
        if check_stream:
            await self._streams_caught_up()
        statuses: Counter = Counter()
        completed = failed = 0
        to_expect: list[tuple[dict, dict]] = []
        for run in self.runs:
            stored = await run.client.messages_patiently(run.chat_id, deadline=30)
            users = [m for m in stored if m["role"] == "user"]
            assistants = [m for m in stored if m["role"] == "assistant"]
            sent = [a.text for a in run.accepted]
            got = [m["content"] for m in users]
            if got != sent:
                problems.append(f"chat {run.chat_id}: user messages stored {got!r}, sent {sent!r}")
            if len(assistants) != len(users):
                problems.append(
                    f"chat {run.chat_id}: {len(users)} user messages but {len(assistants)} replies"
                )
            ids = [m["id"] for m in stored]
            if len(ids) != len(set(ids)):
                problems.append(f"chat {run.chat_id}: a message id appears twice")
            by_id = {m["id"]: m for m in stored}
            contents: list[dict] = []
            for acc in run.accepted:
                contents.append({"role": "user", "text": acc.text})
                msg = by_id.get(acc.assistant_id)
                if msg is None:
                    problems.append(f"reply {acc.assistant_id} to {acc.text!r} is gone")
                    continue
                statuses[msg["status"]] += 1
                if msg["status"] not in FINAL:
                    problems.append(f"reply {acc.assistant_id} stuck in {msg['status']}")
                elif msg["status"] == "completed":
                    completed += 1
                    request = {
                        "model": msg.get("model") or run.chat.get("model"),
                        "system_instruction": run.chat.get("system_prompt"),
                        "contents": list(contents),
                    }
                    to_expect.append((msg, request))
                elif msg["status"] == "failed":
                    failed += 1
                    if not allow_failed:
                        problems.append(f"reply {acc.assistant_id} failed: {msg['error']!r}")
                else:
                    problems.append(f"reply {acc.assistant_id} ended {msg['status']}")
                if msg["status"] == "completed":
                    contents.append({"role": "model", "text": msg["content"]})
                if check_stream and run.follower and msg["status"] == "completed":
                    rep = run.follower.replies.get(acc.assistant_id)
                    if rep is None or rep.final_events == 0:
                        problems.append(
                            f"reply {acc.assistant_id}: no final event on the stream "
                            f"(now {time.monotonic():.1f}; follower: {run.follower.state()})"
                        )
                    elif rep.text != msg["content"]:
                        problems.append(
                            f"reply {acc.assistant_id}: streamed text {rep.text!r} differs from "
                            f"stored {msg['content']!r}"
                        )
            if run.follower:
                problems.extend(f"chat {run.chat_id}: {p}" for p in run.follower.problems)
        wanted = expected_reply([req for _, req in to_expect])
        for (msg, req), want in zip(to_expect, wanted, strict=True):
            if msg["content"] != want:
                problems.append(
                    f"reply {msg['id']} to {req['contents'][-1]['text']!r}: "
                    f"got {msg['content']!r}, want {want!r}"
                )
        outcomes: Counter = Counter()
        for c in self.clients:
            outcomes.update(c.log.statuses)
        return Verdict(len(self.all_accepted()), completed, failed, problems, statuses, outcomes)
