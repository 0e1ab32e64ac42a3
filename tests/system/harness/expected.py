"""The stand-in's exact reply for a request, computed by the stand-in's own pure function
(`standin.replies.reply_text`) in the gemini-client's environment, so this suite never carries a
copy of it that could drift."""

from __future__ import annotations

import json
import subprocess

from .paths import GEMINI_CLIENT

_PROGRAM = """
import json, sys
from standin.replies import reply_text
out = []
for req in json.load(sys.stdin):
    users = [c["text"] for c in req["contents"] if c["role"] == "user"]
    out.append(reply_text(users[-1], turns=len(req["contents"]),
                          system_instruction=req.get("system_instruction") or None))
json.dump(out, sys.stdout)
"""


def expected_replies(requests: list[dict]) -> list[str]:
    """`requests`: `{"contents": [{"role", "text"}], "system_instruction"}` as the worker sends
    them upstream; returns the stand-in's text for each."""
    if not requests:
        return []
    done = subprocess.run(
        [str(GEMINI_CLIENT / ".venv/bin/python"), "-c", _PROGRAM],
        cwd=GEMINI_CLIENT,
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)
