"""One call that checks a Gemini key before it joins the pool: a models `get`, which costs no
generation quota. The backend has no Gemini client; this is the one REST call it makes."""

import logging
from dataclasses import dataclass

import httpx

from app.core.config import Settings

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 10.0

# Google's reasons, in the words of the contract's `disabled_reason`.
REASON_TEXT = {
    "key_invalid": "the key is not valid",
    "api_not_enabled": "the Generative Language API is not enabled for the key's project",
    "region": "Google does not serve the key's region (user location not supported)",
    "billing": "the key's project has a billing problem",
    "permission_denied": "Google denied the key (suspended or not allowed)",
}


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    reason: str | None = None  # a REASON_TEXT key when Google rejected the key
    detail: str | None = None  # Google's status and message, stripped of the key
    unreachable: bool = False  # Google did not answer: nothing is known about the key


def redact(text: str, key: str) -> str:
    return text.replace(key, "[key]") if key else text


def classify(status: int, body: object) -> str:
    """The contract's `disabled_reason` for a rejected key, from Google's error body."""
    error = body.get("error", {}) if isinstance(body, dict) else {}
    if not isinstance(error, dict):
        error = {}
    details = error.get("details") if isinstance(error.get("details"), list) else []
    reasons = {str(d.get("reason", "")) for d in details if isinstance(d, dict)}
    message = str(error.get("message", "")).lower()
    if "API_KEY_INVALID" in reasons or "api key not valid" in message or status == 401:
        return "key_invalid"
    if "SERVICE_DISABLED" in reasons or "has not been used in project" in message:
        return "api_not_enabled"
    if "location is not supported" in message or "region" in message:
        return "region"
    if "BILLING_DISABLED" in reasons or "billing" in message:
        return "billing"
    return "permission_denied"


def _rejects(status: int, body: object) -> bool:
    """Whether an answer says the key itself is refused (not the model, not the quota)."""
    if status in (401, 403):
        return True
    if status == 400:
        return classify(status, body) in ("key_invalid", "region")
    return False


async def probe(settings: Settings, key: str, model: str) -> ProbeResult:
    url = f"{settings.GEMINI_BASE_URL}/v1beta/models/{model}"
    try:
        async with httpx.AsyncClient(
            proxy=settings.HTTP_PROXY, timeout=PROBE_TIMEOUT_SECONDS, trust_env=False
        ) as client:
            answer = await client.get(url, headers={"x-goog-api-key": key})
    except httpx.HTTPError as error:
        # The exception text may hold the URL, never the key (it travels in a header).
        log.warning("key probe: Google unreachable (%s)", error.__class__.__name__)
        return ProbeResult(ok=False, unreachable=True)
    try:
        body = answer.json()
    except ValueError:
        body = {}
    # 429: the key is known and only busy; 404: the key passed, the model name did not.
    if answer.status_code < 400 or answer.status_code in (404, 429):
        return ProbeResult(ok=True)
    if not _rejects(answer.status_code, body):
        log.warning("key probe: Google answered %s", answer.status_code)
        return ProbeResult(ok=False, unreachable=True)
    error = body.get("error", {}) if isinstance(body, dict) else {}
    if not isinstance(error, dict):
        error = {}
    status = str(error.get("status") or answer.status_code)
    message = redact(str(error.get("message", "")), key)[:300]
    return ProbeResult(
        ok=False,
        reason=classify(answer.status_code, body),
        detail=f"{answer.status_code} {status}: {message}".strip(),
    )
