"""search indexes on messages (full text and trigram), share links with their frozen snapshot

Revision ID: 0003_share
Revises: 0002
Create Date: 2026-12-03 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0003_share"
down_revision: str | None = "0003_tree"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # pg_trgm is a trusted extension: the database's owner may create it without superuser.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # Stored, so a search reads the vectors instead of parsing every candidate message again
    # (docs/BENCHMARKS.md, "Search"). PostgreSQL computes it only when `content` is written:
    # once per question, once when a reply completes. Adding it rewrites the table.
    op.add_column(
        "messages",
        sa.Column(
            "content_tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('simple'::regconfig, content)", persisted=True),
            nullable=True,
        ),
    )
    op.create_index("ix_messages_content_fts", "messages", ["content_tsv"], postgresql_using="gin")
    op.execute("CREATE INDEX ix_messages_content_trgm ON messages USING gin (content gin_trgm_ops)")
    op.create_table(
        "shared_chats",
        sa.Column("id", sa.UUID(), nullable=False),
        # sha256 hex of the link's token; the token itself is shown once, to its creator.
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("chat_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("messages", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_shared_chats_chat", "shared_chats", ["chat_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_shared_chats_chat", table_name="shared_chats")
    op.drop_table("shared_chats")
    op.execute("DROP INDEX ix_messages_content_trgm")
    op.drop_index("ix_messages_content_fts", table_name="messages")
    op.drop_column("messages", "content_tsv")
