"""Search over one user's chat titles and message texts (CONTRACTS.md, "Search, export, share").

Words go through PostgreSQL full-text search with the websearch syntax (quotes, `-`, `or`) and
the 'simple' configuration (no stemming, no stop words: chats mix languages and code). The whole
query is also looked for as a substring (pg_trgm's index answers `ILIKE`), so a part of a word
or a code identifier (`UserBy`, `foo.bar(`) is found too. Snippets and highlight offsets are
made here, as plain text: the client marks them up.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.errors import Invalid

SNIPPET_CHARS = 160
MAX_QUERY_CHARS = 200
# A substring shorter than a trigram cannot use the index and matches nearly everything.
MIN_SUBSTRING_CHARS = 3
# A title hit outranks a message hit of the same words.
TITLE_BONUS = 0.5
SUBSTRING_BONUS = 0.05

# websearch_to_tsquery of a bound value is folded into a constant when the statement is
# planned (each search is planned with its values), so the GIN indexes serve both branches.
_TSQ = "websearch_to_tsquery('simple', :q)"
_SQL = text(
    f"""
    WITH hits AS (
        SELECT m.chat_id, ch.title AS chat_title, m.id AS message_id, m.role, m.content,
               m.created_at,
               (ts_rank_cd(m.content_tsv, {_TSQ})
                + CASE WHEN :pattern <> '' AND m.content ILIKE :pattern
                       THEN :substring_bonus ELSE 0 END)::float8 AS rank
        FROM messages m
        JOIN chats ch ON ch.id = m.chat_id
        WHERE ch.user_id = :user_id
          AND ((numnode({_TSQ}) > 0 AND m.content_tsv @@ {_TSQ})
               OR (:pattern <> '' AND m.content ILIKE :pattern))
        UNION ALL
        SELECT ch.id, ch.title, NULL, NULL, ch.title, ch.created_at,
               (ts_rank_cd(to_tsvector('simple', ch.title), {_TSQ}) + :title_bonus
                + CASE WHEN :pattern <> '' AND ch.title ILIKE :pattern
                       THEN :substring_bonus ELSE 0 END)::float8
        FROM chats ch
        WHERE ch.user_id = :user_id
          AND ((numnode({_TSQ}) > 0 AND to_tsvector('simple', ch.title) @@ {_TSQ})
               OR (:pattern <> '' AND ch.title ILIKE :pattern))
    )
    SELECT * FROM hits
    WHERE CAST(:before_rank AS float8) IS NULL
       OR (rank, coalesce(message_id, chat_id)::text)
          < (CAST(:before_rank AS float8), CAST(:before_key AS text))
    ORDER BY rank DESC, coalesce(message_id, chat_id)::text DESC
    LIMIT :limit
    """
)


@dataclass
class Hit:
    chat_id: UUID
    chat_title: str
    message_id: UUID | None
    role: str | None
    snippet: str
    highlights: list[list[int]]
    created_at: datetime


def _encode_cursor(rank: float, key: str) -> str:
    raw = json.dumps([rank, key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        rank, key = json.loads(raw)
        if not isinstance(rank, int | float) or isinstance(rank, bool):
            raise ValueError("rank")
        return float(rank), str(UUID(key))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Invalid("before: not a cursor this API returned") from None


def _like_pattern(query: str) -> str:
    literal = query.strip().strip('"').strip()
    if len(literal) < MIN_SUBSTRING_CHARS:
        return ""
    escaped = literal.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_QUOTED = re.compile(r'"([^"]*)"?')
_WORD = re.compile(r"\w+")


def _terms(query: str) -> tuple[list[str], str]:
    """The words to mark (negated ones and `or` left out) and the literal substring."""
    words: list[str] = []
    for phrase in _QUOTED.findall(query):
        words += _WORD.findall(phrase)
    for token in _QUOTED.sub(" ", query).split():
        if token.startswith("-") or token.lower() == "or":
            continue
        words += _WORD.findall(token)
    literal = query.strip().strip('"').strip()
    return [w.lower() for w in words], literal if len(literal) >= MIN_SUBSTRING_CHARS else ""


def _spans(body: str, words: list[str], literal: str) -> list[tuple[int, int]]:
    spans = []
    wanted = set(words)
    for match in _WORD.finditer(body):
        if match.group().lower() in wanted:
            spans.append(match.span())
    if literal:
        folded, needle = body.lower(), literal.lower()
        start = folded.find(needle)
        while start != -1:
            spans.append((start, start + len(needle)))
            start = folded.find(needle, start + len(needle))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _utf16(value: str, index: int) -> int:
    # Offsets are in UTF-16 code units: what JavaScript's string indexes count.
    return len(value[:index].encode("utf-16-le")) // 2


def snippet(content: str, words: list[str], literal: str) -> tuple[str, list[list[int]]]:
    """A window of about SNIPPET_CHARS around the first match, whitespace collapsed."""
    body = " ".join(content.split())
    spans = _spans(body, words, literal)
    start = 0
    if spans and len(body) > SNIPPET_CHARS:
        first = spans[0][0]
        start = max(0, first - SNIPPET_CHARS // 3)
        if start:
            space = body.find(" ", start)
            start = space + 1 if 0 <= space < first else start
    end = min(len(body), start + SNIPPET_CHARS)
    if end < len(body):
        space = body.rfind(" ", start, end)
        end = space if space > start and (not spans or space > spans[0][1]) else end
    text_ = body[start:end]
    prefix = "…" if start else ""
    suffix = "…" if end < len(body) else ""
    shown = prefix + text_ + suffix
    highlights = []
    for span_start, span_end in spans:
        if span_start < start or span_end > end:
            continue
        a = len(prefix) + span_start - start
        b = len(prefix) + span_end - start
        highlights.append([_utf16(shown, a), _utf16(shown, b)])
    return shown, highlights


async def search(
    db: AsyncSession, user_id: UUID, query: str, limit: int, before: str | None
) -> tuple[list[Hit], str | None]:
    query = query.replace("\x00", " ")
    if not query.strip():
        return [], None
    before_rank, before_key = _decode_cursor(before) if before else (None, None)
    rows = (
        await db.execute(
            _SQL,
            {
                "q": query,
                "pattern": _like_pattern(query),
                "user_id": user_id,
                "limit": limit + 1,
                "before_rank": before_rank,
                "before_key": before_key,
                "title_bonus": TITLE_BONUS,
                "substring_bonus": SUBSTRING_BONUS,
            },
        )
    ).all()
    words, literal = _terms(query)
    hits = []
    for row in rows[:limit]:
        shown, highlights = snippet(row.content, words, literal)
        hits.append(
            Hit(
                chat_id=row.chat_id,
                chat_title=row.chat_title,
                message_id=row.message_id,
                role=row.role,
                snippet=shown,
                highlights=highlights,
                created_at=row.created_at,
            )
        )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = _encode_cursor(last.rank, str(last.message_id or last.chat_id))
    return hits, next_cursor
