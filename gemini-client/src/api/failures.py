"""Sorting what went wrong with a Gemini call into what the key pool and retry logic do next."""

import re
from dataclasses import dataclass
from enum import Enum

import httpx
import pydantic
from google.genai import errors


class Blame(Enum):
    QUOTA = "quota"  # 429: cool this (key, model), try the next key at once
    KEY = "key"  # invalid or forbidden key: disable it, try the next one
    TRANSIENT = "transient"  # Google or the path to it: quick tries, then the retry queues
    FATAL = "fatal"  # the request itself: fail now, blame no key


@dataclass
class GeminiFailure(Exception):
    blame: Blame
    code: str  # short machine-readable code for the response's error.code
    message: str  # readable, never holds key text
    retry_after_s: float | None = None
    status: int | None = None  # the HTTP status Google answered, if it answered
    quota: str | None = None  # 429: "rpm", "rpd" or "tpm" from QuotaFailure; None: none named
    quota_model: str | None = None  # 429: QuotaFailure's quotaDimensions.model
    key_reason: str | None = None  # KEY: disabled_reason (docs/CONTRACTS.md)
    overloaded: bool = False  # 503: the model, not the key (may switch to a fallback model)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# Google API keys ("AIza" + 35 characters), should an upstream message quote one.
_GOOGLE_KEY = re.compile(r"AIza[0-9A-Za-z_\-]{35}")
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _details(exc: errors.APIError) -> list[dict]:
    body = exc.details if isinstance(exc.details, dict) else {}
    found = body.get("error", body).get("details")
    return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []


def retry_delay(exc: errors.APIError) -> float | None:
    """Google's `RetryInfo.retryDelay` ("12s", "0.5s") in seconds, if it sent one."""
    for detail in _details(exc):
        if detail.get("@type", "").endswith("google.rpc.RetryInfo"):
            match = _DELAY.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _reasons(exc: errors.APIError) -> set[str]:
    return {str(d.get("reason")) for d in _details(exc) if d.get("reason")}


def quota_violation(exc: errors.APIError) -> tuple[str | None, str | None]:
    """("rpm" | "rpd" | "tpm", model) from the 429's QuotaFailure, or (None, None)."""
    for detail in _details(exc):
        if not detail.get("@type", "").endswith("google.rpc.QuotaFailure"):
            continue
        for violation in detail.get("violations") or []:
            if not isinstance(violation, dict):
                continue
            quota_id = str(violation.get("quotaId", ""))
            dims = violation.get("quotaDimensions")
            model = dims.get("model") if isinstance(dims, dict) else None
            if "Token" in quota_id:
                kind = "tpm"
            elif "PerDay" in quota_id:
                kind = "rpd"
            else:
                kind = "rpm"
            return kind, model if isinstance(model, str) else None
    return None, None


def key_reason(exc: errors.APIError) -> str:
    """Why Google refused a key: key_invalid, api_not_enabled, region, billing or
    permission_denied."""
    reasons = _reasons(exc)
    text = (exc.message or "").lower()
    if "API_KEY_INVALID" in reasons or exc.code == 401 or "api key not valid" in text:
        return "key_invalid"
    if "SERVICE_DISABLED" in reasons or "has not been used in project" in text or (
        "is disabled" in text and "api" in text
    ):
        return "api_not_enabled"
    if "location is not supported" in text or "region" in text or "country" in text:
        return "region"
    if "BILLING_DISABLED" in reasons or "billing" in text:
        return "billing"
    return "permission_denied"


def _short(message: str | None, fallback: str) -> str:
    """The first line; cut to length only once redacted (a cut key would escape redaction)."""
    text = (message or fallback).strip().splitlines()[0] if (message or fallback) else fallback
    return text


MESSAGE_CHARS = 360


def redact(text: str, key: str) -> str:
    """`text` with the key (Google quotes it in some 403 messages) and any Google key removed,
    then cut to MESSAGE_CHARS: cutting first could leave part of a key that no longer matches."""
    if key:
        text = text.replace(key, "[key]")
    return _GOOGLE_KEY.sub("[key]", text)[:MESSAGE_CHARS]


def classify(exc: BaseException) -> GeminiFailure:
    if isinstance(exc, GeminiFailure):
        return exc
    if isinstance(exc, errors.APIError):
        code, status = exc.code or 0, exc.status or ""
        label = f"{code} {status}".strip()
        if code == 429:
            kind, model = quota_violation(exc)
            return GeminiFailure(
                Blame.QUOTA, "rate_limited", _short(exc.message, label), retry_delay(exc),
                status=code, quota=kind, quota_model=model,
            )
        region = status == "FAILED_PRECONDITION" and "location" in (exc.message or "").lower()
        if code in (401, 403) or "API_KEY_INVALID" in _reasons(exc) or region:
            return GeminiFailure(
                Blame.KEY, "key_rejected", _short(exc.message, label), status=code,
                key_reason=key_reason(exc),
            )
        if code >= 500 or code in (408,):
            return GeminiFailure(
                Blame.TRANSIENT, "upstream_unavailable",
                f"Gemini is unavailable ({label}): {_short(exc.message, 'no details')}",
                status=code, overloaded=code == 503,
            )
        if code == 404:
            return GeminiFailure(
                Blame.FATAL, "model_not_found", _short(exc.message, label), status=code
            )
        return GeminiFailure(Blame.FATAL, "bad_request", _short(exc.message, label), status=code)
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return GeminiFailure(Blame.TRANSIENT, "timeout", "Gemini did not answer in time")
    if isinstance(exc, httpx.ProxyError):
        return GeminiFailure(Blame.TRANSIENT, "proxy_error", "The proxy to Gemini failed")
    if isinstance(exc, httpx.TransportError | OSError | errors.UnknownApiResponseError):
        return GeminiFailure(
            Blame.TRANSIENT, "connection_error", f"Could not reach Gemini ({type(exc).__name__})"
        )
    if isinstance(exc, pydantic.ValidationError):
        return GeminiFailure(
            Blame.FATAL, "bad_request", f"Invalid generation settings: {exc.errors()[0]['msg']}"
        )
    # Anything else (an SDK surprise): retried through the queues, so it ends in the dead queue
    # rather than being redelivered forever.
    return GeminiFailure(
        Blame.TRANSIENT, "internal_error", f"Unexpected error calling Gemini ({type(exc).__name__})"
    )
