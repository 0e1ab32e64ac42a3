"""Restarts, a killed worker and more replicas while replies stream: every reply completes
once, with exactly the stand-in's text (none lost, none doubled)."""

from __future__ import annotations

import asyncio
import time

from harness.api import ChatClient
from harness.expected import expected_replies

SLOW = {"chunks": 30, "chunk_ms": 150}  # ~4.5 s a reply: long enough to be cut mid-way


def send_many(up, users: int, per_user: int, during=None, deadline: float = 240):
    """`users` users send one message into each of `per_user` chats; `during` (a function) runs
    in a thread once the first replies are streaming. Returns the final assistant messages."""

    async def scenario():
        clients = [ChatClient(up.url, timeout=30) for _ in range(users)]
        try:
            for c in clients:
                await c.register_and_login()
            sent = []
            for u, c in enumerate(clients):
                for i in range(per_user):
                    chat = await c.create_chat(f"chat {i}")
                    text = f"user {u} message {i} {time.monotonic_ns()}"
                    sent.append((c, text, await c.send(chat["id"], text)))
            if during is not None:
                await asyncio.sleep(1.5)
                await asyncio.to_thread(during)
            finals = await asyncio.gather(*(c.wait_final(a, deadline) for c, _, a in sent))
            return [(text, final) for (_, text, _), final in zip(sent, finals, strict=True)]
        finally:
            for c in clients:
                await c.aclose()

    results = asyncio.run(scenario())
    expected = expected_replies([{"contents": [{"role": "user", "text": t}]} for t, _ in results])
    for (text, final), want in zip(results, expected, strict=True):
        assert final["status"] == "completed", f"{text}: {final['status']} {final['error']}"
        assert final["content"] == want, f"{text}: reply lost or doubled:\n{final['content']!r}"
    return results


def test_restart_backend_while_replies_stream(up):
    up.standin("/_standin/config", SLOW)
    send_many(up, users=1, per_user=4, during=lambda: up.run("docker compose restart backend"))
    up.healthy()


def test_restart_gemini_client_while_replies_stream(up):
    up.standin("/_standin/config", SLOW)
    send_many(
        up, users=1, per_user=4, during=lambda: up.run("docker compose restart gemini-client")
    )


def _restart_count(up, cid: str) -> int:
    return int(up.run(f"docker inspect -f '{{{{.RestartCount}}}}' {cid}").stdout)


def test_a_worker_killed_mid_reply_is_brought_back_by_the_restart_policy(up):
    """A crash (the worker's process SIGKILLed, as the OOM killer does): `restart:
    unless-stopped` starts the container again and the replies complete. (`docker kill` itself
    counts as a manual stop, which Docker never restarts: the README says so.)"""
    up.standin("/_standin/config", SLOW)
    [cid] = up.container_ids("gemini-client")
    before = _restart_count(up, cid)

    def crash():
        pid = up.run(f"docker inspect -f '{{{{.State.Pid}}}}' {cid}").stdout.strip()
        up.run(f"kill -9 {pid}")

    send_many(up, users=1, per_user=3, during=crash)
    assert _restart_count(up, cid) == before + 1
    assert up.run(f"docker inspect -f '{{{{.State.Status}}}}' {cid}").stdout.strip() == "running"


def test_docker_kill_of_a_worker_mid_reply_then_up_d_completes_the_replies(up):
    up.standin("/_standin/config", SLOW)
    [cid] = up.container_ids("gemini-client")

    def kill_and_bring_back():
        up.run(f"docker kill {cid}")
        up.run("docker compose up -d")

    send_many(up, users=1, per_user=3, during=kill_and_bring_back)


def test_scale_gemini_client_to_3_spreads_replies_and_the_key_limits_hold(up):
    up.run("docker compose up -d --scale gemini-client=3 --wait", timeout=600)
    assert len(up.container_ids("gemini-client")) == 3
    per_minute = int(up.settings.get("KEYS_MAX_PER_MINUTE", "10"))
    up.standin("/_standin/reset", {})
    # The stand-in answers 429 past the pool's own limit: one 429 means the replicas overspent.
    up.standin("/_standin/config", {"rpm": per_minute, "chunks": 6, "chunk_ms": 300})
    results = send_many(up, users=3, per_user=6, deadline=300)
    stats = up.standin("/_standin/stats")
    assert stats["total_429"] == 0, f"a key went over {per_minute}/min: {stats}"
    # `docker compose logs` prefixes each line with its container (<project>_gemini-client_<n>).
    done = [line for line in up.logs("gemini-client").splitlines() if "request_done" in line]
    replicas = {line.split("|")[0].strip() for line in done}
    assert len(replicas) >= 2, f"all {len(results)} replies were served by {replicas}"
    up.run("docker compose up -d --scale gemini-client=1 --wait", timeout=600)
    up.standin("/_standin/reset", {})
