"""Generated chat titles: asked for with a chat's first reply, applied only while nobody has
named the chat (docs/CONTRACTS.md, "Rendering and settings")."""

import logging
from typing import Any

from sqlalchemy import text

from app.api.schemas import MAX_TITLE_CHARS
from app.core.container import Container
from app.core.queue_messages import GeminiResponse, TitleSpec
from app.services import generation

log = logging.getLogger(__name__)

TITLE_CHARS = 60
# The stand-in recognises a title request by this instruction (gemini-client/standin).
TITLE_INSTRUCTION = (
    "You name conversations. Reply with a title of at most six words for the conversation "
    "below: no quotes, no final full stop, nothing else."
)


def spec(c: Container) -> TitleSpec:
    model = c.settings.TITLE_MODEL
    r = generation.ranges_for(model)
    config: dict[str, Any] = {"temperature": 0.2, "max_output_tokens": 64}
    if r.thinking_budget is not None:
        # A title needs no thinking: off where the model allows it, else its smallest budget.
        config["thinking_config"] = {
            "thinking_budget": 0 if r.thinking_off else r.thinking_budget[0]
        }
    return TitleSpec(model=model, system_instruction=TITLE_INSTRUCTION, generation_config=config)


def clean(raw: str) -> str:
    """One line, without the quotes and trailing full stop models like to add."""
    line = next((part for part in raw.splitlines() if part.strip()), "")
    line = " ".join(line.split()).strip("\"'`*# ").removeprefix("Title:").strip()
    line = line.rstrip(".").strip()
    if len(line) > TITLE_CHARS:
        line = line[:TITLE_CHARS].rsplit(" ", 1)[0] or line[:TITLE_CHARS]
    return line[:MAX_TITLE_CHARS]


# The hand wins: a rename (or a title given at creation) clears title_auto first.
_APPLY = text(
    """
    UPDATE chats SET title = :title, title_auto = false
    WHERE id = :chat_id AND title_auto
    RETURNING id, title
    """
)


async def apply(c: Container, response: GeminiResponse) -> list[tuple[str, dict[str, Any]]]:
    """Stores a generated title; the event to announce it (none when it does not apply)."""
    if response.status != "completed" or not response.content:
        log.info("no title for chat %s (%s)", response.chat_id, response.status)
        return []
    title = clean(response.content)
    if not title:
        return []
    async with c.autocommit.connect() as conn:
        row = (await conn.execute(_APPLY, {"title": title, "chat_id": response.chat_id})).first()
    if row is None:
        return []
    return [("chat.title", {"chat_id": str(row.id), "title": row.title})]
