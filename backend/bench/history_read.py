"""The send path's history read on a long chat: what it reads of the database, and how fast.

    cd backend && .venv/bin/python -m bench.history_read [--messages 1000] [--chars 2000]

A throw-away database (migrated, dropped after) with one chat of `--messages` messages of
`--chars` characters each; runs the send's chat-and-history statement as the app does
(HISTORY_MAX_CHARS 60,000) and the statement it replaced, twice each, and prints the rows and
characters each returns and its time per read (wall time: noisy on a shared machine).
"""

import argparse
import time
import uuid

import psycopg
from psycopg.rows import namedtuple_row

from app.services.messages import _CHAT_AND_HISTORY, _NO_BOUND, HISTORY_MAX_MESSAGES
from tests.support import RunNames, migrated_run

BUDGET = 60_000
READS = 20
# The statement it replaced: the newest 1,000 messages whole, cut to the budget in Python.
BEFORE = """
    SELECT c.title, c.model, c.system_prompt, h.role, h.content, h.status
    FROM chats c
    LEFT JOIN LATERAL (
        SELECT m.role, m.content, m.status, m.seq FROM messages m
        WHERE m.chat_id = c.id ORDER BY m.seq DESC LIMIT %(limit)s
    ) h ON true
    WHERE c.id = %(chat_id)s AND c.user_id = %(user_id)s
    ORDER BY h.seq
"""


def _as_psycopg(sql: str) -> str:
    for name in ("chat_id", "user_id", "before", "budget", "limit"):
        sql = sql.replace(f":{name}", f"%({name})s")
    return sql


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--chars", type=int, default=2000)
    args = parser.parse_args()
    with (
        migrated_run(RunNames()) as names,
        psycopg.connect(names.database_url(), row_factory=namedtuple_row) as db,
    ):
        user, chat = uuid.uuid4(), uuid.uuid4()
        db.execute(
            "INSERT INTO users (id, email, password_hash, is_admin) VALUES (%s, %s, 'x', false)",
            (user, f"{user}@bench.invalid"),
        )
        db.execute(
            "INSERT INTO chats (id, user_id, title, model) VALUES (%s, %s, 't', 'gemini-2.5-flash')",
            (chat, user),
        )
        with db.cursor() as cur:
            cur.executemany(
                "INSERT INTO messages (id, chat_id, role, content, status, attempt)"
                " VALUES (%s, %s, %s, %s, 'completed', 0)",
                [
                    (uuid.uuid4(), chat, "user" if i % 2 == 0 else "assistant", "x" * args.chars)
                    for i in range(args.messages)
                ],
            )
        db.commit()
        db.execute("ANALYZE messages")
        params = {
            "chat_id": chat,
            "user_id": user,
            "before": _NO_BOUND,
            "budget": BUDGET,
            "limit": HISTORY_MAX_MESSAGES,
        }
        for label, sql in (("before", BEFORE), ("now", _as_psycopg(_CHAT_AND_HISTORY.text))) * 2:
            rows = db.execute(sql, params).fetchall()
            started = time.perf_counter()
            for _ in range(READS):
                db.execute(sql, params).fetchall()
            per_read_ms = (time.perf_counter() - started) / READS * 1000
            chars = sum(len(row.content or "") for row in rows)
            print(
                f"{label}: chat of {args.messages} x {args.chars} chars, the send reads "
                f"{len(rows)} rows, {chars} characters of content, {per_read_ms:.1f} ms per read"
            )


if __name__ == "__main__":
    main()
