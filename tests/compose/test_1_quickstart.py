"""The README's quick start and operations commands, typed as the README writes them."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from pathlib import Path

import httpx
from conftest import UP_BOUND_SECONDS, secret_values
from harness.api import ChatClient
from harness.expected import expected_replies
from harness.sse import parse_frames

SERVICES = [
    "postgres",
    "redis",
    "rabbitmq",
    "backend",
    "gemini-client",
    "gemini-standin",
    "frontend",
    "nginx",
    "hysteria2",
]


def test_up_wait_brings_every_service_to_healthy_within_the_bound(up):
    print(
        f"`docker compose up -d --build --wait`: {up.took_up:.0f} s "
        f"(bound {UP_BOUND_SECONDS} s once the images exist)"
    )
    ps = up.run("docker compose ps").stdout
    for service in SERVICES:
        line = next((line for line in ps.splitlines() if f"_{service}_1" in line), None)
        assert line is not None, f"{service} missing from `docker compose ps`:\n{ps}"
        assert "(healthy)" in line, f"{service} not healthy:\n{line}"
    assert up.took_up < UP_BOUND_SECONDS + 600  # first run: the images are built too


def test_the_spa_loads_at_the_root_through_nginx(up):
    r = httpx.get(up.url + "/", timeout=10)
    assert r.status_code == 200 and '<div id="app">' in r.text
    asset = re.search(r'src="(/assets/[^"]+\.js)"', r.text).group(1)
    assert httpx.get(up.url + asset, timeout=10).status_code == 200
    # A deep link gets the app too (the SPA routes on the client).
    assert '<div id="app">' in httpx.get(up.url + "/chats/x", timeout=10).text


def test_register_chat_and_a_reply_streamed_through_nginx_and_the_proxy(up):
    async def scenario():
        async with ChatClient(up.url) as user:
            await user.register_and_login()
            chat = await user.create_chat("First")
            deltas: list[tuple[float, str]] = []
            events = f"/api/chats/{chat['id']}/events"
            async with (
                httpx.AsyncClient(base_url=up.url, timeout=30) as sse,
                sse.stream("GET", events, headers=user.auth) as stream,
            ):
                assert stream.status_code == 200
                accepted = await user.send(chat["id"], "Hello through compose!")
                async for frame in parse_frames(stream.aiter_lines()):
                    if frame.event == "message.delta":
                        deltas.append((time.monotonic(), frame.data["text"]))
                    if frame.event == "message.completed":
                        break
            final = await user.wait_final(accepted, 30)
            return final, deltas

    final, deltas = asyncio.run(asyncio.wait_for(scenario(), 90))
    expected = expected_replies(
        [{"contents": [{"role": "user", "text": "Hello through compose!"}]}]
    )[0]
    assert final["status"] == "completed" and final["content"] == expected
    assert len(deltas) > 1 and "".join(t for _, t in deltas) == expected
    assert deltas[-1][0] - deltas[0][0] > 0.1, "the deltas arrived in one piece, not streamed"
    # The worker's Gemini call went through the hysteria2 service (HTTP_PROXY).
    assert "proxied http gemini-standin:8090" in up.logs("hysteria2")


def test_logs_of_the_backend_and_the_worker(up):
    backend = up.logs("backend")
    assert "Application startup complete" in backend
    worker = up.run("docker compose logs --no-color gemini-client").stdout
    assert '"request_done"' in worker or "request_done" in worker
    everything = up.run("docker compose logs --no-color").stdout
    for secret in secret_values(up):
        assert secret not in everything, "a secret is in the logs"


def test_exec_psql_as_the_readme_writes_it(up):
    out = up.run("docker compose exec -T postgres psql -U chat chat -c 'SELECT 1'").stdout
    assert "(1 row)" in out
    counts = up.run(
        "docker compose exec -T postgres psql -U chat chat -c "
        '"SELECT status, count(*) FROM messages GROUP BY status"'
    ).stdout
    assert "completed" in counts
    backlog = up.run(
        "docker compose exec -T postgres psql -U chat chat -c "
        '"SELECT count(*) FROM outbox WHERE published_at IS NULL"'
    ).stdout
    assert "(1 row)" in backlog


def test_exec_rabbitmqctl_lists_the_request_retry_and_dead_letter_queues(up):
    out = up.run(
        "docker compose exec -T rabbitmq rabbitmqctl list_queues name messages consumers"
    ).stdout
    names = {line.split()[0] for line in out.splitlines() if line.startswith("gemini.")}
    assert {
        "gemini.requests",
        "gemini.responses",
        "gemini.requests.dead",
        "gemini.responses.dead",
        "gemini.requests.retry.2s",
    } <= names, out
    consumers = {
        line.split()[0]: int(line.split()[2])
        for line in out.splitlines()
        if line.startswith("gemini.")
    }
    assert consumers["gemini.requests"] >= 1


def test_exec_redis_cli_uses_the_password_from_the_environment(up):
    assert up.run("docker compose exec -T redis redis-cli ping").stdout.strip() == "PONG"
    keys = up.run("docker compose exec -T redis redis-cli --scan --pattern 'chat:*'").stdout
    assert keys.strip(), "no chat:* keys after a reply"
    policy = up.run("docker compose exec -T redis redis-cli config get maxmemory-policy").stdout
    assert "volatile-lru" in policy
    # Without the password Redis refuses: it is not open inside the network either.
    bare = up.run("docker compose exec -T -e REDISCLI_AUTH= redis redis-cli ping", check=False)
    assert "NOAUTH" in bare.stdout + bare.stderr


def _uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))


def test_every_container_runs_as_a_non_root_user(up):
    """The main process of each container (healthchecks that `docker exec` runs are not the
    service). nginx's master is root by design (it binds :80) and only its workers serve."""
    for service in SERVICES:
        for cid in up.container_ids(service):
            pid = int(up.run(f"docker inspect -f '{{{{.State.Pid}}}}' {cid}").stdout)
            if service == "nginx":
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                assert children and all(_uid(int(c)) != 0 for c in children), service
                continue
            assert _uid(pid) != 0, f"{service} runs as root"


def test_the_app_users_are_neither_superuser_nor_administrator(up):
    su = up.run(
        "docker compose exec -T postgres psql -U chat chat -tAc "
        '"SELECT rolsuper FROM pg_roles WHERE rolname = current_user"'
    ).stdout
    assert su.strip() == "f"
    # The superuser has no password: over TCP, even with the app's password, it is refused.
    probe = up.run(
        'docker compose exec -T -e PGPASSWORD="$(grep ^DB_PASSWORD= .env | cut -d= -f2)" '
        "backend python -c \"import psycopg; psycopg.connect('host=postgres user=postgres "
        "dbname=chat')\"",
        check=False,
    )
    assert probe.returncode != 0 and "password authentication failed" in probe.stderr
    users = up.run("docker compose exec -T rabbitmq rabbitmqctl list_users").stdout
    line = next(line for line in users.splitlines() if line.startswith("chat"))
    assert "administrator" not in line and "management" in line, users


def test_a_forged_x_forwarded_for_is_not_the_backend_s_client_address(up):
    forged = f"203.0.113.{secrets.randbelow(200) + 1}"
    r = httpx.get(up.url + "/api/config", headers={"X-Forwarded-For": forged}, timeout=10)
    assert r.status_code == 200
    seen = up.wait_for(
        "the backend logged the request",
        lambda: [line for line in up.logs("backend").splitlines() if "GET /api/config" in line],
        timeout=20,
    )
    assert not any(forged in line for line in seen), seen[-1]


def test_the_management_ui_is_published_on_loopback_only(up):
    r = httpx.get(
        f"http://127.0.0.1:{up.management_port}/api/overview",
        timeout=10,
        auth=("chat", up.settings["RABBITMQ_PASSWORD"]),
    )
    assert r.status_code == 200 and json.loads(r.text)["rabbitmq_version"]
    port = up.run("docker compose port rabbitmq 15672").stdout.strip()
    assert port.startswith("127.0.0.1:")


DEAD_LETTER_POLICY = (
    "docker compose exec rabbitmq rabbitmqctl set_policy --apply-to queues dead-letters "
    "'\\.dead$' '{\"max-length\":10000}'"
)


def test_the_readme_s_policy_bounds_the_dead_letter_queues(up):
    up.run(DEAD_LETTER_POLICY.replace("exec rabbitmq", "exec -T rabbitmq"))
    out = up.run("docker compose exec -T rabbitmq rabbitmqctl list_queues name policy").stdout
    rows = [line.split("\t") for line in out.splitlines() if line.startswith("gemini.")]
    policies = {row[0]: row[1].strip() if len(row) > 1 else "" for row in rows}
    assert policies["gemini.requests.dead"] == "dead-letters", out
    assert policies["gemini.responses.dead"] == "dead-letters", out
    assert policies["gemini.requests"] != "dead-letters"
    readme = (up.dir / "README.md").read_text()
    assert DEAD_LETTER_POLICY in readme
    up.run("docker compose exec -T rabbitmq rabbitmqctl purge_queue gemini.requests.dead")


def test_the_readme_s_health_check_from_inside_the_backend_container(up):
    readme = (up.dir / "README.md").read_text()
    command = re.search(r'`(docker compose exec backend python -c "[^`]+)`', readme).group(1)
    out = up.run(command.replace("exec backend", "exec -T backend")).stdout
    assert json.loads(out)["status"] == "healthy"
