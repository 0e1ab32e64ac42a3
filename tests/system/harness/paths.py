"""Where the rest of the repository is, seen from the test suite."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GEMINI_CLIENT = ROOT / "gemini-client"
BACKEND = ROOT / "backend"
SCRIPTS = ROOT / "scripts"
REPORTS = ROOT / ".stack-reports"


def import_stack():
    """`scripts/stack.py`'s `Stack` (stdlib only, so it imports into this venv)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    from stack import Stack  # noqa: PLC0415

    return Stack
