"""Per-chat generation settings: the one place that knows each model's ranges, and how the
settings become the request's `generation_config` (google-genai's `GenerateContentConfig`
fields, which the worker hands to the SDK and the SDK sends as Gemini's `generationConfig`)."""

from dataclasses import dataclass
from typing import Any

from app.services.errors import Invalid

MAX_STOP_SEQUENCES = 5  # Gemini's own limit
MAX_STOP_SEQUENCE_CHARS = 100


@dataclass(frozen=True)
class ModelRanges:
    temperature: tuple[float, float] = (0.0, 2.0)
    top_p: tuple[float, float] = (0.0, 1.0)
    max_output_tokens: tuple[int, int] = (1, 8192)
    # None: the model does not think (no thinking budget, no thoughts).
    thinking_budget: tuple[int, int] | None = None
    # Whether a budget of 0 turns thinking off (2.5 Pro cannot stop thinking).
    thinking_off: bool = False


# Google's published ranges (ai.google.dev, "Thinking" and the model cards). -1 as a budget
# means "dynamic" (the model decides) wherever thinking exists.
_RANGES: dict[str, ModelRanges] = {
    "gemini-2.5-pro": ModelRanges(max_output_tokens=(1, 65536), thinking_budget=(128, 32768)),
    "gemini-2.5-flash-lite": ModelRanges(
        max_output_tokens=(1, 65536), thinking_budget=(512, 24576), thinking_off=True
    ),
    "gemini-2.5-flash": ModelRanges(
        max_output_tokens=(1, 65536), thinking_budget=(1, 24576), thinking_off=True
    ),
}
_OTHER = ModelRanges()


def ranges_for(model: str) -> ModelRanges:
    """The longest known name the model starts with (`gemini-2.5-flash-preview-…` is a flash)."""
    for name in sorted(_RANGES, key=len, reverse=True):
        if model.startswith(name):
            return _RANGES[name]
    return _OTHER


def describe(model: str) -> dict[str, Any]:
    """The ranges as the SPA shows them next to each field."""
    r = ranges_for(model)
    return {
        "temperature": list(r.temperature),
        "top_p": list(r.top_p),
        "max_output_tokens": list(r.max_output_tokens),
        "thinking_budget": list(r.thinking_budget) if r.thinking_budget else None,
        "thinking_off": r.thinking_off,
        "max_stop_sequences": MAX_STOP_SEQUENCES,
    }


def _budget_ok(r: ModelRanges, budget: int) -> bool:
    assert r.thinking_budget is not None
    low, high = r.thinking_budget
    return budget == -1 or (budget == 0 and r.thinking_off) or low <= budget <= high


def validate(settings: dict[str, Any], model: str) -> dict[str, Any]:
    """The settings, without unset fields, or Invalid (422) naming the first field out of the
    model's range."""
    r = ranges_for(model)
    clean = {k: v for k, v in settings.items() if v is not None}
    for name in ("temperature", "top_p", "max_output_tokens"):
        if name in clean:
            low, high = getattr(r, name)
            if not low <= clean[name] <= high:
                raise Invalid(f"settings.{name}: {model} accepts {low} to {high}")
    if "thinking_budget" in clean or clean.get("include_thoughts"):
        if r.thinking_budget is None:
            name = "thinking_budget" if "thinking_budget" in clean else "include_thoughts"
            raise Invalid(f"settings.{name}: {model} does not think")
        if "thinking_budget" in clean and not _budget_ok(r, clean["thinking_budget"]):
            low, high = r.thinking_budget
            off = ", 0 (off)" if r.thinking_off else ""
            raise Invalid(
                f"settings.thinking_budget: {model} accepts {low} to {high}, -1 (dynamic){off}"
            )
    if clean.get("include_thoughts") is False:
        del clean["include_thoughts"]
    stops = clean.get("stop_sequences")
    if stops is not None:
        if len(stops) > MAX_STOP_SEQUENCES:
            raise Invalid(f"settings.stop_sequences: at most {MAX_STOP_SEQUENCES}")
        if any(not s or len(s) > MAX_STOP_SEQUENCE_CHARS for s in stops):
            raise Invalid(
                f"settings.stop_sequences: each 1 to {MAX_STOP_SEQUENCE_CHARS} characters"
            )
        if not stops:
            del clean["stop_sequences"]
    return clean


def fit(settings: dict[str, Any] | None, model: str) -> dict[str, Any]:
    """The stored settings for the model that answers, which may not be the chat's own (a
    withdrawn model replies with GEMINI_MODEL): what that model would refuse is left out."""
    if not settings:
        return {}
    r = ranges_for(model)
    fitted = {}
    for name, value in settings.items():
        if name in ("temperature", "top_p", "max_output_tokens"):
            low, high = getattr(r, name)
            fitted[name] = min(max(value, low), high)
        elif name in ("thinking_budget", "include_thoughts"):
            if r.thinking_budget is not None and (
                name == "include_thoughts" or _budget_ok(r, value)
            ):
                fitted[name] = value
        else:
            fitted[name] = value
    return fitted


def generation_config(settings: dict[str, Any] | None, model: str) -> dict[str, Any]:
    """The request's `generation_config`: `GenerateContentConfig` fields (snake_case)."""
    fitted = fit(settings, model)
    config: dict[str, Any] = {
        name: fitted[name]
        for name in ("temperature", "top_p", "max_output_tokens", "stop_sequences")
        if name in fitted
    }
    thinking = {}
    if "thinking_budget" in fitted:
        thinking["thinking_budget"] = fitted["thinking_budget"]
    if fitted.get("include_thoughts"):
        thinking["include_thoughts"] = True
    if thinking:
        config["thinking_config"] = thinking
    return config
