"""`make bench` part `attachments`: 20 replies at once, each to a message with a 15 MB PDF,
through one worker process; its peak RSS (the kernel's high-water mark, VmHWM) against its RSS
at rest. The worker reads each PDF from PostgreSQL and sends it inline (base64) to the stand-in,
which answers with the SHA-256 of what it received: every reply is checked to carry it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import zlib

import httpx

PDF_MB = 15
REPLIES = 20


def big_pdf(megabytes: int) -> bytes:
    """A valid one-page PDF of about `megabytes` MB: its content stream is random bytes behind
    Flate (incompressible, so the size is real), followed by a correct xref table."""
    noise = os.urandom(megabytes * 1024 * 1024)
    stream = zlib.compress(b"BT /F1 12 Tf 72 720 Td (Attachment bench) Tj ET\n", 1) + noise
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _status_mib(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _final(http: httpx.AsyncClient, chat_id: str, reply_id: str, deadline: float) -> dict:
    while time.monotonic() < deadline:
        r = await http.get(f"/chats/{chat_id}/messages")
        if r.status_code == 200:
            for m in r.json():
                if m["id"] == reply_id and m["status"] in ("completed", "failed", "cancelled"):
                    return m
        await asyncio.sleep(0.5)
    raise AssertionError(f"reply {reply_id} not final in time")


async def bench_attachments(stack, quick: bool) -> dict:
    megabytes, replies = (5, 6) if quick else (PDF_MB, REPLIES)
    pdf = big_pdf(megabytes)
    digest = hashlib.sha256(pdf).hexdigest()
    (worker,) = stack.pids("worker")
    async with httpx.AsyncClient(base_url=stack.url + "/api", timeout=120) as http:
        login = {"email": "bench-files@example.com", "password": "correct horse battery staple"}
        assert (await http.post("/auth/register", json=login)).status_code == 201
        assert (await http.post("/auth/login", json=login)).status_code == 200
        chats, uploads = [], []
        for i in range(replies):
            chats.append((await http.post("/chats", json={"title": f"pdf {i}"})).json()["id"])
            r = await http.post("/uploads", files={"file": (f"big{i}.pdf", pdf, "application/pdf")})
            assert r.status_code == 201, r.text
            uploads.append(r.json()["id"])
        at_rest = _status_mib(worker, "VmRSS")
        samples: list[float] = []
        sampling = True

        async def sample() -> None:
            while sampling:
                samples.append(_status_mib(worker, "VmRSS"))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        t0 = time.monotonic()
        sent = await asyncio.gather(
            *(
                http.post(
                    f"/chats/{chat}/messages",
                    json={"content": "Summarise this PDF", "attachments": [upload]},
                )
                for chat, upload in zip(chats, uploads, strict=True)
            )
        )
        assert all(r.status_code == 202 for r in sent), [r.text for r in sent]
        deadline = time.monotonic() + 300
        finals = await asyncio.gather(
            *(
                _final(http, chat, r.json()["assistant_message"]["id"], deadline)
                for chat, r in zip(chats, sent, strict=True)
            )
        )
        elapsed = time.monotonic() - t0
        sampling = False
        await sampler
    completed = [m for m in finals if m["status"] == "completed"]
    exact = [m for m in completed if f"sha256:{digest}" in m["content"]]
    result = {
        "replies": replies,
        "pdf_mb": round(len(pdf) / 1024 / 1024, 1),
        "completed": len(completed),
        "digest_matches": len(exact),
        "seconds_all_done": round(elapsed, 1),
        "worker_rss_at_rest_mib": round(at_rest, 1),
        "worker_rss_peak_sampled_mib": round(max(samples, default=at_rest), 1),
        "worker_rss_peak_hwm_mib": round(_status_mib(worker, "VmHWM"), 1),
        "attachment_bytes_in_flight_mib": round(replies * len(pdf) / 1024 / 1024),
    }
    print(f"  attachments: {result}", flush=True)
    return result
