"""Schemathesis generates requests from the backend's own OpenAPI document and sends them, as a
logged-in user, through nginx: no answer may be a 5xx, and every answer must match the schema."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import schemathesis
from harness.api import ChatClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

pytestmark = pytest.mark.system

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def token(deployed) -> str:
    async def login() -> str:
        async with ChatClient(deployed.url) as c:
            await c.register_and_login()
            # Something for the path parameters to find.
            chat = await c.create_chat("fuzzed")
            await c.send(chat["id"], "hello from the fuzzer")
            return c.token

    return asyncio.run(login())


@pytest.fixture(scope="module")
def api_schema(deployed):
    return schemathesis.openapi.from_url(f"{deployed.url}/api/openapi.json", timeout=10)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_5xx_and_matches_its_schema(case, token, deployed):
    if case.operation.path.endswith(("/auth/logout", "/auth/logout-all", "/auth/password")):
        return  # each can end the session every later case runs in
    case.call_and_validate(
        base_url=deployed.url,
        headers={"Authorization": f"Bearer {token}"},
        checks=CHECKS,
        timeout=15,
    )


def test_fuzzing_ran_logged_in(token, deployed):
    """The cases above were sent with a session that stayed valid (else they only met 401s)."""
    r = httpx.get(f"{deployed.url}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
