"""Schemathesis generates requests from the backend's own OpenAPI document and sends them, as a
logged-in user, through nginx: no answer may be a 5xx, and every answer must match the schema."""

from __future__ import annotations

import asyncio

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
    schema = schemathesis.openapi.from_url(f"{deployed.url}/api/openapi.json", timeout=10)
    # Logging out would end the session every later case runs in.
    return schema.exclude(path_regex=r"/auth/logout$")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_5xx_and_matches_its_schema(case, token, deployed):
    case.call_and_validate(
        base_url=deployed.url,
        headers={"Authorization": f"Bearer {token}"},
        checks=CHECKS,
        timeout=15,
    )
