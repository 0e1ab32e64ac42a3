"""Published outbox rows are pruned once a day old; the relay waits for a send's own publish."""

import asyncio
import json
import uuid
from types import SimpleNamespace

import psycopg
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.db.session import make_sessionmaker
from app.services.outbox import MARK_BATCH_SECONDS, prune_published, relay_grace_seconds
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


def test_the_relay_waits_longer_than_a_mark_may_wait_for_a_connection() -> None:
    """A send's mark can wait DB_POOL_TIMEOUT_SECONDS for a pooled connection; relaying its row
    sooner would publish a request that was already delivered."""
    for pool_timeout in (10, 30):
        settings = Settings(
            DATABASE_URL="postgresql://postgres@127.0.0.1:5432/unused",
            SECRET_KEY="outbox-test-secret",
            DB_POOL_TIMEOUT_SECONDS=pool_timeout,
        )
        publish_and_mark = settings.PUBLISH_TIMEOUT_SECONDS + settings.DB_POOL_TIMEOUT_SECONDS
        assert relay_grace_seconds(settings) > publish_and_mark + MARK_BATCH_SECONDS
