"""Migration 0003_tree on a database filled by the old schema: every chat becomes one branch."""

import uuid

import psycopg
import pytest
from alembic.config import Config

from alembic import command
from app.core.config import get_settings
from tests.support import BACKEND, RunNames, create_database, drop_database

# From the active leaf up to the first question, as the backend reads the branch it shows.
ACTIVE_PATH = """
    WITH RECURSIVE p AS (
        SELECT m.id, m.parent_id, m.seq FROM chats c JOIN messages m ON m.id = c.active_leaf_id
        WHERE c.id = %s
        UNION ALL
        SELECT m.id, m.parent_id, m.seq FROM p JOIN messages m ON m.id = p.parent_id
    )
    SELECT id FROM p ORDER BY seq
"""


def _fill_old_schema(db: psycopg.Connection) -> dict[str, list[uuid.UUID]]:
    user = uuid.uuid4()
    db.execute(
        "INSERT INTO users (id, email, password_hash, is_admin) VALUES (%s, %s, 'x', false)",
        (user, f"{user}@example.com"),
    )
    chats: dict[str, list[uuid.UUID]] = {}
    turns = {
        "long": [
            ("user", "one", "completed"),
            ("assistant", "Echo: one", "completed"),
            ("user", "two", "completed"),
            ("assistant", "", "failed"),
            ("user", "three", "completed"),
            ("assistant", "Echo: three", "completed"),
        ],
        "open": [("user", "hi", "completed"), ("assistant", "", "pending")],
        "empty": [],
    }
    for name, messages in turns.items():
        chat = uuid.uuid4()
        db.execute(
            "INSERT INTO chats (id, user_id, title, model) VALUES (%s, %s, %s, 'gemini-2.5-flash')",
            (chat, user, name),
        )
        chats[name] = []
        for role, content, status in messages:
            message = uuid.uuid4()
            db.execute(
                "INSERT INTO messages (id, chat_id, role, content, status, attempt)"
                " VALUES (%s, %s, %s, %s, %s, 0)",
                (message, chat, role, content, status),
            )
            chats[name].append(message)
        chats[name].insert(0, chat)
    # Another chat's messages interleave by seq: a parent is the previous message of its chat.
    db.execute(
        "INSERT INTO messages (id, chat_id, role, content, status, attempt)"
        " VALUES (%s, %s, 'user', 'later', 'completed', 0)",
        (uuid.uuid4(), chats["open"][0]),
    )
    return chats


def test_existing_chats_become_single_branch_trees(monkeypatch: pytest.MonkeyPatch) -> None:
    names = RunNames()
    create_database(names.database)
    url = names.database_url()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SECRET_KEY", "migrations-test-secret")
    get_settings.cache_clear()
    config = Config(str(BACKEND / "alembic.ini"))
    config.attributes["configure_logger"] = False
    try:
        command.upgrade(config, "0002")
        with psycopg.connect(url) as db:
            chats = _fill_old_schema(db)
            before = db.execute(
                "SELECT id, chat_id, role, content, status FROM messages"
            ).fetchall()
        command.upgrade(config, "0003_tree")
        with psycopg.connect(url) as db:
            after = db.execute("SELECT id, chat_id, role, content, status FROM messages").fetchall()
            assert sorted(after) == sorted(before)  # nothing lost, nothing changed
            for name, (chat, *_turns) in chats.items():
                rows = db.execute(
                    "SELECT id, parent_id FROM messages WHERE chat_id = %s ORDER BY seq", (chat,)
                ).fetchall()
                ids = [row[0] for row in rows]
                assert [row[1] for row in rows] == [None, *ids][: len(ids)], name
                leaf = db.execute("SELECT active_leaf_id FROM chats WHERE id = %s", (chat,))
                assert leaf.fetchone()[0] == (ids[-1] if ids else None), name
                path = [row[0] for row in db.execute(ACTIVE_PATH, (chat,))]
                assert path == ids, name
            # The open reply still holds its chat's one open slot.
            open_replies = db.execute(
                "SELECT count(*) FROM messages WHERE status = 'pending'"
            ).fetchone()
            assert open_replies[0] == 1
        command.downgrade(config, "0002")
        with psycopg.connect(url) as db:
            back = db.execute("SELECT id, chat_id, role, content, status FROM messages").fetchall()
            assert sorted(back) == sorted(before)
    finally:
        get_settings.cache_clear()
        drop_database(names.database)
