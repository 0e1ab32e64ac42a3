"""The schema exists only through Alembic: up and down on an empty database."""

import psycopg

from tests.support import RunNames, alembic, create_database, drop_database

TABLES = {"users", "login_sessions", "chats", "messages", "outbox"}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as db:
        rows = db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in rows} - {"alembic_version"}


def test_upgrade_and_downgrade_on_an_empty_database() -> None:
    names = RunNames()
    create_database(names.database)
    try:
        url = names.database_url()
        up = alembic(names.env(), "upgrade", "head")
        assert up.returncode == 0, up.stderr
        assert _tables(url) == TABLES
        with psycopg.connect(url) as db:
            indexes = {name for (name,) in db.execute("SELECT indexname FROM pg_indexes")}
        assert {
            "ix_chats_user_activity",
            "ix_messages_chat_seq",
            "uq_messages_one_open_reply",
            "ix_outbox_unpublished",
        } <= indexes
        down = alembic(names.env(), "downgrade", "base")
        assert down.returncode == 0, down.stderr
        assert _tables(url) == set()
        again = alembic(names.env(), "upgrade", "head")
        assert again.returncode == 0, again.stderr
        assert _tables(url) == TABLES
    finally:
        drop_database(names.database)
