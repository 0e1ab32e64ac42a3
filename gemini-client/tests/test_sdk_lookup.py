"""The SDK builds the same request JSON with the cheap `in` (src/api/sdk_lookup.py) as without."""

from google import genai
from google.genai import _common, models, types

from src.api import sdk_lookup


def _request_json() -> dict:
    params = types._GenerateContentParameters(
        model="gemini-2.5-flash",
        contents=[
            {"role": "user", "parts": [{"text": "first"}]},
            {"role": "model", "parts": [{"text": "ok", "thought": True}]},
            {"role": "user", "parts": [{"text": "second"}]},
        ],
        config=types.GenerateContentConfig(
            system_instruction="Be terse.", temperature=0.2, top_k=3, max_output_tokens=50,
            stop_sequences=["END"], automatic_continuation=False,
            safety_settings=[types.SafetySetting(
                category="HARM_CATEGORY_HATE_SPEECH", threshold="BLOCK_ONLY_HIGH",
            )],
        ),
    )
    api_client = genai.Client(api_key="lookup-test-key")._api_client
    return models._GenerateContentParameters_to_mldev(api_client, params, None, params)


def test_request_json_is_unchanged() -> None:
    sdk_lookup.install()
    fast = _request_json()
    del _common.BaseModel.__contains__
    try:
        assert _request_json() == fast
    finally:
        sdk_lookup.install()
    assert fast["contents"][2] == {"role": "user", "parts": [{"text": "second"}]}
    assert fast["generationConfig"]["temperature"] == 0.2


def test_membership_answers_as_pydantic_does() -> None:
    sdk_lookup.install()
    part = types.Part(text="hi")
    assert "text" not in part
    assert ("text", "hi") in part
    assert ("text", "other") not in part
