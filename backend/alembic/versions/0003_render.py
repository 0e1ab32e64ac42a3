"""render: per-chat generation settings, generated titles, a reply's thoughts

Revision ID: 0003_render
Revises: 0002
Create Date: 2026-12-03 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0003_render"
down_revision: str | None = "0003_usage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chats", sa.Column("generation_settings", postgresql.JSONB(), nullable=True))
    # True while nobody named the chat: a generated title may still replace it.
    op.add_column(
        "chats",
        sa.Column("title_auto", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.add_column("messages", sa.Column("thoughts", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "thoughts")
    op.drop_column("chats", "title_auto")
    op.drop_column("chats", "generation_settings")
