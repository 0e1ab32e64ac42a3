"""Published outbox rows are pruned once a day old."""

import asyncio
import json
import uuid
from types import SimpleNamespace

import psycopg
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.session import make_sessionmaker
from app.services.outbox import prune_published
from tests.support import Api, RunNames, WorkerRole


async def _prune(run: RunNames) -> int:
    engine = create_async_engine(run.database_url().replace("postgresql:", "postgresql+psycopg:"))
    try:
        return await prune_published(SimpleNamespace(sessionmaker=make_sessionmaker(engine)))
    finally:
        await engine.dispose()


def test_prune_removes_day_old_published_rows_only(
    alice: Api, worker: WorkerRole, run: RunNames
) -> None:
    chat = alice.new_chat()
    reply = alice.send(chat["id"], "hi")["assistant_message"]
    worker.take_request(reply["id"])
    with psycopg.connect(run.database_url(), autocommit=True) as db:
        old = db.execute(
            "INSERT INTO outbox (request_id, message_id, payload, publish_attempts, published_at)"
            " VALUES (%s, %s, %s, 0, now() - interval '2 days') RETURNING id",
            (uuid.uuid4(), reply["id"], json.dumps({})),
        ).fetchone()[0]
        assert asyncio.run(_prune(run)) >= 1
        left = [
            row[0]
            for row in db.execute("SELECT id FROM outbox WHERE message_id = %s", (reply["id"],))
        ]
    assert old not in left
    assert len(left) == 1  # the send's own row, published just now, stays
