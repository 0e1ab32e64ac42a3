"""The queue messages of DESIGN.md: the request the backend publishes, the response it consumes."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

ResponseStatus = Literal["completed", "failed", "retrying", "cancelled"]


class Turn(BaseModel):
    role: Literal["user", "model"]
    text: str


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
