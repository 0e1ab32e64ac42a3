"""Daily quotas (messages, tokens) held by two backend processes over one Redis and one
PostgreSQL, their reconciliation after Redis loses its count and after a restart, and the usage
reports (docs/CONTRACTS.md, "Quotas and usage")."""

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
import redis

from tests.support import REDIS_URL, Api, RunNames, Server, WorkerRole, register, wait_for

DAILY_MESSAGES = 12


def _seconds_to_utc_midnight() -> float:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return (midnight - now).total_seconds()


@pytest.fixture(scope="module")
def pair(run: RunNames, admin: Api, logs) -> Iterator[list[Server]]:
    """Two backend processes of the same run: every count must hold across both."""
    settings = run.env(
        USER_MESSAGES_PER_DAY=DAILY_MESSAGES,
        USER_TOKENS_PER_DAY=0,
        USER_MESSAGES_PER_MINUTE=100,
        SIGNUPS_PER_ADDRESS_PER_HOUR=0,
    )
    servers = [Server(settings, logs), Server(settings, logs)]
    try:
        yield [server.wait_ready() for server in servers]
    finally:
        for server in servers:
            server.stop()


def _set_limits(run: RunNames, user_id: str, messages: int | None, tokens: int | None) -> None:
    with psycopg.connect(run.database_url(), autocommit=True) as db:
        db.execute(
            "UPDATE users SET messages_per_day = %s, tokens_per_day = %s WHERE id = %s",
            (messages, tokens, user_id),
        )


def _ledger(run: RunNames, user_id: str) -> tuple[int, int]:
    with psycopg.connect(run.database_url()) as db:
        row = db.execute(
            "SELECT coalesce(sum(messages), 0), coalesce(sum(prompt_tokens + completion_tokens), 0)"
            " FROM usage_daily WHERE user_id = %s AND day = (now() AT TIME ZONE 'UTC')::date",
            (user_id,),
        ).fetchone()
    return int(row[0]), int(row[1])


def _on(server: Server, api: Api) -> Api:
    return Api(server.url, api.token)


def _post(api: Api, chat_id: str, content: str = "hello"):
    return api.post(f"/chats/{chat_id}/messages", json={"content": content, "role": "user"})


def _assert_daily_429(answer, limit_word: str) -> None:
    assert answer.status_code == 429, answer.text
    detail = answer.json()["detail"]
    assert f"daily {limit_word} limit reached" in detail
    assert "00:00 UTC" in detail
    retry_after = int(answer.headers["retry-after"])
    assert abs(retry_after - _seconds_to_utc_midnight()) < 15


def test_twenty_concurrent_sends_over_two_processes_accept_exactly_the_limit(
    pair: list[Server], run: RunNames
) -> None:
    limit = 7
    user = register(pair[0].url)
    _set_limits(run, user.user["id"], limit, None)
    clients = [_on(pair[i % 2], user) for i in range(20)]
    chats = [user.new_chat()["id"] for _ in range(20)]  # one open reply per chat

    def send(i: int):
        return _post(clients[i], chats[i], f"question {i}")

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(send, range(20)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] * limit + [429] * (20 - limit), [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 429):
        _assert_daily_429(refused, "message")
    # Both counts agree: Redis decided, PostgreSQL recorded exactly what was accepted.
    assert _ledger(run, user.user["id"])[0] == limit
    usage = user.get("/usage").json()
    assert usage["today"]["messages"] == limit
    assert usage["limits"] == {"messages_per_day": limit, "tokens_per_day": None}


def test_a_lost_redis_count_is_rebuilt_from_postgresql_and_survives_a_restart(
    pair: list[Server], run: RunNames, logs
) -> None:
    user = register(pair[0].url)
    _set_limits(run, user.user["id"], 3, None)
    first, second = _on(pair[0], user), _on(pair[1], user)
    assert _post(first, user.new_chat()["id"]).status_code == 202
    assert _post(second, user.new_chat()["id"]).status_code == 202
    # Redis loses the day's count: the next send rebuilds it from usage_daily (2 used).
    client = redis.Redis.from_url(REDIS_URL)
    day = datetime.now(UTC).date().isoformat()
    assert client.delete(f"{run.prefix}quota:{user.user['id']}:{day}") == 1
    client.close()
    assert _post(second, user.new_chat()["id"]).status_code == 202
    _assert_daily_429(_post(first, user.new_chat()["id"]), "message")
    # A backend started afresh knows no more than Redis and PostgreSQL: still spent.
    fresh = Server(
        run.env(USER_MESSAGES_PER_DAY=DAILY_MESSAGES, USER_MESSAGES_PER_MINUTE=100), logs
    )
    try:
        fresh.wait_ready()
        _assert_daily_429(_post(_on(fresh, user), user.new_chat()["id"]), "message")
    finally:
        fresh.stop()
    assert _ledger(run, user.user["id"])[0] == 3


def test_the_default_limit_applies_and_zero_means_none(pair: list[Server], run: RunNames) -> None:
    user = register(pair[0].url)
    assert user.get("/usage").json()["limits"]["messages_per_day"] == DAILY_MESSAGES
    _set_limits(run, user.user["id"], 0, 0)
    assert user.get("/usage").json()["limits"] == {"messages_per_day": None, "tokens_per_day": None}
    # No daily limit: more than the default goes through (the per-minute limit is 100 here).
    for _ in range(DAILY_MESSAGES + 1):
        assert _post(user, user.new_chat()["id"]).status_code == 202
    assert _ledger(run, user.user["id"])[0] == DAILY_MESSAGES + 1


def test_reply_tokens_count_once_and_spend_the_token_limit(
    pair: list[Server], run: RunNames, worker: WorkerRole
) -> None:
    user = register(pair[0].url)
    _set_limits(run, user.user["id"], None, 50)  # 33 tokens a reply (the worker role's usage)
    chat = user.new_chat()["id"]
    sent = user.send(chat, "first")["assistant_message"]
    request, _ = worker.take_request(sent["id"])
    response = worker.respond(request, "completed", "an answer", latency_ms=432)
    stored = user.wait_status(chat, sent["id"], "completed")
    assert (stored["prompt_tokens"], stored["completion_tokens"], stored["latency_ms"]) == (
        11,
        22,
        432,
    )
    # The same response again (a redelivery) changes nothing and counts nothing.
    worker.publish(json.dumps(response).encode(), message_id=request["request_id"])
    wait_for(worker.responses_settled, "the duplicate response to be consumed", timeout=30)
    assert _ledger(run, user.user["id"]) == (1, 33)
    assert user.get("/usage").json()["today"] == {"messages": 1, "tokens": 33}

    # The tokens reached Redis too: a second reply, then the third send is refused.
    sent = _post(_on(pair[1], user), chat, "second").json()["assistant_message"]
    request, _ = worker.take_request(sent["id"])
    worker.respond(request, "completed", "another answer")
    user.wait_status(chat, sent["id"], "completed")
    assert _ledger(run, user.user["id"]) == (2, 66)
    _assert_daily_429(_post(_on(pair[0], user), chat, "third"), "token")
    # A regenerate is a message too, and is refused alike.
    refused = user.post(f"/chats/{chat}/messages/{sent['id']}/retry")
    _assert_daily_429(refused, "token")


def test_own_usage_by_day_and_model(pair: list[Server], worker: WorkerRole) -> None:
    user = register(pair[0].url)
    chat = user.new_chat(model="gemini-2.5-pro")["id"]
    sent = user.send(chat, "what is a quota?")["assistant_message"]
    request, _ = worker.take_request(sent["id"])
    worker.respond(request, "completed", "a limit", key_id="0badc0de")
    user.wait_status(chat, sent["id"], "completed")
    usage = user.get("/usage", params={"days": 30}).json()
    today = datetime.now(UTC).date().isoformat()
    assert usage["days"] == [
        {
            "date": today,
            "model": "gemini-2.5-pro",
            "messages": 1,
            "prompt_tokens": 11,
            "completion_tokens": 22,
        }
    ]
    assert usage["today"] == {"messages": 1, "tokens": 33}
    assert datetime.fromisoformat(usage["resets_at"]).time() == datetime.min.time()
    for bad in ("0", "367", "many"):
        assert user.get("/usage", params={"days": bad}).status_code == 422


def test_admin_usage_grouped_by_user_model_and_key(
    pair: list[Server], admin: Api, worker: WorkerRole
) -> None:
    user = register(pair[0].url)
    chat = user.new_chat()["id"]
    sent = user.send(chat, "count me")["assistant_message"]
    request, _ = worker.take_request(sent["id"])
    worker.respond(request, "completed", "counted", key_id="feedf00d")
    user.wait_status(chat, sent["id"], "completed")

    by_user = admin.get("/admin/usage", params={"days": 30, "group_by": "user"}).json()
    mine = [row for row in by_user["days"] if row["user_id"] == user.user["id"]]
    assert [
        (r["email"], r["messages"], r["prompt_tokens"], r["completion_tokens"]) for r in mine
    ] == [(user.user["email"], 1, 11, 22)]
    by_key = admin.get("/admin/usage", params={"group_by": "key"}).json()["days"]
    assert {row["key_id"] for row in by_key} >= {"feedf00d"}
    assert "" not in {row["key_id"] for row in by_key}
    by_model = admin.get("/admin/usage", params={"group_by": "model"}).json()
    assert by_model["group_by"] == "model"
    assert all(row["user_id"] is None and row["key_id"] is None for row in by_model["days"])
    assert admin.get("/admin/usage", params={"group_by": "chat"}).status_code == 422


def test_admin_usage_refuses_others(pair: list[Server]) -> None:
    user = register(pair[0].url)
    assert user.get("/admin/usage").status_code == 403
    assert Api(pair[1].url).get("/admin/usage").status_code == 401
    assert Api(pair[1].url).get("/usage").status_code == 401


def test_set_limits_validates_and_limits_of_falls_back(
    run: RunNames, admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.core.config import get_settings
    from app.db.models import User
    from app.services import quotas
    from app.services.errors import Invalid

    for name, value in run.env(USER_MESSAGES_PER_DAY=40, USER_TOKENS_PER_DAY=9000).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    url = run.database_url().replace("postgresql://", "postgresql+psycopg://")

    async def check() -> None:
        from sqlalchemy.ext.asyncio import AsyncSession

        engine = create_async_engine(url)
        try:
            async with AsyncSession(engine) as db:
                user = await db.get(User, admin.user["id"])
                assert quotas.limits_of(user) == {"messages_per_day": 40, "tokens_per_day": 9000}
                await quotas.set_limits(db, user, {"messages_per_day": 5, "tokens_per_day": 0})
                assert quotas.limits_of(user) == {"messages_per_day": 5, "tokens_per_day": None}
                await quotas.set_limits(db, user, {"messages_per_day": None})
                assert quotas.limits_of(user)["messages_per_day"] == 40
                for bad in (
                    {"messages_per_day": -1},
                    {"tokens_per_day": "many"},
                    {"messages_per_day": True},
                    {"minutes": 3},
                    {"messages_per_day": 2**31},
                ):
                    with pytest.raises(Invalid):
                        await quotas.set_limits(db, user, bad)
                user_id = user.id
                await db.rollback()  # the admin keeps their limits
                used = await quotas.usage_today(db, [user_id])
                assert set(used[user_id]) == {"messages", "tokens"}
        finally:
            await engine.dispose()

    try:
        asyncio.run(check())
    finally:
        get_settings.cache_clear()


def test_the_daily_reset_is_the_next_utc_midnight() -> None:
    from app.services import quotas

    late = datetime(2026, 12, 3, 23, 59, 30, tzinfo=UTC)
    assert quotas.seconds_to_reset(late) == 30
    assert quotas.today(late).isoformat() == "2026-12-03"
    # A time given in another zone counts by its UTC day.
    moscow = datetime(2026, 12, 4, 1, 0, tzinfo=timezone(timedelta(hours=3)))
    assert quotas.today(moscow).isoformat() == "2026-12-03"
    assert quotas.seconds_to_reset(moscow) == 2 * 3600
