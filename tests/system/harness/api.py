"""A chat client that behaves like a patient user: it retries what the server did not accept and
finds out, after an ambiguous failure, whether its message landed anyway."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field

import httpx

FINAL = frozenset({"completed", "failed", "cancelled"})
# Answers that mean "not now": the send did not happen and may be tried again.
TRANSIENT = frozenset({429, 502, 503, 504})


class ApiError(AssertionError):
    def __init__(self, what: str, response: httpx.Response):
        super().__init__(f"{what}: HTTP {response.status_code} {response.text[:500]}")
        self.response = response


@dataclass
class Accepted:
    """A user message the server took (202, or found stored after an ambiguous failure)."""

    chat_id: str
    text: str
    user_message: dict
    assistant_message: dict
    sent_at: float  # time.monotonic() when the POST began
    accepted_at: float
    attempts: int = 1
    final: dict | None = None
    final_seen_at: float | None = None

    @property
    def assistant_id(self) -> str:
        return self.assistant_message["id"]


@dataclass
class SendLog:
    """What happened to every POST, so a report can say how the server behaved under a fault."""

    statuses: dict[str, int] = field(default_factory=dict)

    def note(self, what: str) -> None:
        self.statuses[what] = self.statuses.get(what, 0) + 1


def new_email() -> str:
    return f"load-{secrets.token_hex(6)}@example.com"


class ChatClient:
    """One logged-in user over one HTTP connection pool."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, max_connections: int = 200):
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(
            base_url=self.base_url + "/api",
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=50),
        )
        self.token: str | None = None
        self.email: str | None = None
        self.password = "correct horse battery staple"
        self.log = SendLog()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def register_and_login(self, email: str | None = None) -> dict:
        self.email = email or new_email()
        r = await self.http.post(
            "/auth/register", json={"email": self.email, "password": self.password}
        )
        if r.status_code != 201:
            raise ApiError("register", r)
        return await self.login()

    async def login(self) -> dict:
        r = await self.http.post(
            "/auth/login", json={"email": self.email, "password": self.password}
        )
        if r.status_code != 200:
            raise ApiError("login", r)
        body = r.json()
        self.token = body["access_token"]
        # Bearer only: a cookie jar would hide a broken Authorization header.
        self.http.cookies.clear()
        return body

    async def create_chat(self, title: str | None = None, **fields) -> dict:
        body = {"title": title, **fields} if title else dict(fields)
        r = await self._retrying("POST", "/chats", json=body, expect=201, deadline=30)
        return r.json()

    async def messages(self, chat_id: str) -> list[dict]:
        r = await self.http.get(f"/chats/{chat_id}/messages", headers=self.auth)
        if r.status_code != 200:
            raise ApiError("list messages", r)
        return r.json()

    async def messages_patiently(self, chat_id: str, deadline: float) -> list[dict]:
        r = await self._retrying("GET", f"/chats/{chat_id}/messages", expect=200, deadline=deadline)
        return r.json()

    async def _retrying(
        self, method: str, url: str, *, expect: int, deadline: float, **kwargs
    ) -> httpx.Response:
        """A call a user would simply repeat until the service is back (reads, chat creation)."""
        end = time.monotonic() + deadline
        while True:
            try:
                r = await self.http.request(method, url, headers=self.auth, **kwargs)
                if r.status_code == expect:
                    return r
                if r.status_code not in TRANSIENT:
                    raise ApiError(f"{method} {url}", r)
                last = f"HTTP {r.status_code} {r.text[:200]}"
            except httpx.TransportError as e:
                last = repr(e)
            if time.monotonic() > end:
                raise AssertionError(f"{method} {url} still failing after {deadline}s: {last}")
            await asyncio.sleep(0.5)

    async def send(self, chat_id: str, text: str, *, deadline: float = 60.0) -> Accepted:
        """Send until the server accepts. After an ambiguous failure (connection cut, 409 from an
        earlier try that landed), the stored messages tell whether it was accepted."""
        started = time.monotonic()
        end = started + deadline
        tries = 0
        last = ""
        while time.monotonic() < end:
            tries += 1
            ambiguous = False
            try:
                r = await self.http.post(
                    f"/chats/{chat_id}/messages",
                    json={"content": text, "role": "user"},
                    headers=self.auth,
                )
            except httpx.TransportError as e:
                self.log.note(type(e).__name__)
                last, ambiguous = repr(e), True
            else:
                self.log.note(str(r.status_code))
                if r.status_code == 202:
                    body = r.json()
                    return Accepted(
                        chat_id,
                        text,
                        body["user_message"],
                        body["assistant_message"],
                        started,
                        time.monotonic(),
                        tries,
                    )
                last = f"HTTP {r.status_code} {r.text[:300]}"
                if r.status_code == 409:
                    ambiguous = True
                elif r.status_code in TRANSIENT:
                    # 502/504 from the proxy may hide a send that reached the backend.
                    ambiguous = r.status_code in (502, 504)
                    retry_after = r.headers.get("Retry-After")
                    await asyncio.sleep(min(float(retry_after or 1.0), 5.0))
                else:
                    raise ApiError(f"send to {chat_id}", r)
            if ambiguous:
                found = await self._find_landed(chat_id, text, end)
                if found is not None:
                    user, assistant = found
                    return Accepted(
                        chat_id, text, user, assistant, started, time.monotonic(), tries
                    )
                await asyncio.sleep(0.3)
        raise AssertionError(f"message to chat {chat_id} not accepted within {deadline}s: {last}")

    async def _find_landed(self, chat_id: str, text: str, end: float) -> tuple[dict, dict] | None:
        while time.monotonic() < end:
            try:
                msgs = await self.messages(chat_id)
            except (httpx.TransportError, ApiError):
                await asyncio.sleep(0.3)
                continue
            for i, m in enumerate(msgs):
                if m["role"] == "user" and m["content"] == text:
                    following = [a for a in msgs[i + 1 :] if a["role"] == "assistant"]
                    if following:
                        return m, following[0]
            return None
        return None

    async def wait_final(
        self,
        accepted: Accepted,
        deadline: float,
        settled: asyncio.Event | None = None,
        poll: float = 2.0,
    ) -> dict:
        """Wait until the reply is final. `settled` is set by an event follower when it sees the
        final event; the poll is the fallback for events lost while Redis was away."""
        end = time.monotonic() + deadline
        while True:
            try:
                for m in await self.messages(accepted.chat_id):
                    if m["id"] == accepted.assistant_id and m["status"] in FINAL:
                        accepted.final = m
                        accepted.final_seen_at = time.monotonic()
                        return m
            except (httpx.TransportError, ApiError):
                pass
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"reply {accepted.assistant_id} in chat {accepted.chat_id} not final "
                    f"within {deadline}s"
                )
            if settled is not None and not settled.is_set():
                try:
                    await asyncio.wait_for(settled.wait(), timeout=min(poll, left))
                except TimeoutError:
                    pass
            else:
                # The event said final; the row follows the event within moments.
                await asyncio.sleep(min(poll if settled is None else 0.2, left))
