"""Attachments (issue 15): the uploads API, attaching to a message, what the queued request
carries (references only), downloads, deletion, and the issue's bad inputs (never a 500)."""

import asyncio
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import NameObject, NumberObject
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.api.routes.uploads import _disposition
from app.services.uploads import sweep
from tests.support import (
    Api,
    RunNames,
    Server,
    WorkerRole,
    migrated_run,
    register,
    wait_for,
)

FILES = Path(__file__).parent / "fixtures" / "files"
PNG = (FILES / "sample.png").read_bytes()
PDF = (FILES / "sample.pdf").read_bytes()
MB = 1024 * 1024


def upload(api: Api, data: bytes, name: str, content_type: str = "application/octet-stream"):
    return api.post("/uploads", files={"file": (name, data, content_type)})


def uploaded(api: Api, data: bytes, name: str) -> dict:
    answer = upload(api, data, name)
    assert answer.status_code == 201, answer.text
    return answer.json()


def send(api: Api, chat_id: str, content: str, attachments: list[str]):
    return api.post(
        f"/chats/{chat_id}/messages",
        json={"content": content, "role": "user", "attachments": attachments},
    )


def big_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((side, side)).convert("RGB").save(out, "PNG")
    return out.getvalue()


def test_png_and_pdf_are_stored_with_their_facts(alice: Api) -> None:
    png = uploaded(alice, PNG, "shot.png")
    assert png["mime_type"] == "image/png" and png["size"] == len(PNG)
    assert png["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert (png["width"], png["height"]) == (64, 48)
    pdf = uploaded(alice, PDF, "paper.pdf")
    assert (pdf["mime_type"], pdf["pages"]) == ("application/pdf", 2)


def test_the_type_comes_from_the_bytes_not_the_header(alice: Api) -> None:
    # A PNG sent as text/html with an .html name is still a PNG; an SVG sent as image/png isn't.
    assert uploaded(alice, PNG, "x.html")["mime_type"] == "image/png"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    assert upload(alice, svg, "cat.svg", "image/png").status_code == 415
    assert upload(alice, b"<html><script>alert(1)</script>", "page.html").status_code == 415
    assert upload(alice, os.urandom(2000), "blob.bin").status_code == 415


def test_text_files_must_be_utf8(alice: Api) -> None:
    assert uploaded(alice, "# Titel ü\n".encode(), "notes.md")["mime_type"] == "text/markdown"
    assert uploaded(alice, b"a,b\n1,2\n", "t.csv")["mime_type"] == "text/csv"
    assert uploaded(alice, b'{"a": 1}', "d.json")["mime_type"] == "application/json"
    assert uploaded(alice, b"print('hi')\n", "x.py")["mime_type"] == "text/plain"
    latin1 = upload(alice, "caf\xe9".encode("latin-1"), "old.txt")
    assert latin1.status_code == 422 and "UTF-8" in latin1.json()["detail"]


@pytest.mark.parametrize(
    ("data", "name", "status"),
    [
        (b"", "empty.png", 422),  # zero bytes
        (PNG[: len(PNG) // 2], "cut.png", 422),  # truncated PNG
        (b"%PDF-1.4\n%\xff\xff\nnot really a pdf", "bad.pdf", 422),
    ],
)
def test_broken_files_are_refused_readably(alice: Api, data: bytes, name: str, status: int):
    answer = upload(alice, data, name)
    assert answer.status_code == status, answer.text
    assert isinstance(answer.json()["detail"], str)


def test_a_pdf_bomb_is_refused_without_walking_its_pages(alice: Api) -> None:
    # A tiny, well-formed PDF whose page tree claims ten million pages.
    writer = PdfWriter()
    writer.add_blank_page(width=10, height=10)
    writer._root_object["/Pages"][NameObject("/Count")] = NumberObject(10_000_000)
    out = io.BytesIO()
    writer.write(out)
    bomb = out.getvalue()
    assert len(bomb) < 2000
    answer = upload(alice, bomb, "bomb.pdf")
    assert answer.status_code == 413, answer.text
    assert "1000" in answer.json()["detail"]


def test_an_image_bomb_is_refused(alice: Api) -> None:
    out = io.BytesIO()
    Image.new("1", (12000, 12000)).save(out, "PNG")  # 144 Mpx in a few kB
    answer = upload(alice, out.getvalue(), "huge.png")
    assert answer.status_code == 413, answer.text


def test_a_png_html_polyglot_is_stored_and_served_only_as_an_image(alice: Api) -> None:
    polyglot = PNG + b"<html><script>alert(document.cookie)</script></html>"
    found = uploaded(alice, polyglot, "poly.html")
    assert found["mime_type"] == "image/png"
    served = alice.get(f"/uploads/{found['id']}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("evil\x00name.txt", "evilname.txt"),
        ("tab\there\x07.txt", "tabhere.txt"),
    ],
)
def test_names_are_made_safe(alice: Api, raw: str, shown: str) -> None:
    # Written by hand: httpx would percent-encode the name's quote, NUL and line breaks.
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{raw}"\r\n'
        f"Content-Type: text/plain\r\n\r\nhello\n\r\n--{boundary}--\r\n"
    ).encode()
    answer = alice.post(
        "/uploads",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert answer.status_code == 201, answer.text
    found = answer.json()
    assert found["name"] == shown
    served = alice.get(f"/uploads/{found['id']}")
    disposition = served.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    assert "\r" not in disposition and "\n" not in disposition
    assert "x-injected" not in {name.lower() for name in served.headers}


def test_content_disposition_cannot_be_broken_out_of() -> None:
    header = _disposition("attachment", 'quo"te;\r\nX-Injected: 1 ☃.txt')
    assert header == (
        'attachment; filename="quo_te___X-Injected: 1 _.txt"; '
        "filename*=UTF-8''quo%22te%3B%0D%0AX-Injected%3A%201%20%E2%98%83.txt"
    )


def test_a_thousand_character_name_is_cut_keeping_its_extension(alice: Api) -> None:
    found = uploaded(alice, b"x\n", "a" * 1000 + ".txt")
    assert len(found["name"]) == 255 and found["name"].endswith(".txt")


def test_a_25_mb_upload_answers_413_with_the_limit(alice: Api) -> None:
    answer = upload(alice, b"\0" * (25 * MB), "big.png")
    assert answer.status_code == 413
    assert "20 MB" in answer.json()["detail"]
    assert "20 MB" in answer.json()["detail"]


def test_downloads_inline_images_attach_everything_else(alice: Api) -> None:
    png = uploaded(alice, PNG, "ünïcode ☃.png")
    served = alice.get(f"/uploads/{png['id']}")
    assert served.content == PNG
    assert served.headers["content-disposition"].startswith("inline; ")
    assert (
        "filename*=UTF-8''%C3%BCn%C3%AFcode%20%E2%98%83.png"
        in served.headers["content-disposition"]
    )
    thumb = alice.get(f"/uploads/{png['id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    pdf = uploaded(alice, PDF, "paper.pdf")
    served = alice.get(f"/uploads/{pdf['id']}")
    assert served.content == PDF
    assert served.headers["content-disposition"].startswith("attachment; ")
    assert alice.get(f"/uploads/{pdf['id']}/thumbnail").status_code == 404
    text = uploaded(alice, b"<b>hi</b>\n", "page.txt")
    served = alice.get(f"/uploads/{text['id']}")
    assert served.headers["content-type"] == "text/plain; charset=utf-8"
    assert served.headers["content-disposition"].startswith("attachment; ")


def test_only_the_owner_sees_an_upload(alice: Api, bob: Api, anon: Api) -> None:
    png = uploaded(alice, PNG, "mine.png")
    assert bob.get(f"/uploads/{png['id']}").status_code == 404
    assert bob.get(f"/uploads/{png['id']}/thumbnail").status_code == 404
    assert bob.delete(f"/uploads/{png['id']}").status_code == 404
    assert anon.get(f"/uploads/{png['id']}").status_code == 401
    assert anon.post("/uploads", files={"file": ("a.png", PNG)}).status_code == 401
    assert alice.get(f"/uploads/{uuid.uuid4()}").status_code == 404


def test_large_images_are_scaled_for_sending_and_kept_whole(alice: Api, run: RunNames) -> None:
    original = big_png(3500)
    found = uploaded(alice, original, "big.png")
    assert (found["width"], found["height"]) == (3500, 3500)
    assert alice.get(f"/uploads/{found['id']}").content == original
    with psycopg.connect(run.database_url().replace("+psycopg", "")) as db:
        (send,) = db.execute(
            "SELECT send FROM upload_data WHERE upload_id = %s", (found["id"],)
        ).fetchone()
    assert max(Image.open(io.BytesIO(send)).size) == 3072


def test_the_request_carries_references_and_the_message_lists_its_files(
    alice: Api, worker: WorkerRole
) -> None:
    chat = alice.new_chat()
    png, pdf = uploaded(alice, PNG, "a.png"), uploaded(alice, PDF, "b.pdf")
    sent = send(alice, chat["id"], "What is in these?", [png["id"], pdf["id"]])
    assert sent.status_code == 202, sent.text
    question = sent.json()["user_message"]
    assert [a["id"] for a in question["attachments"]] == [png["id"], pdf["id"]]
    assert question["attachments"][0] == {
        "id": png["id"],
        "name": "a.png",
        "mime_type": "image/png",
        "size": len(PNG),
    }
    request, delivery = worker.take_request(sent.json()["assistant_message"]["id"])
    assert request["contents"][-1]["attachments"] == [
        {"id": png["id"], "mime_type": "image/png", "size": len(PNG)},
        {"id": pdf["id"], "mime_type": "application/pdf", "size": len(PDF)},
    ]
    assert len(delivery.body) < 2000  # no bytes in the queue: the claim check
    listed = alice.messages(chat["id"])
    assert [a["name"] for a in listed[0]["attachments"]] == ["a.png", "b.pdf"]
    assert listed[1]["attachments"] == []


def test_later_turns_carry_earlier_attachments(alice: Api, worker: WorkerRole, run) -> None:
    chat = alice.new_chat()
    png = uploaded(alice, PNG, "a.png")
    first = send(alice, chat["id"], "look", [png["id"]]).json()
    worker.take_request(first["assistant_message"]["id"])
    with psycopg.connect(run.database_url().replace("+psycopg", "")) as db:
        db.execute(
            "UPDATE messages SET status = 'completed', content = 'ok' WHERE id = %s",
            (first["assistant_message"]["id"],),
        )
    second = send(alice, chat["id"], "and now?", []).json()
    request, _ = worker.take_request(second["assistant_message"]["id"])
    assert [t.get("attachments", []) for t in request["contents"]] == [
        [{"id": png["id"], "mime_type": "image/png", "size": len(PNG)}],
        [],
        [],
    ]


def test_a_reply_keeps_how_many_older_files_the_worker_left_out(
    alice: Api, worker: WorkerRole
) -> None:
    chat = alice.new_chat()
    png = uploaded(alice, PNG, "a.png")
    reply = send(alice, chat["id"], "look", [png["id"]]).json()["assistant_message"]
    request, _ = worker.take_request(reply["id"])
    worker.respond(request, "completed", "Echo: look", attachments_omitted=1)
    alice.wait_status(chat["id"], reply["id"], "completed")
    question, answer = alice.messages(chat["id"])
    assert answer["attachments_omitted"] == 1
    assert question["attachments_omitted"] is None


def test_a_regenerated_reply_sends_its_question_files_again(
    alice: Api, worker: WorkerRole, run
) -> None:
    chat = alice.new_chat()
    png = uploaded(alice, PNG, "a.png")
    first = send(alice, chat["id"], "look", [png["id"]]).json()
    reply_id = first["assistant_message"]["id"]
    worker.take_request(reply_id)
    with psycopg.connect(run.database_url().replace("+psycopg", "")) as db:
        db.execute(
            "UPDATE messages SET status = 'completed', content = 'ok' WHERE id = %s", (reply_id,)
        )
    again = alice.post(f"/chats/{chat['id']}/messages/{reply_id}/retry")
    assert again.status_code == 202, again.text
    request, _ = worker.take_request(again.json()["id"])
    assert request["contents"][-1]["attachments"] == [
        {"id": png["id"], "mime_type": "image/png", "size": len(PNG)}
    ]
    # The question shows its file on the new branch and in the whole tree alike.
    assert [a["id"] for a in alice.messages(chat["id"])[0]["attachments"]] == [png["id"]]
    tree = alice.get(f"/chats/{chat['id']}/messages?view=tree").json()
    assert [a["id"] for a in tree[0]["attachments"]] == [png["id"]]
    assert all(m["attachments"] == [] for m in tree[1:])


def test_an_upload_is_attached_once_and_by_its_owner_only(
    alice: Api, bob: Api, worker: WorkerRole
) -> None:
    png = uploaded(alice, PNG, "a.png")
    bobs_chat = bob.new_chat()
    stolen = send(bob, bobs_chat["id"], "mine now", [png["id"]])
    assert stolen.status_code == 404
    chat = alice.new_chat()
    first = send(alice, chat["id"], "one", [png["id"]])
    assert first.status_code == 202
    worker.take_request(first.json()["assistant_message"]["id"])
    other = alice.new_chat()
    again = send(alice, other["id"], "two", [png["id"]])
    assert again.status_code == 404
    assert alice.delete(f"/uploads/{png['id']}").status_code == 409
    twice = uploaded(alice, PNG, "b.png")
    assert send(alice, other["id"], "x", [twice["id"], twice["id"]]).status_code == 422
    # A refused send leaves its uploads free to attach.
    assert send(alice, other["id"], "x", [twice["id"]]).status_code == 202


def test_a_message_of_files_only_is_accepted(alice: Api, worker: WorkerRole) -> None:
    chat = alice.new_chat()
    png = uploaded(alice, PNG, "a.png")
    sent = send(alice, chat["id"], "", [png["id"]])
    assert sent.status_code == 202, sent.text
    # No text to name the chat after: it keeps its title until the generated one comes.
    assert alice.get(f"/chats/{chat['id']}").json()["title"] == chat["title"]
    assert send(alice, alice.new_chat()["id"], "  ", []).status_code == 422


def test_deleting_a_chat_deletes_its_attachments(alice: Api, worker: WorkerRole, run) -> None:
    chat = alice.new_chat()
    png = uploaded(alice, PNG, "a.png")
    sent = send(alice, chat["id"], "look", [png["id"]]).json()
    worker.take_request(sent["assistant_message"]["id"])
    assert alice.delete(f"/chats/{chat['id']}").status_code == 204
    assert alice.get(f"/uploads/{png['id']}").status_code == 404
    with psycopg.connect(run.database_url().replace("+psycopg", "")) as db:
        left = db.execute("SELECT count(*) FROM upload_data WHERE upload_id = %s", (png["id"],))
        assert left.fetchone()[0] == 0


def test_a_hundred_uploads_at_once_never_fail_with_500(
    alice: Api, bob: Api, worker: WorkerRole
) -> None:
    def one(i: int) -> int:
        return upload(alice, f"note {i}\n".encode(), f"n{i}.txt").status_code

    bobs_chat = bob.new_chat()
    with ThreadPoolExecutor(max_workers=100) as pool:
        flood = pool.map(one, range(100))
        # Meanwhile another user's chat goes on: his own upload and send are answered.
        mine = uploaded(bob, PNG, "bob.png")
        sent = send(bob, bobs_chat["id"], "still here?", [mine["id"]])
        statuses = list(flood)
    assert set(statuses) == {201}, sorted(set(statuses))
    assert sent.status_code == 202, sent.text
    worker.take_request(sent.json()["assistant_message"]["id"])
    assert [a["id"] for a in bob.messages(bobs_chat["id"])[0]["attachments"]] == [mine["id"]]


# Limits small enough to reach: a backend of its own.
@pytest.fixture(scope="module")
def limited(run: RunNames, logs) -> Iterator[Server]:
    with migrated_run(RunNames(tag=run.tag + "u")) as names:
        worker = WorkerRole(names)
        server = Server(
            names.env(
                MAX_UPLOAD_MB=1,
                MAX_MESSAGE_UPLOADS_MB=1.5,
                USER_UPLOAD_QUOTA_MB=3,
                SIGNUPS_PER_ADDRESS_PER_HOUR=0,
            ),
            logs,
        )
        try:
            yield server.wait_ready()
        finally:
            server.stop()
            worker.delete_queues()
            worker.close()


def test_per_message_total_and_user_quota(limited: Server) -> None:
    user = register(limited.url)
    text = b"x" * (900 * 1024)  # 0.9 MB each, under the 1 MB file limit
    first, second = (uploaded(user, text, f"{i}.txt") for i in range(2))
    too_much = send(user, user.new_chat()["id"], "both", [first["id"], second["id"]])
    assert too_much.status_code == 413 and "1.5 MB" in too_much.json()["detail"]
    uploaded(user, text, "2.txt")
    full = upload(user, text, "3.txt")  # 3.6 MB > 3 MB
    assert full.status_code == 413 and "quota" in full.json()["detail"]
    # Another user's quota is their own.
    assert upload(register(limited.url), text, "a.txt").status_code == 201
    assert upload(user, b"y" * (MB + 1), "big.txt").status_code == 413


def test_unattached_uploads_are_removed_after_a_day(alice: Api, run: RunNames) -> None:
    old = uploaded(alice, PNG, "old.png")
    fresh = uploaded(alice, PNG, "fresh.png")
    with psycopg.connect(run.database_url().replace("+psycopg", "")) as db:
        db.execute(
            "UPDATE uploads SET created_at = now() - interval '25 hours' WHERE id = %s",
            (old["id"],),
        )

    class _C:  # what the sweep uses of the container
        pass

    async def run_sweep() -> int:
        engine = create_async_engine(
            run.database_url().replace("postgresql:", "postgresql+psycopg:")
        )
        c = _C()
        c.sessionmaker = async_sessionmaker(engine)
        try:
            return await sweep(c)
        finally:
            await engine.dispose()

    wait_for(lambda: asyncio.run(run_sweep()) >= 1, "the sweep to remove the old upload")
    assert alice.get(f"/uploads/{old['id']}").status_code == 404
    assert alice.get(f"/uploads/{fresh['id']}").status_code == 200
