"""The conversation a request carries: the chat's turns, oldest dropped first past a budget."""

from collections.abc import Sequence
from typing import Protocol

from app.core.queue_messages import Turn


class StoredTurn(Protocol):
    """What a message must say to be history: a Message, or the send path's lighter row."""

    role: str
    content: str
    status: str


def build_contents(messages: Sequence[StoredTurn], budget_chars: int) -> list[Turn]:
    """Turns for `messages` (oldest first). Replies that did not complete carry no answer worth
    sending. The newest turn is always kept, whatever its size."""
    turns = [
        Turn(
            role="user" if m.role == "user" else "model",
            text=m.content,
            attachments=getattr(m, "attachments", None) or [],
        )
        for m in messages
        if m.role == "user" or (m.status == "completed" and m.content)
    ]
    total = sum(len(turn.text) for turn in turns)
    start = 0
    while total > budget_chars and start < len(turns) - 1:
        total -= len(turns[start].text)
        start += 1
    turns = turns[start:]
    # Gemini expects a conversation to open with a user turn.
    while len(turns) > 1 and turns[0].role == "model":
        turns.pop(0)
    return turns
