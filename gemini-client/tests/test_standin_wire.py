"""The real google-genai SDK, pointed at the stand-in, reads its answers and errors."""

import httpx
import pytest
from google import genai
from google.genai import errors, types

from src.api.failures import Blame, classify
from standin.replies import reply_text

from .support import StandIn, key_id


@pytest.fixture
async def sdk(standin: StandIn):
    """Clients on the worker's transport (an httpx client, one attempt per call)."""
    standin.reset()
    standin.config(first_chunk_ms=0, chunk_ms=0)
    clients: list[httpx.AsyncClient] = []

    def make(key: str = "wire-key-0001") -> genai.Client:
        clients.append(httpx.AsyncClient(trust_env=False, timeout=5))
        options = types.HttpOptions(
            base_url=standin.url, timeout=5000, retry_options=types.HttpRetryOptions(attempts=1),
            httpx_async_client=clients[-1],
        )
        return genai.Client(api_key=key, http_options=options)

    yield make
    for client in clients:
        await client.aclose()


async def test_stream_shape_and_text(sdk, standin: StandIn) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part(text="first")]),
        types.Content(role="model", parts=[types.Part(text="ok")]),
        types.Content(role="user", parts=[types.Part(text="second")]),
    ]
    config = types.GenerateContentConfig(system_instruction="Be terse.", temperature=0.2)
    stream = await sdk().aio.models.generate_content_stream(
        model="gemini-2.5-flash", contents=contents, config=config
    )
    chunks = [chunk async for chunk in stream]
    assert len(chunks) == 8
    assert "".join(c.text for c in chunks) == reply_text(
        "second", turns=3, system_instruction="Be terse."
    )
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    used = [c.usage_metadata.candidates_token_count for c in chunks]
    assert used == sorted(used) and used[0] < used[-1]  # cumulative
    assert {c.response_id for c in chunks} == {chunks[0].response_id}
    assert chunks[0].model_version == "gemini-2.5-flash"
    seen = standin.requests()[-1]
    assert seen["systemInstruction"]["parts"][0]["text"] == "Be terse."
    assert seen["generationConfig"]["temperature"] == 0.2
    assert [c["role"] for c in seen["contents"]] == ["user", "model", "user"]


async def test_quota_error_carries_retry_delay(sdk, standin: StandIn) -> None:
    standin.config(faults=[{"kind": "429", "retry_delay_s": 12}])
    with pytest.raises(errors.ClientError) as caught:
        await sdk().aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (caught.value.code, caught.value.status) == (429, "RESOURCE_EXHAUSTED")
    types_sent = [d["@type"] for d in caught.value.details["error"]["details"]]
    assert "type.googleapis.com/google.rpc.QuotaFailure" in types_sent
    failure = classify(caught.value)
    assert (failure.blame, failure.retry_after_s) == (Blame.QUOTA, 12.0)
    assert standin.stats()["total_429"] == 1


async def test_per_key_limit_answers_429(sdk, standin: StandIn) -> None:
    standin.config(rpm=2)
    client = sdk("limited-key-0001")
    for _ in range(2):
        await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    with pytest.raises(errors.ClientError) as caught:
        await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert 55 <= classify(caught.value).retry_after_s <= 60
    await sdk("other-key-0002").aio.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert standin.stats()["served_429"] == {key_id("limited-key-0001"): 1}


@pytest.mark.parametrize(
    ("dials", "code", "status", "blame"),
    [
        ({"invalid_keys": ["wire-key-0001"]}, 400, "INVALID_ARGUMENT", Blame.KEY),
        ({"valid_keys": ["someone-else"]}, 400, "INVALID_ARGUMENT", Blame.KEY),
        ({"denied_keys": [key_id("wire-key-0001")]}, 403, "PERMISSION_DENIED", Blame.KEY),
        ({"faults": [{"kind": "503"}]}, 503, "UNAVAILABLE", Blame.TRANSIENT),
        ({"faults": [{"kind": "500"}]}, 500, "INTERNAL", Blame.TRANSIENT),
        ({"faults": [{"kind": "400"}]}, 400, "INVALID_ARGUMENT", Blame.FATAL),
    ],
)
async def test_errors_parse_and_classify(sdk, standin, dials, code, status, blame) -> None:
    standin.config(**dials)
    with pytest.raises(errors.APIError) as caught:
        stream = await sdk().aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="hi"
        )
        [chunk async for chunk in stream]
    assert (caught.value.code, caught.value.status) == (code, status)
    assert classify(caught.value).blame is blame


async def test_invalid_key_names_api_key_invalid(sdk, standin: StandIn) -> None:
    standin.config(invalid_keys=["wire-key-0001"])
    with pytest.raises(errors.ClientError) as caught:
        await sdk().aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    reasons = [d.get("reason") for d in caught.value.details["error"]["details"]]
    assert "API_KEY_INVALID" in reasons


async def test_error_mid_stream_after_some_text(sdk, standin: StandIn) -> None:
    standin.config(faults=[{"kind": "midstream", "after_chunks": 3}])
    stream = await sdk().aio.models.generate_content_stream(model="gemini-2.5-flash", contents="x")
    texts = []
    with pytest.raises(errors.ServerError) as caught:
        async for chunk in stream:
            texts.append(chunk.text)
    assert len(texts) == 3 and caught.value.code == 503


async def test_unknown_model_is_not_found(sdk) -> None:
    with pytest.raises(errors.ClientError) as caught:
        await sdk().aio.models.generate_content(model="gemini-0.1-nano", contents="hi")
    assert caught.value.code == 404
    assert classify(caught.value).blame is Blame.FATAL


async def test_safety_block_is_fatal(sdk) -> None:
    answer = await sdk().aio.models.generate_content(
        model="gemini-2.5-flash", contents="tell me [[standin:safety]]"
    )
    assert answer.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert not answer.candidates
