"""Key pool v2, the backend's side (docs/CONTRACTS.md, "Key pool v2"): keys added, labelled,
disabled, enabled and removed live by an admin; the key text stored only encrypted and never
shown; what the workers write read back per key and model; and admission control at the send.
Google is the offline stand-in over real HTTP; the worker's Redis keys are written as it would."""

import base64
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.core.keycrypt import key_id
from tests.support import (
    REDIS_URL,
    Api,
    RunNames,
    Server,
    WorkerRole,
    child_env,
    migrated_run,
    register,
    wait_for,
)
from tests.tcpproxy import free_port

GEMINI_CLIENT = Path(__file__).resolve().parents[2] / "gemini-client"
GOOD_KEY = "AIzaSyGOODgood-0123456789abcdefghijklm"
BAD_KEY = "AIzaSyBADbad-0123456789abcdefghijklmno"
DENIED_KEY = "AIzaSyDENIEDdenied-0123456789abcdefgh"
MAX_QUEUE_WAIT_SECONDS = 30


@dataclass
class KeyStack:
    server: Server
    names: RunNames
    admin: Api
    redis: redis.Redis
    standin_url: str

    @property
    def p(self) -> str:
        return self.names.prefix

    def all_redis_text(self) -> str:
        """Every key and value under this run's prefix, as one text."""
        parts = []
        for name in self.redis.scan_iter(match=self.p + "*", count=1000):
            kind = self.redis.type(name)
            parts.append(name)
            if kind == "string":
                parts.append(str(self.redis.get(name)))
            elif kind == "hash":
                parts.append(json.dumps(self.redis.hgetall(name)))
            elif kind == "set":
                parts.append(json.dumps(sorted(self.redis.smembers(name))))
            elif kind == "list":
                parts.append(json.dumps(self.redis.lrange(name, 0, -1)))
            elif kind == "zset":
                parts.append(json.dumps(self.redis.zrange(name, 0, -1)))
            elif kind == "stream":
                parts.append(json.dumps(self.redis.xrange(name)))
        return "\n".join(parts)

    def database_text(self) -> str:
        with psycopg.connect(self.names.database_url()) as db:
            rows = db.execute("SELECT * FROM gemini_keys").fetchall()
        return json.dumps([list(map(str, row)) for row in rows])


@pytest.fixture(scope="module")
def stack(run: RunNames, logs) -> Iterator[KeyStack]:
    port = free_port()
    standin_log = (logs / f"standin-{port}.log").open("w")
    standin = subprocess.Popen(
        [str(GEMINI_CLIENT / ".venv/bin/python"), "-m", "standin", "--port", str(port)],
        cwd=GEMINI_CLIENT,
        env=child_env({"STANDIN_INVALID_KEYS": BAD_KEY, "STANDIN_DENIED_KEYS": DENIED_KEY}),
        stdout=standin_log,
        stderr=subprocess.STDOUT,
    )
    standin_url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(standin_url, timeout=2).status_code == 200, "the stand-in", 30)
    with migrated_run(RunNames(tag=run.tag + "k")) as names:
        worker = WorkerRole(names)
        server = Server(
            names.env(
                GEMINI_BASE_URL=standin_url,
                MAX_QUEUE_WAIT_SECONDS=MAX_QUEUE_WAIT_SECONDS,
                USER_MESSAGES_PER_MINUTE=0,
            ),
            logs,
        )
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            server.wait_ready()
            yield KeyStack(server, names, register(server.url), client, standin_url)
        finally:
            server.stop()
            standin.terminate()
            standin.wait(10)
            standin_log.close()
            client.close()
            with contextlib.suppress(Exception):
                worker.delete_queues()
            worker.close()


def _fernet(secret: str) -> Fernet:
    derived = HKDF(
        algorithm=SHA256(), length=32, salt=None, info=b"gemini-chat/key-pool/v1"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _version(stack: KeyStack) -> int:
    return int(stack.redis.get(stack.p + "keys:registry:version") or 0)


def _keys(stack: KeyStack) -> dict[str, dict]:
    answer = stack.admin.get("/admin/keys")
    assert answer.status_code == 200, answer.text
    return {k["id"]: k for k in answer.json()}


def test_an_added_key_joins_the_pool_stored_only_encrypted(stack: KeyStack) -> None:
    before = _version(stack)
    answer = stack.admin.post("/admin/keys", json={"key": GOOD_KEY, "label": "team A"})
    assert answer.status_code == 201, answer.text
    kid = key_id(GOOD_KEY)
    body = answer.json()
    assert (body["id"], body["label"], body["source"], body["state"]) == (
        kid,
        "team A",
        "admin",
        "active",
    )
    assert GOOD_KEY not in answer.text
    assert _version(stack) > before

    # The workers' copy: a Fernet token they decrypt with the key derived from SECRET_KEY.
    entry = json.loads(stack.redis.hget(stack.p + "keys:registry", kid))
    assert set(entry) == {"token", "label", "added_at"}
    secret = stack.names.env()["SECRET_KEY"]
    assert _fernet(secret).decrypt(entry["token"].encode()).decode() == GOOD_KEY
    assert stack.redis.hget(stack.p + "keys:index", kid) == "team A"

    # At rest: PostgreSQL and Redis hold the ciphertext only; the key is in no answer or log.
    assert GOOD_KEY not in stack.database_text()
    assert kid in stack.database_text()
    assert GOOD_KEY not in stack.all_redis_text()
    assert GOOD_KEY not in stack.admin.get("/admin/keys").text
    assert GOOD_KEY not in stack.server.log_path.read_text()
    assert kid in _keys(stack)


def test_a_duplicate_key_is_refused_with_409(stack: KeyStack) -> None:
    stack.admin.post("/admin/keys", json={"key": GOOD_KEY})
    again = stack.admin.post("/admin/keys", json={"key": GOOD_KEY})
    assert again.status_code == 409
    assert GOOD_KEY not in again.text
    # A key the worker has from GEMINI_API_KEYS is a duplicate too.
    env_key = "AIzaSyENVenv-0123456789abcdefghijklmnopq"
    stack.redis.hset(stack.p + "keys:index", key_id(env_key), "…mnopq")
    assert stack.admin.post("/admin/keys", json={"key": env_key}).status_code == 409


def test_a_key_google_rejects_is_refused_with_its_reason_and_never_echoed(
    stack: KeyStack,
) -> None:
    invalid = stack.admin.post("/admin/keys", json={"key": BAD_KEY})
    assert invalid.status_code == 422, invalid.text
    assert "not valid" in invalid.json()["detail"]
    assert BAD_KEY not in invalid.text
    # Google's 403 quotes the key itself: the answer must not.
    denied = stack.admin.post("/admin/keys", json={"key": DENIED_KEY})
    assert denied.status_code == 422, denied.text
    assert "denied" in denied.json()["detail"]
    assert DENIED_KEY not in denied.text
    assert key_id(BAD_KEY) not in _keys(stack)
    assert key_id(DENIED_KEY) not in _keys(stack)
    assert BAD_KEY not in stack.server.log_path.read_text()
    assert DENIED_KEY not in stack.server.log_path.read_text()
    # Not even one key, or not a key at all: a clear 422, not a 500.
    assert stack.admin.post("/admin/keys", json={"key": "two keys"}).status_code == 422
    assert stack.admin.post("/admin/keys", json={"key": "ключ-0123456789"}).status_code == 422
    assert stack.admin.post("/admin/keys", json={}).status_code == 422


def test_label_disable_enable_and_remove_reach_the_workers_live(stack: KeyStack) -> None:
    key = "AIzaSyLIVElive-0123456789abcdefghijklmn"
    kid = stack.admin.post("/admin/keys", json={"key": key}).json()["id"]
    version = _version(stack)

    labelled = stack.admin.patch(f"/admin/keys/{kid}", json={"label": "night shift"})
    assert labelled.status_code == 200, labelled.text
    assert labelled.json()["label"] == "night shift"
    entry = json.loads(stack.redis.hget(stack.p + "keys:registry", kid))
    assert entry["label"] == "night shift"

    disabled = stack.admin.patch(f"/admin/keys/{kid}", json={"disabled": True})
    assert (disabled.json()["state"], disabled.json()["reason"]) == ("disabled", "admin_disabled")
    assert stack.redis.hget(stack.p + f"keys:{kid}", "admin_disabled") == "1"
    enabled = stack.admin.patch(f"/admin/keys/{kid}", json={"disabled": False})
    assert enabled.json()["state"] == "active"
    assert stack.redis.hget(stack.p + f"keys:{kid}", "admin_disabled") == "0"
    assert _version(stack) >= version + 3

    removed = stack.admin.delete(f"/admin/keys/{kid}")
    assert removed.status_code == 204
    assert stack.redis.sismember(stack.p + "keys:removed", kid)
    assert not stack.redis.hexists(stack.p + "keys:registry", kid)
    assert kid not in _keys(stack)
    assert kid not in stack.database_text()
    assert stack.admin.patch(f"/admin/keys/{kid}", json={"disabled": True}).status_code == 404
    assert stack.admin.delete(f"/admin/keys/{kid}").status_code == 404

    # Added again, it is back in the pool.
    assert stack.admin.post("/admin/keys", json={"key": key}).status_code == 201
    assert not stack.redis.sismember(stack.p + "keys:removed", kid)


def test_env_keys_can_be_disabled_and_removed_too(stack: KeyStack) -> None:
    kid = "e0e0e0e0"
    stack.redis.hset(stack.p + "keys:index", kid, "…wxyz")
    assert _keys(stack)[kid]["source"] == "env"
    paused = stack.admin.patch(f"/admin/keys/{kid}", json={"disabled": True})
    assert paused.status_code == 200, paused.text
    assert stack.redis.hget(stack.p + f"keys:{kid}", "admin_disabled") == "1"
    assert stack.admin.delete(f"/admin/keys/{kid}").status_code == 204
    assert stack.redis.sismember(stack.p + "keys:removed", kid)
    # A worker writing its env keys into the index again does not bring it back to the page.
    stack.redis.hset(stack.p + "keys:index", kid, "…wxyz")
    assert kid not in _keys(stack)


def test_the_registry_is_written_back_when_redis_lost_it(stack: KeyStack) -> None:
    key = "AIzaSyBACKback-0123456789abcdefghijklmn"
    kid = stack.admin.post("/admin/keys", json={"key": key}).json()["id"]
    stack.redis.delete(
        stack.p + "keys:registry", stack.p + "keys:registry:version", stack.p + "keys:index"
    )
    wait_for(
        lambda: stack.redis.hexists(stack.p + "keys:registry", kid),
        "the backend to write its keys back to Redis",
        timeout=25,
    )
    assert _version(stack) >= 1
    assert kid in _keys(stack)


def test_per_model_use_limits_cooldowns_errors_and_series(stack: KeyStack) -> None:
    r, p = stack.redis, stack.p
    kid = "a1a1a1a1"
    now = time.time()
    now_ms = int(now * 1000)
    r.hset(p + "keys:index", kid, "…1111")
    r.hset(p + "keys:limits", "gemini-2.5-pro", json.dumps({"rpm": 5, "rpd": 100, "tpm": None}))
    r.hset(p + "keys:limits", "_default", json.dumps({"rpm": 10, "rpd": None, "tpm": None}))
    r.hset(
        p + f"keys:{kid}:m:gemini-2.5-pro",
        mapping={"cooldown_until": now + 30, "cooldown_reason": "rpd", "requests_total": 9},
    )
    r.zadd(p + f"keys:{kid}:m:gemini-2.5-flash:window", {"a": now_ms - 500, "b": now_ms - 70_000})
    r.zadd(p + f"keys:{kid}:m:gemini-2.5-flash:tokens", {"n1:120": now_ms - 500})
    from app.services.keypool import google_day

    r.set(p + f"keys:{kid}:m:gemini-2.5-pro:day:{google_day(now)}", 42)
    key = _keys(stack)[kid]
    models = {m["model"]: m for m in key["models"]}
    pro, flash = models["gemini-2.5-pro"], models["gemini-2.5-flash"]
    assert (pro["state"], pro["reason"], pro["used_today"], pro["limit_per_day"]) == (
        "cooling",
        "rpd",
        42,
        100,
    )
    assert pro["limit_per_minute"] == 5
    assert 25 < pro["cooldown_remaining_seconds"] <= 30
    assert (flash["state"], flash["used_last_minute"], flash["limit_per_minute"]) == (
        "active",
        1,
        10,
    )
    assert flash["tokens_last_minute"] == 120
    assert key["state"] == "active"  # pro cools; flash goes on

    error = {"at": now - 5, "model": "gemini-2.5-pro", "code": "rpd", "status": 429}
    r.lpush(p + f"keys:{kid}:errors", json.dumps({**error, "message": "quota per day"}))
    errors = stack.admin.get(f"/admin/keys/{kid}/errors")
    assert errors.status_code == 200
    assert [(e["model"], e["status"], e["message"]) for e in errors.json()] == [
        ("gemini-2.5-pro", 429, "quota per day")
    ]
    assert stack.admin.get("/admin/keys/0000dead/errors").status_code == 404

    minute = int(now // 60)
    r.hset(
        p + f"keys:series:{kid}",
        mapping={
            f"{minute}:gemini-2.5-flash:calls": 3,
            f"{minute}:gemini-2.5-pro:calls": 2,
            f"{minute}:gemini-2.5-pro:rate_limited": 1,
            f"{minute - 5}:gemini-2.5-flash:errors": 1,
            f"{minute - 2000}:gemini-2.5-flash:calls": 50,  # older than a day
        },
    )
    hour = stack.admin.get("/admin/keys/series", params={"window": "hour", "key_id": kid}).json()
    assert (hour["step_seconds"], len(hour["points"])) == (60, 60)
    last = hour["points"][-1]
    assert (last["calls"], last["rate_limited"], last["errors"]) == (5, 1, 0)
    assert sum(point["errors"] for point in hour["points"]) == 1
    day = stack.admin.get("/admin/keys/series", params={"window": "day"}).json()
    assert sum(point["calls"] for point in day["points"]) == 5
    assert stack.admin.get("/admin/keys/series", params={"window": "year"}).status_code == 422

    assert stack.admin.get("/admin/pool").json()["throttled_until"] is None
    r.set(p + "pool:throttled_until", now + 20, ex=20)
    assert stack.admin.get("/admin/pool").json()["throttled_until"] is not None


def test_a_non_admin_cannot_manage_keys(stack: KeyStack) -> None:
    user = register(stack.server.url)
    assert user.post("/admin/keys", json={"key": GOOD_KEY}).status_code == 403
    assert user.patch("/admin/keys/a1a1a1a1", json={"disabled": True}).status_code == 403
    assert user.delete("/admin/keys/a1a1a1a1").status_code == 403
    assert user.get("/admin/keys/series").status_code == 403


def _capacity(stack: KeyStack, model: str, **fields: float) -> None:
    values = {"next_free_at": 0, "updated_at": time.time(), **fields}
    stack.redis.hset(stack.p + f"pool:capacity:{model}", mapping=values)
    time.sleep(1.1)  # each backend process reads the capacity at most once a second


def test_a_saturated_pool_refuses_the_send_with_retry_after(stack: KeyStack) -> None:
    user = register(stack.server.url)
    chat = user.new_chat(model="gemini-2.5-pro")
    # 2 calls a minute and 40 replies waiting: about 20 minutes, far beyond 30 s.
    _capacity(stack, "gemini-2.5-pro", per_minute=2, waiting=40)
    refused = user.post(f"/chats/{chat['id']}/messages", json={"content": "now please"})
    assert refused.status_code == 429, refused.text
    assert "saturated" in refused.json()["detail"]
    retry_after = int(refused.headers["Retry-After"])
    assert 60 * 40 / 2 - MAX_QUEUE_WAIT_SECONDS <= retry_after <= 60 * 42 / 2
    assert user.messages(chat["id"]) == []  # nothing stored for a refused send

    # The pool catches up: 60 a minute serve the backlog within the limit.
    _capacity(stack, "gemini-2.5-pro", per_minute=600, waiting=40)
    assert user.post(f"/chats/{chat['id']}/messages", json={"content": "now?"}).status_code == 202


def test_no_or_stale_capacity_information_accepts_the_send(stack: KeyStack) -> None:
    user = register(stack.server.url)
    chat = user.new_chat(model="gemini-2.5-flash-lite")
    assert user.post(f"/chats/{chat['id']}/messages", json={"content": "hi"}).status_code == 202
    other = user.new_chat(model="gemini-2.5-flash-lite")
    _capacity(
        stack, "gemini-2.5-flash-lite", per_minute=1, waiting=99, updated_at=time.time() - 120
    )
    assert user.post(f"/chats/{other['id']}/messages", json={"content": "hi"}).status_code == 202


def test_the_answering_model_is_stored_on_the_reply(
    server: Server, worker: WorkerRole, alice: Api
) -> None:
    chat = alice.new_chat(model="gemini-2.5-pro")
    reply = alice.send(chat["id"], "who answers?")["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    worker.respond(request, "completed", "Echo: who answers?", model="gemini-2.5-flash")
    stored = alice.wait_status(chat["id"], reply["id"], "completed")
    assert stored["model"] == "gemini-2.5-flash"

    # A worker that does not send `model` leaves the chat's.
    second = alice.send(chat["id"], "and now?")["assistant_message"]
    request, _ = worker.take_request(second["id"])
    worker.respond(request, "completed", "Echo: and now?")
    assert alice.wait_status(chat["id"], second["id"], "completed")["model"] == "gemini-2.5-pro"
