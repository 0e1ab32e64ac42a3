"""The queue messages (DESIGN.md): requests the backend sends, responses the worker sends."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

Id = str | int  # kept exactly as the backend sent it


class AttachmentRef(BaseModel):
    """An attachment of a turn: its bytes are read from PostgreSQL by id (the claim check)."""

    id: str = Field(min_length=1)
    mime_type: str = Field(min_length=1)
    size: int = Field(ge=0)


class Turn(BaseModel):
    role: Literal["user", "model"]
    text: str
    attachments: list[AttachmentRef] = Field(default_factory=list)


class TitleSpec(BaseModel):
    """Set by the backend on a chat's first reply: once it completes, ask for a title."""

    model: str
    system_instruction: str
    generation_config: dict[str, Any] = Field(default_factory=dict)


class GeminiRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    v: Literal[1]
    request_id: str = Field(min_length=1)
    chat_id: Id
    message_id: Id
    model: str | None = None
    system_instruction: str | None = None
    contents: list[Turn] = Field(min_length=1)
    generation_config: dict[str, Any] = Field(default_factory=dict)
    attempt: int = Field(0, ge=0)
    user_id: Id | None = None  # whose request: the key pool's line is fair per user
    # A reply that names its chat once it completes (left out when None).
    title: TitleSpec | None = Field(None, exclude_if=lambda v: v is None)
    # "title": a request this worker made from a completed reply's TitleSpec; its answer goes
    # back as a `kind: "title"` response and never into the chat's events.
    kind: Literal["reply", "title"] = Field("reply", exclude_if=lambda v: v == "reply")


class ResponseError(BaseModel):
    code: str
    message: str
    retryable: bool


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class GeminiResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    request_id: str
    chat_id: Id
    message_id: Id
    status: Literal["completed", "failed", "retrying", "cancelled"]
    content: str = ""
    error: ResponseError | None = None
    attempt: int = 0
    next_attempt_at: datetime | None = None
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = None
    key_id: str | None = None
    latency_ms: int | None = None
    model: str | None = None  # completed: the model that answered
    # The model's thought summaries, when the request asked for them (left out when empty).
    thoughts: str = Field("", exclude_if=lambda v: not v)
    kind: Literal["reply", "title"] = Field("reply", exclude_if=lambda v: v == "reply")
    # Older attachments left out of the request (Gemini's size limit); absent without any.
    attachments_omitted: int | None = Field(None, exclude_if=lambda v: v is None)

    @field_serializer("next_attempt_at")
    def _iso_utc(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
