"""Model text made storable: PostgreSQL's text refuses U+0000, and a lone surrogate (which
Google's JSON can carry as `\\ud800`) is no UTF-8 at all, so Redis and PostgreSQL refuse both."""

import re

_REFUSED = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    # search first: almost every chunk is clean, and then no new string is built.
    return _REFUSED.sub("", text) if _REFUSED.search(text) else text
