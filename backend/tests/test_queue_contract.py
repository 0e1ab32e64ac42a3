"""The queue messages against both sides' fixtures (docs/CONTRACTS.md, "RabbitMQ")."""

import json
from pathlib import Path

from app.core.queue_messages import GeminiRequest, GeminiResponse
from tests.support import BACKEND, Api, WorkerRole

OUR_FIXTURES = BACKEND / "tests/fixtures/queue"
WORKER_FIXTURES = BACKEND.parent / "gemini-client/tests/fixtures/queue"


def _load(folder: Path) -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def test_every_worker_response_fixture_parses() -> None:
    fixtures = _load(WORKER_FIXTURES)
    statuses = {GeminiResponse.model_validate(body).status for body in fixtures.values()}
    assert statuses == {"completed", "failed", "retrying", "cancelled"}, sorted(fixtures)


def test_our_request_fixtures_are_valid_requests() -> None:
    fixtures = _load(OUR_FIXTURES)
    assert fixtures
    for name, body in fixtures.items():
        request = GeminiRequest.model_validate(body)
        assert request.model_dump(mode="json") == body, name


def test_what_we_publish_has_the_fixtures_shape(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat(system_prompt="Be brief.")
    reply = alice.send(chat["id"], "hello")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    for name, fixture in _load(OUR_FIXTURES).items():
        # `title` rides only on a chat's first reply (docs/CONTRACTS.md, "Rendering and settings").
        assert set(request) - {"title"} == set(fixture) - {"title"}, name
