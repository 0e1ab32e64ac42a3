"""One stack for the whole session (backend, two workers, stand-in and nginx, started natively by
scripts/stack.py), with the worker's Gemini traffic going through a real forward proxy."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from harness.api import ChatClient
from harness.launch import FAST_ENV, running_stack, standin_reset, wait_healthy
from harness.proxy import Proxy
from harness.services import ensure_all


@dataclass
class Deployed:
    stack: object
    proxy: Proxy
    admin_email: str
    admin_password: str

    @property
    def url(self) -> str:
        return self.stack.url


@pytest.fixture(scope="session")
def proxy():
    p = Proxy()
    p.start()
    yield p
    p.stop()


@pytest.fixture(scope="session")
def deployed(proxy):
    ensure_all()
    env = {**FAST_ENV, "HTTP_PROXY": proxy.url}
    with running_stack("sys", workers=2, env=env) as stack:
        wait_healthy(stack.url)

        async def first_user() -> str:
            # The first account of a fresh database is the admin.
            async with ChatClient(stack.url) as c:
                await c.register_and_login()
                assert (await c.http.get("/auth/me", headers=c.auth)).json()["is_admin"]
                return c.email

        email = asyncio.run(first_user())
        yield Deployed(stack, proxy, email, ChatClient(stack.url).password)


@pytest.fixture
def fresh(deployed):
    """The shared stack, healthy, with the stand-in's dials and counters back at their start."""
    if deployed.proxy.proc is None or deployed.proxy.proc.poll() is not None:
        deployed.proxy.start()
    wait_healthy(deployed.url)
    standin_reset(deployed.stack)
    return deployed
