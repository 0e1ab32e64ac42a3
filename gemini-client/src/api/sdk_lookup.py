"""Makes `name in model` cheap for the google-genai SDK's models.

The SDK turns every request into JSON with `get_value_by_path`, which asks `name in model` before
reading each of a model's ~20-70 fields. pydantic answers `in` by iterating the model as
(name, value) pairs, so each question walks every field and the answer is always False for a
name: building one request cost O(fields²) per config and per history part, about half the CPU
of a call once a chat had 150 turns. Answered directly here, with pydantic's same result.
"""

from google.genai import _common


def _contains(self: _common.BaseModel, item: object) -> bool:
    # Iteration yields (name, value) tuples only: nothing else can be "in" a model.
    return isinstance(item, tuple) and item in iter(self)


def install() -> None:
    if "__contains__" not in vars(_common.BaseModel):  # a newer SDK may answer it itself
        _common.BaseModel.__contains__ = _contains  # type: ignore[method-assign]
