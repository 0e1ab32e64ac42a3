#!/usr/bin/env python3
"""`make bench-search`: GET /api/search's query against 1,000,000 messages over 1,000 users.

    backend/.venv/bin/python bench/search.py [--users 1000] [--messages 1000000] [--queries 600]
        [--keep] [--out bench/results/search.json]

In a database of its own (dropped afterwards unless --keep): migrate, fill with
generate_series (10 chats a user, text drawn from a fixed vocabulary of made-up words, so some
words are in a third of all messages and some in a handful), build the search indexes, ANALYZE,
then time app.services.search.search (the SQL plus the snippets) for random users and a mix of
queries. Prints p50/p99 per kind and overall, the indexes' sizes and build times, an EXPLAIN
ANALYZE of a common word and of a substring, which indexes the plans of the timed queries used,
then (after those figures, so they are of the 1,000-user data set) the same mix for one heavy
account of --heavy-messages messages added last, and what the indexes add to one completed
reply (the UPDATE that stores its text, with and without them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine  # noqa: E402

from app.services import search as search_service  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SYLLABLES = [
    "ka", "mo", "ru", "ti", "le", "sa", "no", "ve", "pi", "da",
    "xu", "bo", "ne", "ha", "ji", "lo", "we", "zi", "fu", "ge",
]  # fmt: skip
VOCABULARY = 8000  # words: SYLLABLES^3, 'kamoru' ...
SENTENCES = 20000
SENTENCE_WORDS = 12


def word(index: int) -> str:
    return SYLLABLES[index % 20] + SYLLABLES[(index // 20) % 20] + SYLLABLES[(index // 400) % 20]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def fill(url: str, users: int, messages: int) -> dict[str, float]:
    chats_per_user = 10
    per_chat = max(1, messages // (users * chats_per_user))
    words = "ARRAY[" + ",".join(f"'{word(i)}'" for i in range(VOCABULARY)) + "]"
    timings = {}
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SET maintenance_work_mem = '512MB'")
        db.execute("DROP INDEX ix_messages_content_fts")
        db.execute("DROP INDEX ix_messages_content_trgm")
        started = time.monotonic()
        # Tables joined by id, not arrays subscripted: a text array is walked from its start.
        db.execute(
            f"CREATE TEMP TABLE words AS SELECT id::int, w FROM unnest({words}) "
            "WITH ORDINALITY AS t(w, id)"
        )
        db.execute("CREATE UNIQUE INDEX ON words (id)")
        # Zipf-like: power(random(), 3) puts most picks on the first words of the vocabulary.
        db.execute(
            "CREATE TEMP TABLE sentences AS SELECT p.s AS id, string_agg(words.w, ' ') AS text "
            "FROM (SELECT s, 1 + floor(power(random(), 3) * %s)::int AS pick "
            "      FROM generate_series(1, %s) s, generate_series(1, %s) k) p "
            "JOIN words ON words.id = p.pick GROUP BY p.s",
            (VOCABULARY, SENTENCES, SENTENCE_WORDS),
        )
        db.execute("CREATE UNIQUE INDEX ON sentences (id)")
        db.execute(
            "INSERT INTO users (id, email, password_hash, is_admin) "
            "SELECT gen_random_uuid(), 'bench' || n || '@example.com', 'x', false "
            "FROM generate_series(1, %s) n",
            (users,),
        )
        db.execute(
            "INSERT INTO chats (id, user_id, title, model, created_at, updated_at) "
            "SELECT gen_random_uuid(), r.user_id, 'Chat ' || r.n || ' about ' || words.w, "
            "'gemini-2.5-flash', now(), now() "
            "FROM (SELECT u.id AS user_id, n, 1 + floor(random() * %s)::int AS pick "
            "      FROM users u, generate_series(1, %s) n) r JOIN words ON words.id = r.pick",
            (VOCABULARY, chats_per_user),
        )
        # Three random sentences a message; every 50th also holds a code identifier, for the
        # substring queries.
        db.execute(
            "INSERT INTO messages (id, chat_id, role, content, status, attempt, created_at) "
            "SELECT gen_random_uuid(), r.chat_id, "
            "CASE WHEN r.n %% 2 = 1 THEN 'user' ELSE 'assistant' END, "
            "s1.text || '. ' || s2.text || '. ' || s3.text "
            "|| CASE WHEN r.n %% 50 = 0 THEN ' call fetchUserProfile' || (r.n %% 997) || '(id)' "
            "ELSE '' END, 'completed', 0, now() - make_interval(mins => r.n) "
            "FROM (SELECT c.id AS chat_id, n, "
            "      1 + floor(random() * %(s)s)::int AS a, 1 + floor(random() * %(s)s)::int AS b, "
            "      1 + floor(random() * %(s)s)::int AS c "
            "      FROM chats c, generate_series(1, %(per_chat)s) n) r "
            "JOIN sentences s1 ON s1.id = r.a JOIN sentences s2 ON s2.id = r.b "
            "JOIN sentences s3 ON s3.id = r.c ORDER BY r.chat_id, r.n",
            {"s": SENTENCES, "per_chat": per_chat},
        )
        timings["fill_seconds"] = time.monotonic() - started
        for name, ddl in [
            ("ix_messages_content_fts", "USING gin (content_tsv)"),
            ("ix_messages_content_trgm", "USING gin (content gin_trgm_ops)"),
        ]:
            started = time.monotonic()
            db.execute(f"CREATE INDEX {name} ON messages {ddl}")
            timings[f"{name}_build_seconds"] = time.monotonic() - started
        db.execute("VACUUM ANALYZE messages")
        db.execute("ANALYZE chats")
    return timings


def sizes(url: str) -> dict[str, str]:
    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)) FROM pg_class c "
            "WHERE c.relname IN ('messages', 'ix_messages_content_fts', "
            "'ix_messages_content_trgm', 'ix_messages_chat_seq')"
        ).fetchall()
        count = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    return {"messages_rows": count, **dict(rows)}


def queries(rng: random.Random) -> list[tuple[str, str]]:
    common = [word(i) for i in range(5)]
    middle = [word(i) for i in range(200, 400)]
    rare = [word(i) for i in range(6000, 8000)]
    made = []
    for _ in range(100):
        made += [
            ("common word", rng.choice(common)),
            ("rare word", rng.choice(rare)),
            ("two words", f"{rng.choice(middle)} {rng.choice(middle)}"),
            ("phrase", f'"{rng.choice(common)} {rng.choice(common)}"'),
            ("negation", f"{rng.choice(middle)} -{rng.choice(common)}"),
            ("substring", rng.choice(middle)[1:5]),
            ("identifier", f"UserProfile{rng.randrange(997)}"),
        ]
    rng.shuffle(made)
    return made


async def time_searches(
    url: str, total: int, rng: random.Random, user_ids: list[uuid.UUID] | None = None
) -> dict:
    engine = create_async_engine(url.replace("postgresql://", "postgresql+psycopg://"), pool_size=2)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    if user_ids is None:
        with psycopg.connect(url) as db:
            user_ids = [row[0] for row in db.execute("SELECT id FROM users")]
    plan = queries(rng)[:total]
    by_kind: dict[str, list[float]] = {}
    hits: dict[str, list[int]] = {}
    async with sessions() as session:
        for _, q in plan[:30]:  # warm the cache and the connection
            await search_service.search(session, rng.choice(user_ids), q, 20, None)
            await session.rollback()
        for kind, q in plan:
            user = rng.choice(user_ids)
            started = time.perf_counter()
            found, _ = await search_service.search(session, user, q, 20, None)
            await session.rollback()
            by_kind.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
            hits.setdefault(kind, []).append(len(found))
    await engine.dispose()
    every = [ms for values in by_kind.values() for ms in values]
    result = {
        kind: {
            "n": len(values),
            "p50_ms": round(pct(values, 50), 2),
            "p99_ms": round(pct(values, 99), 2),
            "mean_hits": round(sum(hits[kind]) / len(hits[kind]), 1),
        }
        for kind, values in sorted(by_kind.items())
    }
    result["all"] = {
        "n": len(every),
        "p50_ms": round(pct(every, 50), 2),
        "p99_ms": round(pct(every, 99), 2),
    }
    return result


def _params(q: str, user_id: uuid.UUID) -> dict:
    return {
        "q": q,
        "pattern": search_service._like_pattern(q),
        "user_id": user_id,
        "limit": 21,
        "before_rank": None,
        "before_key": None,
        "title_bonus": search_service.TITLE_BONUS,
        "substring_bonus": search_service.SUBSTRING_BONUS,
    }


# SQLAlchemy's :name to psycopg's %(name)s.
_PSYCOPG_SQL = re.sub(r"(?<!:):(\w+)", r"%(\1)s", str(search_service._SQL).replace("%", "%%"))


def explain(url: str, q: str) -> str:
    with psycopg.connect(url) as db:
        user_id = db.execute("SELECT id FROM users ORDER BY email LIMIT 1").fetchone()[0]
        rows = db.execute(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + _PSYCOPG_SQL, _params(q, user_id)
        )
        return "\n".join(row[0] for row in rows)


def _indexes(node: dict) -> set[str]:
    found = {node["Index Name"]} if "Index Name" in node else set()
    for child in node.get("Plans", []):
        found |= _indexes(child)
    return found


def plan_census(url: str, total: int, rng: random.Random) -> dict[str, int]:
    """How many of the mix's plans used which set of indexes (a plan that switches to the GIN
    indexes, or to JIT, shows up here and not in a single EXPLAIN)."""
    census: dict[str, int] = {}
    with psycopg.connect(url) as db:
        user_ids = [row[0] for row in db.execute("SELECT id FROM users")]
        for _, q in queries(rng)[:total]:
            (plan,) = db.execute(
                "EXPLAIN (FORMAT JSON) " + _PSYCOPG_SQL, _params(q, rng.choice(user_ids))
            ).fetchone()[0]
            key = " + ".join(sorted(_indexes(plan["Plan"])))
            census[key] = census.get(key, 0) + 1
    return census


def add_heavy_account(url: str, messages: int) -> uuid.UUID:
    """One more user, 10 chats, `messages` messages copied from the others' (the same text
    mix), then ANALYZE: a large account among the 1,000 ordinary ones."""
    user_id = uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "INSERT INTO users (id, email, password_hash, is_admin) "
            "VALUES (%s, 'heavy@example.com', 'x', false)",
            (user_id,),
        )
        db.execute(
            "INSERT INTO chats (id, user_id, title, model, created_at, updated_at) "
            "SELECT gen_random_uuid(), %s, 'Heavy chat ' || n, 'gemini-2.5-flash', now(), now() "
            "FROM generate_series(0, 9) n",
            (user_id,),
        )
        db.execute(
            "INSERT INTO messages (id, chat_id, role, content, status, attempt, created_at) "
            "SELECT gen_random_uuid(), c.id, m.role, m.content, 'completed', 0, m.created_at "
            "FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM chats "
            "      WHERE user_id = %s) c "
            "JOIN (SELECT role, content, created_at, row_number() OVER () AS r "
            "      FROM (SELECT * FROM messages LIMIT %s) x) m ON m.r %% 10 = c.k",
            (user_id, messages),
        )
        db.execute("ANALYZE messages")
        db.execute("ANALYZE chats")
    return user_id


PROBES = {
    "none (as before 0003)": "",
    "column only, no index": "",
    "column and full-text index": "CREATE INDEX ON {t} USING gin (content_tsv)",
    "column, full-text and trigram indexes (0003)": "CREATE INDEX ON {t} USING gin (content_tsv); "
    "CREATE INDEX ON {t} USING gin (content gin_trgm_ops)",
}


def reply_cost(url: str, rounds: int, seed_rows: int = 200_000) -> dict:
    """The completion UPDATE of a reply (~1,400 characters), each its own transaction, in four
    copies of `messages` (seed_rows rows each) that differ only in what 0003 adds; the copies
    take turns, so the machine's noise falls on all of them alike. Median and p99, in ms."""
    text = " ".join(word(random.randrange(VOCABULARY)) for _ in range(200))
    tables = {}
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SET maintenance_work_mem = '512MB'")
        for index, (label, ddl) in enumerate(PROBES.items()):
            table = f"probe_{index}"
            column = (
                ""
                if index == 0
                else (
                    ", content_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED"
                )
            )
            db.execute(
                f"CREATE TABLE {table} (id uuid PRIMARY KEY, content text, "
                f"status varchar(16), completed_at timestamptz{column})"
            )
            db.execute(
                f"INSERT INTO {table} (id, content, status) SELECT id, content, status "
                f"FROM messages LIMIT {seed_rows}"
            )
            for statement in filter(None, ddl.format(t=table).split("; ")):
                db.execute(statement)
            db.execute(f"VACUUM ANALYZE {table}")
            ids = [uuid.uuid4() for _ in range(rounds)]
            with db.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {table} (id, content, status) VALUES (%s, '', 'pending')",
                    [(i,) for i in ids],
                )
            tables[label] = (table, ids)
        timings: dict[str, list[float]] = {label: [] for label in tables}
        for round_ in range(rounds):
            for label, (table, ids) in tables.items():
                started = time.perf_counter()
                db.execute(
                    f"UPDATE {table} SET content = %s, status = 'completed', "
                    "completed_at = now() WHERE id = %s",
                    (text, ids[round_]),
                )
                timings[label].append((time.perf_counter() - started) * 1000)
        for table, _ in tables.values():
            db.execute(f"DROP TABLE {table}")
    return {
        "reply_chars": len(text),
        "rounds": rounds,
        **{
            label: {
                "p50_ms": round(pct(v, 50), 3),
                "p99_ms": round(pct(v, 99), 3),
                "mean_ms": round(sum(v) / len(v), 3),
            }
            for label, v in timings.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=600)
    parser.add_argument("--heavy-messages", type=int, default=50_000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "search.json"))
    args = parser.parse_args()

    name = f"bench_search_{secrets.token_hex(4)}"
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(ADMIN_URL, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-search-secret-0123"}
        subprocess.run(
            [str(Path(sys.executable).parent / "alembic"), "upgrade", "head"],
            cwd=ROOT / "backend",
            env=env,
            check=True,
            capture_output=True,
        )
        print(f"filling {name}: {args.messages:,} messages over {args.users:,} users ...")
        result: dict = {"fill": fill(url, args.users, args.messages), "sizes": sizes(url)}
        print(json.dumps(result, indent=2))
        rng = random.Random(14)
        result["search"] = asyncio.run(time_searches(url, args.queries, rng))
        print(json.dumps(result["search"], indent=2))
        result["explain_common_word"] = explain(url, word(0))
        result["explain_substring"] = explain(url, word(250)[1:5])
        print(result["explain_common_word"], "\n", result["explain_substring"], sep="\n")
        result["plans"] = plan_census(url, args.queries, random.Random(14))
        print(json.dumps(result["plans"], indent=2))
        if args.heavy_messages:
            heavy = add_heavy_account(url, args.heavy_messages)
            result["heavy_account"] = {
                "messages": args.heavy_messages,
                **asyncio.run(time_searches(url, 140, random.Random(15), [heavy])),
            }
            print(json.dumps(result["heavy_account"], indent=2))
        result["reply_cost"] = reply_cost(url, 2000)
        print(json.dumps(result["reply_cost"], indent=2))
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"written to {args.out}")
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN_URL, autocommit=True) as db:
                db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
