"""The schema exists only through Alembic: up and down on an empty database."""

import psycopg
import pytest
from alembic.config import Config

from alembic import command
from app.core.config import get_settings
from tests.support import BACKEND, RunNames, create_database, drop_database

TABLES = {
    "users",
    "login_sessions",
    "chats",
    "messages",
    "outbox",
    "gemini_keys",
    "invites",
    "password_resets",
    "audit_log",
    "shared_chats",
    "usage_daily",
    "uploads",
    "upload_data",
}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as db:
        rows = db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in rows} - {"alembic_version"}


def test_upgrade_and_downgrade_on_an_empty_database(monkeypatch: pytest.MonkeyPatch) -> None:
    names = RunNames()
    create_database(names.database)
    url = names.database_url()
    # In-process (the same env.py as `alembic upgrade head`), to spare three interpreter starts.
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SECRET_KEY", "migrations-test-secret")
    get_settings.cache_clear()
    config = Config(str(BACKEND / "alembic.ini"))
    config.attributes["configure_logger"] = False
    try:
        command.upgrade(config, "head")
        assert _tables(url) == TABLES
        with psycopg.connect(url) as db:
            indexes = {name for (name,) in db.execute("SELECT indexname FROM pg_indexes")}
        assert {
            "ix_chats_user_activity",
            "ix_messages_chat_seq",
            "uq_messages_one_open_reply",
            "ix_outbox_unpublished",
        } <= indexes
        command.downgrade(config, "base")
        assert _tables(url) == set()
        command.upgrade(config, "head")
        assert _tables(url) == TABLES
    finally:
        get_settings.cache_clear()
        drop_database(names.database)
