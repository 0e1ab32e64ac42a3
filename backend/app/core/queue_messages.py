"""The queue messages of DESIGN.md: the request the backend publishes, the response it consumes."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

ResponseStatus = Literal["completed", "failed", "retrying", "cancelled"]


class AttachmentRef(BaseModel):
    """An attachment as a request carries it: the worker reads the bytes from PostgreSQL."""

    id: UUID
    mime_type: str
    size: int


class Turn(BaseModel):
    role: Literal["user", "model"]
    text: str
    # Left out of the JSON when empty: a turn without files is as it always was.
    attachments: list[AttachmentRef] = Field(default_factory=list, exclude_if=lambda v: not v)


class TitleSpec(BaseModel):
    """Asks the worker, once this reply completes, for a short title through the same queue and
    key pool (docs/CONTRACTS.md, "Rendering and settings")."""

    model_config = ConfigDict(extra="forbid")

    model: str
    system_instruction: str
    generation_config: dict[str, Any] = Field(default_factory=dict)


class GeminiRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    request_id: UUID
    chat_id: UUID
    message_id: UUID
    model: str
    system_instruction: str | None = None
    contents: list[Turn] = Field(min_length=1)
    generation_config: dict[str, Any] = Field(default_factory=dict)
    attempt: int = Field(0, ge=0)
    user_id: UUID | None = None  # the worker's key-pool line is fair per user
    # Only on a chat's first reply while its title is the default one; left out otherwise.
    title: TitleSpec | None = Field(None, exclude_if=lambda v: v is None)


class ResponseError(BaseModel):
    code: str | int
    message: str
    retryable: bool = False


class Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class GeminiResponse(BaseModel):
    # Unknown extra fields are tolerated so the worker can add some without breaking us.
    model_config = ConfigDict(extra="ignore")

    v: Literal[1]
    request_id: UUID
    chat_id: UUID
    message_id: UUID
    status: ResponseStatus
    content: str | None = None
    error: ResponseError | None = None
    attempt: int = Field(0, ge=0)
    next_attempt_at: datetime | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    key_id: str | None = None
    latency_ms: int | None = None
    # The model that answered: a fallback (GEMINI_FALLBACK_MODELS) may differ from the chat's.
    model: str | None = None
    # The model's thought summaries (only when the chat's settings ask for them).
    thoughts: str | None = None
    # "title": the answer to a TitleSpec; `content` is the title, no message changes.
    kind: Literal["reply", "title"] = "reply"
    # Older attachments the worker left out of the request (Gemini's request-size limit).
    attachments_omitted: int | None = None
