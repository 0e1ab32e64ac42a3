"""Health, models, config and the admin view of the key pool."""

import re
import time
import uuid

import httpx

from tests.support import Api, RunNames, Server, WorkerRole


def test_health_reports_each_dependency(server: Server) -> None:
    answer = httpx.get(server.url + "/api/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "healthy"
    assert body["checks"] == {"database": "ok", "redis": "ok", "rabbitmq": "ok"}
    assert body["timestamp"].endswith("Z") or "+00:00" in body["timestamp"]


def test_models_and_config(alice: Api, anon: Api) -> None:
    models = alice.get("/models").json()
    models.pop("ranges")  # each model's generation-settings ranges: test_render_settings.py
    assert models == {
        "default": "gemini-2.5-flash",
        "models": ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite"],
    }
    assert anon.get("/config").json() == {
        "allow_registration": True,
        "max_message_chars": 500,
        "max_retries": 4,
    }


def test_openapi_is_served(anon: Api) -> None:
    spec = anon.get("/openapi.json").json()
    assert "/api/chats/{chat_id}/messages" in spec["paths"]
    assert anon.get("/docs").status_code == 200


def test_swagger_ui_is_served_from_the_backend_itself(anon: Api) -> None:
    page = anon.get("/docs").text
    assert "cdn.jsdelivr.net" not in page and "fastapi.tiangolo.com" not in page
    linked = re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", page)
    assert "/api/docs/assets/swagger-ui-bundle.js" in linked, linked
    for url in linked:
        assert url.startswith("/api/docs/assets/"), url
        answer = httpx.get(anon.url + url)
        assert answer.status_code == 200 and len(answer.content) > 100, url


def test_hsts_only_when_the_cookie_is_secure(run: RunNames, anon: Api, logs) -> None:
    assert "strict-transport-security" not in anon.get("/config").headers
    secure = Server(run.env(COOKIE_SECURE="true"), logs).wait_ready()
    try:
        answer = httpx.get(secure.url + "/api/config")
        assert answer.headers["strict-transport-security"].startswith("max-age=31536000")
    finally:
        secure.stop()


def _documented_detail_types(spec: dict, path: str, method: str, status: int) -> set[str]:
    """JSON types the OpenAPI document allows for `detail` in that answer."""
    content = spec["paths"][path][method]["responses"][str(status)]["content"]
    ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    detail = spec["components"]["schemas"][ref]["properties"]["detail"]
    return {option["type"] for option in detail.get("anyOf", [detail])}


def test_openapi_documents_the_error_answers_as_they_are_sent(alice: Api) -> None:
    spec = alice.get("/openapi.json").json()
    chat = alice.new_chat()
    send = "/api/chats/{chat_id}/messages"
    own_check = alice.post(f"/chats/{chat['id']}/messages", json={"content": "  "})
    parse_error = alice.post(f"/chats/{chat['id']}/messages", json={"content": 5})
    missing = alice.get(f"/chats/{uuid.uuid4()}/messages")
    anonymous = Api(alice.url).get("/chats")
    no_stream = alice.get(f"/chats/{uuid.uuid4()}/events")  # JSON, though the stream is not
    answers = [
        (own_check, send, "post", 422, "string"),
        (parse_error, send, "post", 422, "array"),
        (missing, send, "get", 404, "string"),
        (anonymous, "/api/chats", "get", 401, "string"),
        (no_stream, "/api/chats/{chat_id}/events", "get", 404, "string"),
    ]
    for answer, path, method, status, detail_type in answers:
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/json"
        sent = answer.json()["detail"]
        assert isinstance(sent, str if detail_type == "string" else list)
        assert detail_type in _documented_detail_types(spec, path, method, status), (path, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_admin_sees_key_states_from_the_workers_redis_keys(
    admin: Api, alice: Api, worker: WorkerRole, run: RunNames
) -> None:
    r, p = worker.redis, run.prefix
    now = time.time()
    r.hset(
        p + "keys:index", mapping={"aaaa1111": "…abcd", "bbbb2222": "…efgh", "cccc3333": "…ijkl"}
    )
    r.hset(
        p + "keys:aaaa1111",
        mapping={"disabled": "0", "cooldown_until": "0", "failures": "0", "requests_total": "7"},
    )
    r.hset(
        p + "keys:bbbb2222",
        mapping={
            "disabled": "0",
            "cooldown_until": str(now + 45),
            "failures": "2",
            "requests_total": "3",
            "last_error": "429 RESOURCE_EXHAUSTED",
        },
    )
    r.hset(
        p + "keys:cccc3333",
        mapping={
            "disabled": "1",
            "cooldown_until": "0",
            "failures": "1",
            "requests_total": "1",
            "last_error": "API_KEY_INVALID",
        },
    )
    now_ms = int(now * 1000)
    r.zadd(
        p + "keys:aaaa1111:window", {"a": now_ms - 1000, "b": now_ms - 2000, "old": now_ms - 61_000}
    )

    keys = admin.get("/admin/keys")
    assert keys.status_code == 200
    by_id = {k["id"]: k for k in keys.json()}
    assert set(by_id) == {"aaaa1111", "bbbb2222", "cccc3333"}
    a, b, c = by_id["aaaa1111"], by_id["bbbb2222"], by_id["cccc3333"]
    assert (a["label"], a["state"], a["used_last_minute"], a["requests_total"]) == (
        "…abcd",
        "active",
        2,
        7,
    )
    assert a["cooldown_until"] is None
    assert (b["state"], b["failures"], b["last_error"]) == ("cooling", 2, "429 RESOURCE_EXHAUSTED")
    assert b["cooldown_until"] is not None
    assert (c["state"], c["last_error"]) == ("disabled", "API_KEY_INVALID")
    assert set(a) >= {
        "id",
        "label",
        "state",
        "used_last_minute",
        "cooldown_until",
        "failures",
        "requests_total",
        "last_error",
    }
    assert (a["source"], a["reason"], c["reason"]) == ("env", None, "key_invalid")

    forbidden = alice.get("/admin/keys")
    assert forbidden.status_code == 403
