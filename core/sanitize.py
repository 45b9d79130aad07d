"""Text that can always be stored, encoded and sent: the boundary every message crosses.

A Python ``str`` can hold what UTF-8 cannot: lone surrogates, which is how
invalid bytes arrive when they were decoded with ``surrogateescape`` (a
terminal under the C locale) and how JSON's ``"\\ud800"`` decodes. Such a
string stored as-is makes every later JSON or HTTP encoding of the
conversation fail, so each one becomes U+FFFD (the replacement character)
before anything is stored. Surrogate *pairs* split into two code points are
joined back into the character they encode.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (valid text is returned as is)."""
    if not _SURROGATE.search(text):
        return text
    # UTF-16 joins a split pair back into one character; what is left alone is replaced.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
