"""Google's JSON shapes for generateContent answers and google.rpc error bodies."""

import json
import math

_HELP = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}


def response_chunk(
    *,
    text: str | None,
    model: str,
    response_id: str,
    prompt_tokens: int,
    completion_tokens: int,
    finish_reason: str | None = None,
    thought: bool = False,
) -> dict:
    candidate: dict = {"index": 0}
    if text is not None:
        part: dict = {"text": text, "thought": True} if thought else {"text": text}
        candidate["content"] = {"parts": [part], "role": "model"}
    if finish_reason:
        candidate["finishReason"] = finish_reason
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": completion_tokens,
            "totalTokenCount": prompt_tokens + completion_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        },
        "modelVersion": model,
        "responseId": response_id,
    }


def blocked_prompt(*, model: str, response_id: str, prompt_tokens: int) -> dict:
    return {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
        "modelVersion": model,
        "responseId": response_id,
    }


def sse(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\r\n\r\n"


def error_body(code: int, status: str, message: str, details: list | None = None) -> dict:
    error: dict = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def quota_exceeded(
    model: str, limit: int, retry_delay_s: float | None, per: str = "Minute"
) -> dict:
    """Google's 429 for a per-minute or per-day (`per="Day"`) quota of the key and model; without
    `retry_delay_s`, no RetryInfo (as some of Google's 429s)."""
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
        "* Quota exceeded for metric: generativelanguage.googleapis.com/"
        f"generate_content_free_tier_requests, limit: {limit}, model: {model}"
    )
    details: list[dict] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/"
                    "generate_content_free_tier_requests",
                    "quotaId": f"GenerateRequestsPer{per}PerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": str(limit),
                }
            ],
        },
        _HELP,
    ]
    if retry_delay_s is not None:
        message += f"\nPlease retry in {retry_delay_s:.6f}s."
        seconds = max(1, math.ceil(retry_delay_s))
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"}
        )
    return error_body(429, "RESOURCE_EXHAUSTED", message, details)


def throttled() -> dict:
    """The 429 Google sends when it throttles an IP or project: no QuotaFailure, no RetryInfo."""
    return error_body(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")


def api_not_enabled() -> dict:
    return error_body(403, "PERMISSION_DENIED", (
        "Generative Language API has not been used in project 123456789 before or it is "
        "disabled. Enable it by visiting https://console.developers.google.com/apis/api/"
        "generativelanguage.googleapis.com/overview?project=123456789 then retry."
    ), [{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }])


def billing_disabled() -> dict:
    return error_body(403, "PERMISSION_DENIED", (
        "This API method requires billing to be enabled. Please enable billing on project "
        "#123456789 then retry."
    ), [{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "BILLING_DISABLED",
        "domain": "googleapis.com",
    }])


def region_unsupported() -> dict:
    return error_body(400, "FAILED_PRECONDITION", "User location is not supported for the API use.")


def model_info(model: str) -> dict:
    """One entry of `GET /v1beta/models` (the fields the SDK's `Model` reads)."""
    return {
        "name": f"models/{model}", "version": "001", "displayName": model,
        "description": "Offline stand-in model.", "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
    }


def api_key_invalid() -> dict:
    message = "API key not valid. Please pass a valid API key."
    return error_body(
        400,
        "INVALID_ARGUMENT",
        message,
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": message,
            },
        ],
    )


def permission_denied(key: str | None = None) -> dict:
    if key is None:
        message = (
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API."
        )
    else:
        # Google names the key itself in this message: a client must not pass it on as is.
        message = f"Permission denied: Consumer 'api_key:{key}' has been suspended."
    return error_body(403, "PERMISSION_DENIED", message)


def unavailable() -> dict:
    return error_body(
        503, "UNAVAILABLE", "The model is overloaded. Please try again later."
    )


def internal() -> dict:
    return error_body(
        500, "INTERNAL", "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting"
    )


def bad_request(message: str) -> dict:
    return error_body(400, "INVALID_ARGUMENT", message)


def model_not_found(model: str, method: str) -> dict:
    return error_body(
        404,
        "NOT_FOUND",
        f"models/{model} is not found for API version v1beta, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods.",
    )
