"""Generation settings, thoughts and titles through a real worker and the stand-in over HTTP."""

import json

from standin.replies import reply_text, thought_text, title_text

from .conftest import shared_worker
from .support import request, wait_for

env, bus, worker, _fresh = shared_worker()

TITLE = {
    "model": "gemini-2.5-flash-lite",
    "system_instruction": "You name conversations. Reply with a title of at most six words.",
    "generation_config": {"temperature": 0.2, "thinking_config": {"thinking_budget": 0}},
}


async def test_settings_reach_gemini_as_generation_config(worker, bus, standin):
    config = {
        "temperature": 0.3, "top_p": 0.8, "max_output_tokens": 512,
        "stop_sequences": ["NEVER-SAID"], "thinking_config": {"thinking_budget": 1024},
    }
    body = request("settings? [[standin:echo_config]]", generation_config=config)
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed"
    sent = standin.requests()[-1]["generationConfig"]
    # As google-genai sends it: thinkingConfig's own fields keep their snake_case names
    # (Google's proto JSON reader takes either spelling).
    assert sent == {
        "temperature": 0.3, "topP": 0.8, "maxOutputTokens": 512, "stopSequences": ["NEVER-SAID"],
        "thinkingConfig": {"thinking_budget": 1024},
    }
    # The stand-in echoes what it got, when the prompt asks.
    assert done["content"].endswith("generationConfig: " + json.dumps(sent, sort_keys=True))


async def test_a_stop_sequence_ends_the_reply(worker, bus):
    body = request("stop early", generation_config={"stop_sequences": ["\n\n"]})
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed" and done["content"] == "Echo: stop early"


async def test_thoughts_stream_apart_and_stay_out_of_the_answer(worker, bus, events, standin):
    body = request("think first", generation_config={
        "thinking_config": {"include_thoughts": True, "thinking_budget": -1},
    })
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed"
    assert done["content"] == reply_text("think first")
    assert done["thoughts"] == thought_text("think first")
    stream = await events.of(body["chat_id"])
    thoughts = [data for event, data in stream if event == "message.thought"]
    assert [t["seq"] for t in thoughts] == list(range(len(thoughts))) and thoughts
    assert "".join(t["text"] for t in thoughts) == thought_text("think first")
    assert await events.text(body["chat_id"]) == reply_text("think first")
    # Thoughts come before the answer, as Gemini sends them.
    kinds = [e for e, _ in stream if e in ("message.thought", "message.delta")]
    last_thought = max(i for i, k in enumerate(kinds) if k == "message.thought")
    assert kinds.index("message.delta") > last_thought


async def test_no_thoughts_unless_asked(worker, bus, events):
    body = request("no thinking shown")
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed" and "thoughts" not in done  # left out when empty
    assert not [e for e, _ in await events.of(body["chat_id"]) if e == "message.thought"]


async def test_first_reply_asks_for_a_title_through_the_queue(worker, bus, events, standin):
    body = request("What is the capital of France?", title=TITLE, user_id="u-1")
    await bus.send(body)
    reply = await bus.final(body["request_id"])
    assert reply["status"] == "completed" and "kind" not in reply  # a reply's kind is implied
    titled = await wait_for(
        lambda: [r for r in bus.responses if r.get("kind") == "title"
                 and r["chat_id"] == body["chat_id"]],
        20, "the title response",
    )
    answer = titled[0]
    assert answer["status"] == "completed"
    assert answer["content"] == title_text("What is the capital of France?")
    assert answer["message_id"] == body["message_id"]
    assert answer["model"] == "gemini-2.5-flash-lite"
    assert answer["request_id"] != body["request_id"]
    seen = [r for r in standin.requests() if r["model"] == "gemini-2.5-flash-lite"][-1]
    assert seen["systemInstruction"]["parts"][0]["text"] == TITLE["system_instruction"]
    assert seen["generationConfig"] == {
        "temperature": 0.2, "thinkingConfig": {"thinking_budget": 0},
    }
    assert seen["contents"][0]["parts"][0]["text"].startswith("User: What is the capital")
    # The title never shows in the chat: no event of its request.
    stream = await events.of(body["chat_id"])
    assert len([e for e, _ in stream if e == "message.status"]) == 1


async def test_no_title_asked_without_a_spec_or_for_a_failed_reply(worker, bus, standin):
    plain = request("no title please")
    await bus.send(plain)
    await bus.final(plain["request_id"])
    failed = request("fail [[standin:400]]", title=TITLE)
    await bus.send(failed)
    assert (await bus.final(failed["request_id"]))["status"] == "failed"
    ok = request("a later one", title=TITLE)  # a title response after these proves none came
    await bus.send(ok)
    await wait_for(lambda: [r for r in bus.responses if r.get("kind") == "title"
                            and r["chat_id"] == ok["chat_id"]], 20, "the later title")
    chats = {r["chat_id"] for r in bus.responses if r.get("kind") == "title"}
    assert plain["chat_id"] not in chats and failed["chat_id"] not in chats
