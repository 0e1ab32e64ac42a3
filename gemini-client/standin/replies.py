"""The stand-in's replies: a pure function of the prompt, so tests can predict them exactly."""

import hashlib

_WORDS = (
    "offline stand-in reply streamed in pieces so the whole pipeline can be watched "
    "working without a key from queue to browser every word here is chosen from the "
    "prompt hash and stays the same for the same prompt"
).split()
_FILLER_WORDS = 24


def reply_text(
    last_user_text: str, *, turns: int = 1, system_instruction: str | None = None
) -> str:
    """The complete reply the stand-in gives.

    `last_user_text` is the text of the last `user` entry of `contents`, `turns` the number of
    entries in `contents` (1 for the first message of a chat, 3 for the second, ...), and
    `system_instruction` the system instruction's text, if one was sent.
    """
    digest = hashlib.sha256(last_user_text.encode()).digest()
    filler = " ".join(_WORDS[digest[i % len(digest)] % len(_WORDS)] for i in range(_FILLER_WORDS))
    note = f"turn {turns}"
    if system_instruction:
        note += f", system: {system_instruction[:60]}"
    return f"Echo: {last_user_text}\n\n{filler.capitalize()}.\n\n({note})"


# What the backend's title request says first (backend/app/services/titles.py).
TITLE_INSTRUCTION_START = "You name conversations"


def title_text(question: str) -> str:
    """The title the stand-in gives a conversation whose first question is `question`."""
    words = [w.strip(".,;:!?\"'()[]") for w in question.split()]
    words = [w for w in words if w][:4]
    return "About " + " ".join(words) if words else "A quiet chat"


def thought_text(last_user_text: str) -> str:
    """The thought summary the stand-in sends before its answer when thoughts are asked for."""
    return (
        f"**Reading the question.** The user wrote \u201c{last_user_text[:80]}\u201d. "
        "An echo of it, then some filler, answers it."
    )


def split_chunks(text: str, count: int) -> list[str]:
    """Cuts `text` into `count` nearly equal pieces (fewer if the text is shorter)."""
    count = max(1, min(count, len(text) or 1))
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def count_tokens(text: str) -> int:
    """Google's rule of thumb: about four characters per token."""
    return max(1, (len(text) + 3) // 4) if text else 0


def files_note(last_turn_files: list[tuple[str, bytes]], total_files: int) -> str:
    """What the reply says of the inline files: for each of the last user turn's, its type,
    size and SHA-256 (so a test proves the exact bytes arrived), and how many the whole request
    carried (so a test sees older turns' files sent again, or left out). Empty without any."""
    if not total_files:
        return ""
    # A Markdown list, so that the SPA shows one file a line.
    lines = [
        f"- file {mime} {len(data)} bytes sha256:{hashlib.sha256(data).hexdigest()}"
        for mime, data in last_turn_files
    ]
    listed = "\n".join(lines) + "\n\n" if lines else ""
    return f"\n\n{listed}(inline files in the request: {total_files})"
