"""usage: per-user daily limits (users.messages_per_day, users.tokens_per_day) and the daily
usage ledger (usage_daily), filled from the messages already stored

Revision ID: 0003_usage
Revises: 0002
Create Date: 2026-12-03 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003_usage"
down_revision: str | None = "0003_teams"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: the setting's default applies; 0: no limit for this user.
    op.add_column("users", sa.Column("messages_per_day", sa.Integer(), nullable=True))
    op.add_column("users", sa.Column("tokens_per_day", sa.BigInteger(), nullable=True))
    op.create_table(
        "usage_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "user_id",
            sa.UUID(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("model", sa.String(length=100), nullable=False),
        # '' on the rows counted at the send, when no key has answered yet.
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "user_id", "model", "key_id"),
    )
    op.create_index("ix_usage_daily_user_day", "usage_daily", ["user_id", "day"])
    # What was sent before this migration counts too: questions by the day they were asked,
    # tokens by the day their reply completed (UTC days, as the quotas count them).
    op.execute(
        """
        INSERT INTO usage_daily
            (day, user_id, model, key_id, messages, replies, prompt_tokens, completion_tokens)
        SELECT day, user_id, model, key_id, sum(messages), sum(replies), sum(pt), sum(ct)
        FROM (
            SELECT (q.created_at AT TIME ZONE 'UTC')::date AS day, c.user_id,
                   coalesce(r.model, c.model) AS model, '' AS key_id,
                   1 AS messages, 0 AS replies, 0 AS pt, 0 AS ct
            FROM messages q
            JOIN chats c ON c.id = q.chat_id
            LEFT JOIN LATERAL (
                SELECT m.model FROM messages m
                WHERE m.chat_id = q.chat_id AND m.seq > q.seq AND m.role = 'assistant'
                ORDER BY m.seq LIMIT 1
            ) r ON true
            WHERE q.role = 'user'
            UNION ALL
            SELECT (coalesce(m.completed_at, m.created_at) AT TIME ZONE 'UTC')::date, c.user_id,
                   coalesce(m.model, c.model), coalesce(m.key_id, ''), 0, 1,
                   coalesce(m.prompt_tokens, 0), coalesce(m.completion_tokens, 0)
            FROM messages m
            JOIN chats c ON c.id = m.chat_id
            WHERE m.role = 'assistant'
              AND (m.prompt_tokens IS NOT NULL OR m.completion_tokens IS NOT NULL)
        ) used
        GROUP BY day, user_id, model, key_id
        """
    )


def downgrade() -> None:
    op.drop_index("ix_usage_daily_user_day", table_name="usage_daily")
    op.drop_table("usage_daily")
    op.drop_column("users", "tokens_per_day")
    op.drop_column("users", "messages_per_day")
