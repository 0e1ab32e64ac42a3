"""Bodies of search, export and import, and share links (CONTRACTS.md, "Search, export, share")."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field


class SearchItem(BaseModel):
    chat_id: UUID
    chat_title: str
    message_id: UUID | None = Field(description="null when the chat's title matched")
    role: Literal["user", "assistant"] | None
    snippet: str = Field(description="plain text, whitespace collapsed, `…` where cut")
    highlights: list[list[int]] = Field(
        description="[start, end) offsets into `snippet`, in UTF-16 code units"
    )
    created_at: datetime


class SearchPage(BaseModel):
    items: list[SearchItem]
    next: str | None


class ImportedChat(BaseModel):
    id: UUID
    title: str


class ImportOut(BaseModel):
    imported: int
    chats: list[ImportedChat]


class ShareCreated(BaseModel):
    id: UUID
    token: str = Field(description="shown once: only its hash is stored")
    url: str
    shared_at: datetime
    message_count: int


class ShareOut(BaseModel):
    id: UUID
    title: str
    shared_at: datetime
    message_count: int


class SharedMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    created_at: datetime


class SharedChatOut(BaseModel):
    title: str
    messages: list[SharedMessage]
    shared_at: datetime
