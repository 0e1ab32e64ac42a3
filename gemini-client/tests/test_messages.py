"""Our message models against both services' queue fixtures (docs/CONTRACTS.md)."""

import json
from pathlib import Path

import pytest

from src.queue.messages import GeminiRequest, GeminiResponse

HERE = Path(__file__).parent
OURS = sorted((HERE / "fixtures" / "queue").glob("*.json"))
BACKEND = HERE.parents[1] / "backend" / "tests" / "fixtures" / "queue"


def _backend_requests() -> list[Path]:
    return [p for p in sorted(BACKEND.glob("*.json")) if "contents" in json.loads(p.read_text())]


def test_backend_publishes_request_fixtures() -> None:
    assert _backend_requests(), f"no request fixtures in {BACKEND}"


@pytest.mark.parametrize("path", _backend_requests(), ids=lambda p: p.name)
def test_backend_requests_parse(path: Path) -> None:
    raw = json.loads(path.read_text())
    request = GeminiRequest.model_validate(raw)
    assert request.v == 1
    assert request.contents[-1].role == "user"
    # The ids go back to the backend exactly as they came.
    assert (request.chat_id, request.message_id) == (raw["chat_id"], raw["message_id"])


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.name)
def test_our_response_fixtures_match_the_model(path: Path) -> None:
    raw = json.loads(path.read_text())
    response = GeminiResponse.model_validate(raw)
    assert json.loads(response.model_dump_json()) == raw


def test_every_response_status_has_a_fixture() -> None:
    statuses = {json.loads(p.read_text())["status"] for p in OURS}
    assert statuses == {"completed", "failed", "retrying", "cancelled"}


@pytest.mark.parametrize(
    "body",
    [
        {"v": 2, "request_id": "r", "chat_id": "c", "message_id": "m",
         "contents": [{"role": "user", "text": "hi"}]},
        {"v": 1, "request_id": "r", "chat_id": "c", "message_id": "m", "contents": []},
        {"v": 1, "request_id": "r", "chat_id": "c", "message_id": "m",
         "contents": [{"role": "system", "text": "hi"}]},
        {"v": 1, "chat_id": "c", "message_id": "m", "contents": [{"role": "user", "text": "x"}]},
    ],
)
def test_malformed_requests_are_refused(body: dict) -> None:
    with pytest.raises(ValueError):
        GeminiRequest.model_validate(body)
