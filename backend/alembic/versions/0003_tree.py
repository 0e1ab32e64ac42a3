"""message tree: messages.parent_id, chats.active_leaf_id; existing chats become one branch

Revision ID: 0003_tree
Revises: 0002
Create Date: 2026-12-03 08:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003_tree"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("parent_id", sa.UUID(), nullable=True))
    op.add_column("chats", sa.Column("active_leaf_id", sa.UUID(), nullable=True))
    # A chat so far is one line: each message follows the one before it, the last is the leaf.
    op.execute(
        """
        UPDATE messages m SET parent_id = p.prev
        FROM (SELECT id, lag(id) OVER (PARTITION BY chat_id ORDER BY seq) AS prev
              FROM messages) p
        WHERE m.id = p.id AND p.prev IS NOT NULL
        """
    )
    op.execute(
        """
        UPDATE chats c SET active_leaf_id = (
            SELECT m.id FROM messages m WHERE m.chat_id = c.id ORDER BY m.seq DESC LIMIT 1
        )
        """
    )
    op.create_foreign_key(
        "fk_messages_parent", "messages", "messages", ["parent_id"], ["id"], ondelete="CASCADE"
    )
    op.create_foreign_key(
        "fk_chats_active_leaf", "chats", "messages", ["active_leaf_id"], ["id"], ondelete="SET NULL"
    )
    # Siblings of a reply or a question (and the foreign key's cascade) look children up by parent.
    op.create_index("ix_messages_parent", "messages", ["parent_id", "seq"])
    # Siblings of a chat's first questions.
    op.create_index(
        "ix_messages_chat_roots",
        "messages",
        ["chat_id", "seq"],
        postgresql_where=sa.text("parent_id IS NULL"),
    )
    # The active leaf's foreign key is checked for every message a chat deletion removes.
    op.create_index("ix_chats_active_leaf", "chats", ["active_leaf_id"])


def downgrade() -> None:
    # Every message stays; the branches flatten back into one line by seq.
    op.drop_index("ix_chats_active_leaf", table_name="chats")
    op.drop_index("ix_messages_chat_roots", table_name="messages")
    op.drop_index("ix_messages_parent", table_name="messages")
    op.drop_constraint("fk_chats_active_leaf", "chats", type_="foreignkey")
    op.drop_constraint("fk_messages_parent", "messages", type_="foreignkey")
    op.drop_column("chats", "active_leaf_id")
    op.drop_column("messages", "parent_id")
