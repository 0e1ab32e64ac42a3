"""PostgreSQL tables. The schema itself is created only by the Alembic migrations."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

FINAL_STATUSES = ("completed", "failed", "cancelled")
OPEN_STATUSES = ("pending", "retrying")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    # The admin list: newest first, keyset-paged.
    __table_args__ = (Index("ix_users_created", text("created_at DESC"), text("id DESC")),)

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Teams (migration 0003_teams).
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The OpenID Connect `iss|sub` of an account that signs in with SSO.
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Daily limits set by an admin (app.services.quotas): NULL the setting's, 0 none.
    messages_per_day: Mapped[int | None] = mapped_column(Integer)
    tokens_per_day: Mapped[int | None] = mapped_column(BigInteger)


class LoginSession(Base):
    __tablename__ = "login_sessions"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    device: Mapped[str | None] = mapped_column(String(200))  # the User-Agent at sign-in
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Chat(Base):
    __tablename__ = "chats"
    __table_args__ = (
        # GET /chats: one user's chats by latest activity, keyset-paged.
        Index("ix_chats_user_activity", "user_id", text("updated_at DESC"), text("id DESC")),
        Index("ix_chats_active_leaf", "active_leaf_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(100))
    system_prompt: Mapped[str | None] = mapped_column(Text)
    # The chat's generation settings as the API takes them (app.services.generation).
    generation_settings: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # True while nobody named the chat: a generated title may still replace it.
    title_auto: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The end of the branch the chat shows and a send follows (null: no message yet).
    active_leaf_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID,
        ForeignKey("messages.id", ondelete="SET NULL", name="fk_chats_active_leaf", use_alter=True),
    )


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_chat_seq", "chat_id", "seq"),
        Index("ix_messages_parent", "parent_id", "seq"),
        Index(
            "ix_messages_chat_roots", "chat_id", "seq", postgresql_where=text("parent_id IS NULL")
        ),
        # At most one reply in progress per chat, enforced by the database itself.
        Index(
            "uq_messages_one_open_reply",
            "chat_id",
            unique=True,
            postgresql_where=text("role = 'assistant' AND status IN ('pending', 'retrying')"),
        ),
        # GET /api/search: words (websearch syntax) and substrings (trigrams) of the content.
        Index("ix_messages_content_fts", "content_tsv", postgresql_using="gin"),
        Index(
            "ix_messages_content_trgm",
            "content",
            postgresql_using="gin",
            postgresql_ops={"content": "gin_trgm_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    # Insertion order: created_at can tie inside one transaction.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    chat_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("chats.id", ondelete="CASCADE"))
    # The message this one follows; null for a chat's first question (and its edits).
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID, ForeignKey("messages.id", ondelete="CASCADE", name="fk_messages_parent")
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    thoughts: Mapped[str | None] = mapped_column(Text)  # the model's thought summaries, if asked
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    model: Mapped[str | None] = mapped_column(String(100))
    # The request currently answering this reply; a response for any other id is stale.
    request_id: Mapped[uuid.UUID | None] = mapped_column(UUID, unique=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    finish_reason: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    key_id: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The words of `content` for GET /api/search; never loaded with the message (deferred).
    content_tsv: Mapped[Any] = mapped_column(
        TSVECTOR,
        Computed("to_tsvector('simple'::regconfig, content)", persisted=True),
        deferred=True,
    )
    # A reply: older attachments the worker left out of its request (Gemini's size limit).
    attachments_omitted: Mapped[int | None] = mapped_column(Integer)


class OutboxRequest(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        # The relay's scan: rows not yet published, oldest first.
        Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(UUID, unique=True)
    message_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GeminiKey(Base):
    """A key added in the admin page; its text only as a Fernet token (app.core.keycrypt)."""

    __tablename__ = "gemini_keys"

    # The first 8 hex of sha256(key text): what the worker and the admin page call it.
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    token: Mapped[str] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SharedChat(Base):
    """A share link: a frozen copy of a chat's active branch, readable by anyone with the token."""

    __tablename__ = "shared_chats"
    __table_args__ = (Index("ix_shared_chats_chat", "chat_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    # sha256 hex of the token: a leaked database does not open the links.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    chat_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("chats.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    # [{role, content, created_at}], oldest first, as they were when the link was made.
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Invite(Base):
    """A single-use sign-up link; only the token's SHA-256 is kept."""

    __tablename__ = "invites"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    used_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID, ForeignKey("users.id", ondelete="SET NULL")
    )


class PasswordReset(Base):
    """A one-time password reset link made by an admin; only the token's SHA-256 is kept."""

    __tablename__ = "password_resets"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID, ForeignKey("users.id", ondelete="SET NULL")
    )
    actor_email: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(320))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UsageDaily(Base):
    """What each user used each UTC day, by model and key: the quotas' durable count.

    Questions are counted at the send (key_id ''), tokens and replies when the reply completes
    (the key that answered), so deleting a chat does not give its quota back."""

    __tablename__ = "usage_daily"
    __table_args__ = (Index("ix_usage_daily_user_day", "user_id", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    messages: Mapped[int] = mapped_column(Integer, default=0)
    replies: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)


class Upload(Base):
    """A file a user uploaded; attached to one of their messages at most once (message_id).
    No foreign key on message_id: the upload is claimed before its message is written (the
    send's one insert statement stays as it is); chat_id's cascade deletes it with the chat."""

    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_unattached", "created_at", postgresql_where=text("message_id IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    chat_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID, ForeignKey("chats.id", ondelete="CASCADE")
    )
    message_id: Mapped[uuid.UUID | None] = mapped_column(UUID, index=True)
    name: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    # What the worker sends: the downscaled copy of a large image, else the original.
    send_mime_type: Mapped[str] = mapped_column(String(100))
    send_size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    pages: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UploadData(Base):
    """An upload's bytes, apart from its metadata so that listing never reads them."""

    __tablename__ = "upload_data"

    upload_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    original: Mapped[bytes] = mapped_column(LargeBinary)
    send: Mapped[bytes | None] = mapped_column(LargeBinary)
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary)
