"""A member's contributions to a space's summaries, and the summaries without them."""

from __future__ import annotations

from dataclasses import replace

from honeychat.core.memory.retrieval import split_lines
from honeychat.core.types import Summary


def without_sources(summary: Summary, seqs: set[int]) -> Summary | None:
    """``summary`` without the lines that came from any message in ``seqs``.

    Returns ``summary`` itself when none of its lines did, ``None`` when
    nothing is left. A line whose provenance is unknown (no valid sources, or
    a summary written before provenance) is dropped when the summary's window
    holds one of ``seqs``: it may hold their words, and forgetting errs on the
    side of the member.
    """
    in_window = {n for n in seqs if summary.first_seq <= n <= summary.last_seq}
    if not in_window:
        return summary
    lines = split_lines(summary.text)
    sources = summary.line_sources
    if sources is None or len(sources) != len(lines):
        return None
    kept = [
        (line, source)
        for line, source in zip(lines, sources, strict=True)
        if source and not in_window.intersection(source)
    ]
    if len(kept) == len(lines):
        return summary
    if not kept:
        return None
    return replace(
        summary,
        text="\n".join(line for line, _ in kept),
        line_sources=tuple(source for _, source in kept),
        line_scores=None,
        score=None,
    )
