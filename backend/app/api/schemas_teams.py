"""Bodies of the teams API: user administration, invites, the audit log, account settings."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import Credentials, Email, Strict, Text

MAX_LIMIT = 10_000_000_000


class RegisterIn(Credentials):
    invite: str | None = Field(None, min_length=1, max_length=200)


class UsageToday(BaseModel):
    messages: int
    tokens: int


class Limits(Strict):
    messages_per_day: int | None = Field(None, ge=0, le=MAX_LIMIT)
    tokens_per_day: int | None = Field(None, ge=0, le=MAX_LIMIT)


class AdminUserOut(BaseModel):
    id: UUID
    email: str
    is_admin: bool
    disabled: bool
    sso: bool
    created_at: datetime
    last_seen_at: datetime | None
    usage_today: UsageToday
    limits: Limits


class AdminUsersOut(BaseModel):
    items: list[AdminUserOut]
    next: UUID | None


class UserPatch(Strict):
    is_admin: bool | None = None
    disabled: bool | None = None
    limits: Limits | None = None


class ResetLinkOut(BaseModel):
    token: str
    url: str
    expires_at: datetime


class ResetIn(Strict):
    token: str = Field(min_length=1, max_length=200)
    new_password: Text = Field(min_length=8, max_length=256)


class InviteIn(Strict):
    email: Email | None = None
    expires_hours: float | None = Field(None, gt=0, le=24 * 365)


class InviteCreated(BaseModel):
    id: UUID
    token: str
    url: str
    email: str | None
    expires_at: datetime


class InviteOut(BaseModel):
    id: UUID
    email: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by: str | None
    status: Literal["open", "used", "expired"]


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    actor_email: str
    action: str
    target: str | None
    detail: dict[str, Any]
    created_at: datetime


class AuditPage(BaseModel):
    items: list[AuditOut]
    next: int | None


class SessionOut(BaseModel):
    id: UUID
    device: str | None
    created_at: datetime
    last_seen_at: datetime | None
    current: bool


class DeleteMe(Strict):
    password: Text | None = Field(None, max_length=256)


class AuthOptions(BaseModel):
    registration: Literal["true", "false", "invite"]
    password_login: bool
    sso: bool
