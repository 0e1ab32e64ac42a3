"""uploads: files attached to user messages, their bytes in PostgreSQL (bytea)

Revision ID: 0003_attach
Revises: 0003_render
Create Date: 2026-12-03 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from alembic import op

revision: str = "0003_attach"
down_revision: str | None = "0003_render"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", UUID(), nullable=False),
        sa.Column("user_id", UUID(), nullable=False),
        sa.Column("chat_id", UUID(), nullable=True),
        sa.Column("message_id", UUID(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("mime_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("send_mime_type", sa.String(length=100), nullable=False),
        sa.Column("send_size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_uploads_message_id", "uploads", ["message_id"])
    op.create_index("ix_uploads_user_id", "uploads", ["user_id"])
    op.create_index(
        "ix_uploads_unattached",
        "uploads",
        ["created_at"],
        postgresql_where=sa.text("message_id IS NULL"),
    )
    op.create_table(
        "upload_data",
        sa.Column("upload_id", UUID(), nullable=False),
        sa.Column("original", sa.LargeBinary(), nullable=False),
        sa.Column("send", sa.LargeBinary(), nullable=True),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["upload_id"], ["uploads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("upload_id"),
    )
    # The bytes are compressed already (images, PDFs) or small: no second compression pass.
    op.execute("ALTER TABLE upload_data ALTER COLUMN original SET STORAGE EXTERNAL")
    op.execute("ALTER TABLE upload_data ALTER COLUMN send SET STORAGE EXTERNAL")
    op.add_column("messages", sa.Column("attachments_omitted", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "attachments_omitted")
    op.drop_table("upload_data")
    op.drop_table("uploads")
