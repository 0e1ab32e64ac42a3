"""Request and response bodies of the REST API (DESIGN.md, "REST API")."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_TITLE_CHARS = 200
MAX_SYSTEM_PROMPT_CHARS = 20000


class Strict(BaseModel):
    # Reject unknown fields and strings where numbers belong: a typo gets a 422, not silence.
    model_config = ConfigDict(extra="forbid", strict=True)


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded at all.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
# JSON has no UUID type: a Strict body takes one as its string form.
JsonUUID = Annotated[UUID, Field(strict=False)]


MAX_EMAIL_CHARS = 320  # the column's length


def _email(value: str) -> str:
    value = value.strip().lower()
    local, _, domain = value.partition("@")
    if not local or not domain or "@" in domain or any(c.isspace() for c in value):
        raise ValueError("not a valid email address")
    # Checked again once lowercased: some letters grow ('İ' becomes two characters).
    if len(value) > MAX_EMAIL_CHARS:
        raise ValueError(f"must be at most {MAX_EMAIL_CHARS} characters")
    return value


# A light check on purpose: the address is a login name here, nothing is mailed to it.
Email = Annotated[
    str, Field(max_length=MAX_EMAIL_CHARS), AfterValidator(_storable), AfterValidator(_email)
]


class Credentials(Strict):
    email: Email
    password: Text = Field(min_length=8, max_length=256)


class LoginIn(Strict):
    email: Email
    password: Text = Field(min_length=1, max_length=256)


class PasswordChange(Strict):
    current_password: Text = Field(min_length=1, max_length=256)
    new_password: Text = Field(min_length=8, max_length=256)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    email: str
    is_admin: bool
    created_at: datetime


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    user: UserOut


class GenerationSettings(Strict):
    """Sent to Gemini as `generationConfig`; each model's ranges: app.services.generation."""

    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    thinking_budget: int | None = Field(None, description="2.5 models; -1 dynamic, 0 off")
    include_thoughts: bool | None = Field(None, description="stream the model's thoughts")
    stop_sequences: list[Text] | None = None


class ChatIn(Strict):
    title: Text | None = Field(None, max_length=MAX_TITLE_CHARS)
    model: Text | None = Field(None, max_length=100)
    system_prompt: Text | None = Field(None, max_length=MAX_SYSTEM_PROMPT_CHARS)
    settings: GenerationSettings | None = None


class ChatPatch(ChatIn):
    pass


class ChatOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    title: str
    model: str
    model_in_use: str = Field(
        description="the model new replies use: `model` while GEMINI_MODELS offers it, "
        "else the default (GEMINI_MODEL)"
    )
    system_prompt: str | None
    settings: GenerationSettings = Field(default_factory=GenerationSettings)
    created_at: datetime
    updated_at: datetime


class ChatPage(BaseModel):
    items: list[ChatOut]
    next: str | None


class MessageIn(Strict):
    content: Text
    role: Literal["user"] = "user"
    # Omitted: follow the chat's active leaf. Null: a new first question (an edit of it).
    parent_id: JsonUUID | None = None
    # Upload ids (POST /api/uploads), each attached once, by its owner.
    attachments: list[JsonUUID] = Field(default_factory=list, max_length=100)


class ActiveIn(Strict):
    message_id: JsonUUID


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    chat_id: UUID
    parent_id: UUID | None
    # The messages sharing this one's parent, oldest first, this one included.
    sibling_ids: list[UUID]
    role: Literal["user", "assistant"]
    content: str
    thoughts: str | None = None
    status: str
    error: str | None
    attempt: int
    next_attempt_at: datetime | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int | None = None
    created_at: datetime
    completed_at: datetime | None
    attachments: list["AttachmentOut"] = []
    # A reply: how many older attachments were left out of its request (Gemini's size limit).
    attachments_omitted: int | None = None


class SendOut(BaseModel):
    user_message: MessageOut
    assistant_message: MessageOut


KeyState = Literal["active", "cooling", "disabled"]


class KeyModelOut(BaseModel):
    """One key's use of one model against the limits (Google counts per key and model)."""

    model: str
    state: KeyState
    reason: str | None  # cooling: rpm, rpd, tpm, 429; disabled: the key's reason
    used_last_minute: int
    limit_per_minute: int | None
    used_today: int
    limit_per_day: int | None
    tokens_last_minute: int
    limit_tokens_per_minute: int | None
    cooldown_until: datetime | None
    cooldown_remaining_seconds: float
    requests_total: int


class KeyOut(BaseModel):
    id: str
    label: str
    # env: from the worker's GEMINI_API_KEYS; admin: added in the admin page.
    source: Literal["env", "admin"]
    state: KeyState
    # disabled: admin_disabled, key_invalid, api_not_enabled, region, billing, permission_denied
    reason: str | None
    used_last_minute: int
    cooldown_until: datetime | None
    failures: int
    requests_total: int
    last_error: str | None
    disabled_at: datetime | None
    recheck_at: datetime | None
    added_at: datetime | None
    models: list[KeyModelOut]


class KeyIn(Strict):
    key: Text = Field(min_length=1, max_length=300)
    label: Text | None = Field(None, max_length=100)


class KeyPatch(Strict):
    label: Text | None = Field(None, min_length=1, max_length=100)
    disabled: bool | None = None


class KeyErrorOut(BaseModel):
    at: datetime
    model: str | None
    code: str | None
    status: int | None
    message: str


class SeriesPoint(BaseModel):
    at: datetime
    calls: int
    rate_limited: int
    errors: int


class SeriesOut(BaseModel):
    window: Literal["hour", "day"]
    step_seconds: int
    points: list[SeriesPoint]


class ModelLimits(BaseModel):
    rpm: int | None
    rpd: int | None
    tpm: int | None


class ModelCapacity(BaseModel):
    per_minute: float
    waiting: int
    next_free_at: datetime | None
    updated_at: datetime | None


class PoolOut(BaseModel):
    """The pool as a whole: Google throttling the IP or project, limits, the workers' capacity."""

    throttled_until: datetime | None
    limits: dict[str, ModelLimits]
    capacity: dict[str, ModelCapacity]


class ModelRangesOut(BaseModel):
    temperature: list[float]
    top_p: list[float]
    max_output_tokens: list[int]
    thinking_budget: list[int] | None
    thinking_off: bool
    max_stop_sequences: int


class ModelsOut(BaseModel):
    default: str
    models: list[str]
    ranges: dict[str, ModelRangesOut] = Field(
        default_factory=dict, description="each model's generation-settings ranges"
    )


class ConfigOut(BaseModel):
    allow_registration: bool
    max_message_chars: int
    max_retries: int


class HealthOut(BaseModel):
    status: Literal["healthy", "unhealthy"]
    timestamp: datetime
    checks: dict[str, str]


class ErrorOut(BaseModel):
    detail: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InvalidOut(BaseModel):
    """A 422: a sentence from the API's own checks, or the list of fields that failed parsing."""

    detail: str | list[ValidationIssue]


# Documented on every route, so a client generated from /api/openapi.json reads every error.
ERROR_RESPONSES: dict[int | str, dict] = {
    401: {"model": ErrorOut, "description": "Not logged in"},
    403: {"model": ErrorOut, "description": "Not allowed"},
    404: {"model": ErrorOut, "description": "Not found"},
    409: {"model": ErrorOut, "description": "Conflicts with the current state"},
    422: {"model": InvalidOut, "description": "Invalid request"},
    429: {"model": ErrorOut, "description": "Too many requests; see Retry-After"},
    503: {"model": ErrorOut, "description": "Busy or a dependency is down; see Retry-After"},
}

# The same, for a route whose own answer is not JSON (the event stream): FastAPI would file a
# `model` under the route's media type, but these errors are sent as application/json.
JSON_ERROR_RESPONSES: dict[int | str, dict] = {
    status: {
        "description": answer["description"],
        "content": {
            "application/json": {
                "schema": {"$ref": f"#/components/schemas/{answer['model'].__name__}"}
            }
        },
    }
    for status, answer in ERROR_RESPONSES.items()
}


class UsageDayOut(BaseModel):
    date: str  # YYYY-MM-DD, a UTC day
    model: str
    messages: int
    prompt_tokens: int
    completion_tokens: int


class UsageTodayOut(BaseModel):
    messages: int
    tokens: int


class UsageLimitsOut(BaseModel):
    messages_per_day: int | None  # None: no limit
    tokens_per_day: int | None


class UsageOut(BaseModel):
    days: list[UsageDayOut]
    today: UsageTodayOut
    limits: UsageLimitsOut
    resets_at: datetime  # the next 00:00 UTC, when the daily counts start again


class AdminUsageDayOut(UsageDayOut):
    user_id: str | None = None  # group_by=user
    email: str | None = None
    key_id: str | None = None  # group_by=key


class AdminUsageOut(BaseModel):
    group_by: Literal["user", "model", "key"]
    days: list[AdminUsageDayOut]
    resets_at: datetime


class AttachmentOut(BaseModel):
    id: UUID
    name: str
    mime_type: str
    size: int


class UploadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    mime_type: str
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    pages: int | None = None


MessageOut.model_rebuild()
