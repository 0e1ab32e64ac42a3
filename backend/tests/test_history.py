"""The history budget of a request, on the pure function (the API-level test is in
test_messages.py)."""

from app.db.models import Message
from app.services.history import build_contents


def _chat(*turns: tuple[str, str, str]) -> list[Message]:
    return [Message(role=role, content=text, status=status) for role, text, status in turns]


def test_unfinished_replies_are_left_out() -> None:
    messages = _chat(
        ("user", "one", "completed"),
        ("assistant", "partial", "cancelled"),
        ("user", "two", "completed"),
        ("assistant", "", "failed"),
        ("user", "three", "completed"),
    )
    assert [t.text for t in build_contents(messages, 1000)] == ["one", "two", "three"]


def test_oldest_turns_go_first_and_the_newest_always_stays() -> None:
    messages = _chat(
        ("user", "a" * 40, "completed"),
        ("assistant", "b" * 40, "completed"),
        ("user", "c" * 40, "completed"),
        ("assistant", "d" * 40, "completed"),
        ("user", "e" * 40, "completed"),
    )
    assert [t.text[0] for t in build_contents(messages, 120)] == ["c", "d", "e"]
    # Dropping "c" alone would open with a model turn: that one goes too.
    assert [t.text[0] for t in build_contents(messages, 100)] == ["e"]
    assert [t.text[0] for t in build_contents(messages, 10)] == ["e"]
    assert [t.role for t in build_contents(messages, 1000)] == ["user", "model"] * 2 + ["user"]
