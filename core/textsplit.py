"""Splitting long replies into platform-sized messages without breaking structure."""

from __future__ import annotations

import re
from collections.abc import Callable

_FENCE = "```"
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def _fence_open_at(text: str, index: int) -> bool:
    """Whether a ``` code fence is open at ``index`` of ``text``."""
    return text.count(_FENCE, 0, index) % 2 == 1


def _best_cut(text: str, limit: int) -> int:
    """The best index <= limit to cut ``text`` at, preferring paragraphs, then lines,
    then sentences, then spaces, and never inside a code fence when avoidable."""
    window = text[:limit]
    for pattern in ("\n\n", "\n"):
        cut = window.rfind(pattern)
        while cut > 0 and _fence_open_at(text, cut):
            cut = window.rfind(pattern, 0, cut)
        if cut > limit // 3:
            return cut + len(pattern)
    # Inside a long code block: cut at a line end; the fence is closed and reopened.
    cut = window.rfind("\n")
    if cut > limit // 3 and _fence_open_at(text, cut):
        return cut + 1
    sentence_cuts = [m.end() for m in _SENTENCE_END.finditer(window)]
    for cut in reversed(sentence_cuts):
        if cut > limit // 3 and not _fence_open_at(text, cut):
            return cut
    cut = window.rfind(" ")
    if cut > limit // 3:
        return cut + 1
    return limit


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Split Markdown ``text`` into chunks whose ``measure`` is at most ``limit``.

    Cuts fall on paragraph, line, sentence or word boundaries, outside code
    fences where possible. A code block longer than ``limit`` is closed at the
    cut and reopened in the next chunk, so every chunk renders on its own.
    ``measure`` lets an adapter count the length of the *formatted* text (for
    example after Markdown-to-HTML conversion); chunks are shrunk until they fit.
    """
    if limit < 16:
        raise ValueError("limit too small to split text sensibly")
    chunks: list[str] = []
    rest = text.strip()
    while rest:
        if measure(rest) <= limit:
            chunks.append(rest)
            break
        budget = min(len(rest), limit)
        while True:
            cut = _best_cut(rest, budget)
            head, tail = rest[:cut].rstrip(), rest[cut:].lstrip("\n ")
            if _fence_open_at(head + "\n", len(head) + 1):
                lang = _fence_language(head)
                head = head + "\n" + _FENCE
                tail = _FENCE + lang + "\n" + tail
            if measure(head) <= limit or budget <= 16:
                break
            budget = max(16, int(budget * 0.9))
        chunks.append(head)
        rest = tail.strip()
    return [chunk for chunk in chunks if chunk]


def _fence_language(text: str) -> str:
    """The language tag of the last opened code fence in ``text``."""
    start = text.rfind(_FENCE)
    line_end = text.find("\n", start)
    return text[start + len(_FENCE) : line_end if line_end != -1 else len(text)].strip()
