"""Attachments through a real worker (issue 15): the request carries upload ids only, the worker
reads the bytes from PostgreSQL (the schema made by the backend's own migrations) and sends
them to the stand-in as inline data, which answers with the SHA-256 of what it received."""

import base64
import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from src.attachments import MemoryBudget, plan
from src.queue.messages import GeminiRequest

from .conftest import shared_worker
from .support import request

BACKEND = Path(__file__).resolve().parents[2] / "backend"
FILES = BACKEND / "tests" / "fixtures" / "files"
PNG = (FILES / "sample.png").read_bytes()
PDF = (FILES / "sample.pdf").read_bytes()
DATABASE = f"chat_gwattach_{uuid.uuid4().hex[:8]}"
DSN = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{DATABASE}"')
    try:
        env = {**os.environ, "DATABASE_URL": DSN, "SECRET_KEY": "migrate-only-secret-key"}
        migrated = subprocess.run(
            [str(BACKEND / ".venv" / "bin" / "alembic"), "upgrade", "head"],
            cwd=BACKEND, env=env, capture_output=True, text=True,
        )
        assert migrated.returncode == 0, migrated.stderr
        yield DSN
    finally:
        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
        ) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


# A request allowed 1500 bytes: the PNG (232 base64 characters) and the PDF (736) of one turn
# fit, a third file does not.
env, bus, worker, _fresh = shared_worker(
    DATABASE_URL=DSN.replace("postgresql:", "postgresql+psycopg:"),
    GEMINI_MAX_REQUEST_MB=str(1500 / 1024 / 1024),
)


def store(chat_id: str, data: bytes, mime: str) -> dict:
    """An upload as the backend stores it (attached to a message of `chat_id`)."""
    upload_id = str(uuid.uuid4())
    with psycopg.connect(DSN, autocommit=True) as db:
        user = db.execute(
            "INSERT INTO users (id, email, password_hash, is_admin) VALUES (%s, %s, 'x', false) "
            "ON CONFLICT DO NOTHING RETURNING id", (chat_id, f"{chat_id}@example.com"),
        )
        user.fetchall()
        db.execute(
            "INSERT INTO chats (id, user_id, title, model) VALUES (%s, %s, 't', 'm') "
            "ON CONFLICT DO NOTHING", (chat_id, chat_id),
        )
        db.execute(
            "INSERT INTO uploads (id, user_id, chat_id, message_id, name, mime_type, size, "
            "send_mime_type, send_size, sha256) VALUES (%s, %s, %s, %s, 'f', %s, %s, %s, %s, %s)",
            (upload_id, chat_id, chat_id, str(uuid.uuid4()), mime, len(data), mime, len(data),
             hashlib.sha256(data).hexdigest()),
        )
        db.execute(
            "INSERT INTO upload_data (upload_id, original) VALUES (%s, %s)", (upload_id, data)
        )
    return {"id": upload_id, "mime_type": mime, "size": len(data)}


def digest_line(mime: str, data: bytes) -> str:
    return f"file {mime} {len(data)} bytes sha256:{hashlib.sha256(data).hexdigest()}"


async def test_the_exact_bytes_reach_gemini_as_inline_data(database, worker, bus, standin):
    chat_id = str(uuid.uuid4())
    png, pdf = store(chat_id, PNG, "image/png"), store(chat_id, PDF, "application/pdf")
    body = request("what is this?", chat_id=chat_id, contents=[
        {"role": "user", "text": "what is this?", "attachments": [png, pdf]},
    ])
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed", done
    assert digest_line("image/png", PNG) in done["content"]
    assert digest_line("application/pdf", PDF) in done["content"]
    assert done["attachments_omitted"] == 0
    parts = standin.requests()[-1]["contents"][0]["parts"]
    assert [p.get("inlineData", {}).get("mimeType") for p in parts] == [
        "image/png", "application/pdf", None
    ]
    assert parts[-1] == {"text": "what is this?"}


async def test_older_attachments_are_dropped_first_and_the_reply_says_so(
    database, worker, bus, standin
):
    chat_id = str(uuid.uuid4())
    old_png, old_pdf = store(chat_id, PNG, "image/png"), store(chat_id, PDF, "application/pdf")
    new_png = store(chat_id, PNG, "image/png")
    body = request("and this one?", chat_id=chat_id, contents=[
        {"role": "user", "text": "first", "attachments": [old_png, old_pdf]},
        {"role": "model", "text": "ok"},
        {"role": "user", "text": "and this one?", "attachments": [new_png]},
    ])
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed", done
    # Newest first: the new PNG, then the first turn's PDF fit; its PNG, older still, does not.
    assert done["attachments_omitted"] == 1
    assert "(inline files in the request: 2)" in done["content"]
    assert digest_line("image/png", PNG) in done["content"]
    first = standin.requests()[-1]["contents"][0]["parts"]
    assert [p.get("inlineData", {}).get("mimeType") for p in first] == ["application/pdf", None]


async def test_files_too_large_for_one_request_fail_readably(database, worker, bus):
    chat_id = str(uuid.uuid4())
    big = store(chat_id, os.urandom(8000), "application/pdf")
    body = request("read it", chat_id=chat_id, contents=[
        {"role": "user", "text": "read it", "attachments": [big]},
    ])
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "bad_request"
    assert "too large for one Gemini request" in done["error"]["message"]


async def test_a_request_without_attachments_is_unchanged(database, worker, bus, standin):
    body = request("plain")
    await bus.send(body)
    done = await bus.final(body["request_id"])
    assert done["status"] == "completed" and "attachments_omitted" not in done
    assert standin.requests()[-1]["contents"][0]["parts"] == [{"text": "plain"}]


async def test_the_standin_refuses_inline_data_that_is_not_base64(standin):
    import httpx

    body = {"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": "not base64!"}}, {"text": "x"},
    ]}]}
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{standin.url}/v1beta/models/gemini-2.5-flash:generateContent",
            json=body, headers={"x-goog-api-key": "test-key-alpha-0001"},
        )
        assert answer.status_code == 400
        body["contents"][0]["parts"][0]["inlineData"] = {"data": base64.b64encode(PNG).decode()}
        answer = await client.post(
            f"{standin.url}/v1beta/models/gemini-2.5-flash:generateContent",
            json=body, headers={"x-goog-api-key": "test-key-alpha-0001"},
        )
        assert answer.status_code == 400 and "mime_type" in answer.text


def test_plan_keeps_the_newest_and_counts_what_it_leaves_out() -> None:
    def ref(size: int) -> dict:
        return {"id": str(uuid.uuid4()), "mime_type": "image/png", "size": size}

    old, mid, new = ref(3000), ref(3000), ref(3000)
    req = GeminiRequest.model_validate(request("q", contents=[
        {"role": "user", "text": "a", "attachments": [old]}, {"role": "model", "text": "b"},
        {"role": "user", "text": "c", "attachments": [mid]}, {"role": "model", "text": "d"},
        {"role": "user", "text": "q", "attachments": [new]},
    ]))
    chosen = plan(req, 9000)
    assert chosen.keep == [new["id"], mid["id"]] and chosen.omitted == 1
    assert chosen.raw_bytes == 6000


async def test_the_memory_budget_lets_one_oversized_reply_through_alone() -> None:
    import asyncio

    budget = MemoryBudget(100)
    order: list[str] = []

    async def reply(name: str, amount: int, hold_s: float) -> None:
        async with budget.hold(amount):
            order.append(name)
            await asyncio.sleep(hold_s)

    await asyncio.gather(reply("a", 60, 0.05), reply("b", 60, 0.0), reply("huge", 500, 0.0))
    assert order[0] == "a" and set(order) == {"a", "b", "huge"}
    assert budget.used == 0 and budget.peak <= 500
