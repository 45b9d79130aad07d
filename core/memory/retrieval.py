"""Choosing what long-term memory puts in the prompt, under a token budget.

One path serves the chat turn, ``honeychat memory search`` and the
inspector (all through :meth:`MemoryService.recall`):

1. the cold store returns ``candidates`` window documents, nearest by meaning first
   (each holds the window's summary lines and, by default, its messages verbatim
   after them, one line each: see ``Summary.summary_lines``),
   with the query's similarity to each of their lines (the cold store keeps
   a vector per line inside each summary's document, see ``line_vectors``);
2. each summary is split into its lines (the summarizer writes one fact per
   line), and every line is scored by reciprocal rank fusion of its own
   rank by vector similarity among the candidates' lines, its own BM25 rank
   against the query over the same lines, and (weighted by
   ``summary_weight``) its summary's vector rank. A summary without line
   vectors (written before they existed) lends its own similarity to its
   lines; when no candidate has them, the line's vector rank is its
   summary's rank, as before line vectors;
3. lines are taken best first while they fit in the budget (optionally
   skipping near-duplicates of taken lines: off by default, it did not
   change recall); the chosen lines of a summary are returned as that
   summary, in their original order.

BM25 is computed over the candidate set only, so it needs no index or
state besides what Chroma returns: several processes sharing one Chroma
server always agree. The choices (and what did not win) are measured by
``bench/recall.py``; see ``docs/performance.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from honeychat.core.types import Summary

TokenCounter = Callable[[str], int]

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves s t don ve ll re m d also get got really like""".split()
)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


def terms(text: str) -> tuple[str, ...]:
    """Lower-case content words of ``text``, lightly stemmed, for lexical matching.

    Cached: the same summary lines come back query after query.
    """
    return _terms(text)


@lru_cache(maxsize=65536)
def _terms(text: str) -> tuple[str, ...]:
    out = []
    for word in _WORD.findall(text.lower()):
        word = word.split("'", 1)[0]
        if word in _STOPWORDS or len(word) < 2:
            continue
        out.append(_stem(word))
    return tuple(out)


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    # A tiny suffix stripper: enough to match "paints"/"painted"/"painting".
    for suffix in ("ing", "edly", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # "swimm" -> "swim"
    return word


def split_lines(text: str) -> list[str]:
    """The lines of a summary, bullets removed, empty lines dropped."""
    lines = (_BULLET.sub("", line).strip() for line in text.splitlines())
    return [line for line in lines if line]


def bm25_scores(
    query: Sequence[str], documents: Sequence[tuple[str, ...]], *, k1: float = 1.2, b: float = 0.75
) -> list[float]:
    """Okapi BM25 of each tokenized document against the tokenized query."""
    n = len(documents)
    if n == 0 or not query:
        return [0.0] * n
    lengths = [len(doc) for doc in documents]
    average = sum(lengths) / n or 1.0
    wanted = set(query)
    idf = {}
    for term in wanted:
        frequency = sum(1 for doc in documents if term in doc)
        if frequency:
            idf[term] = math.log(1.0 + (n - frequency + 0.5) / (frequency + 0.5))
    scores = []
    for doc, length in zip(documents, lengths, strict=True):
        score = 0.0
        norm = k1 * (1 - b + b * length / average)
        for term, weight in idf.items():
            tf = doc.count(term)
            if tf:
                score += weight * tf * (k1 + 1) / (tf + norm)
        scores.append(score)
    return scores


@dataclass(frozen=True, slots=True)
class RetrievalOptions:
    """How memory is retrieved. The defaults are what ``bench/recall.py`` found best."""

    candidates: int = 32
    """Summaries fetched from the cold store by vector similarity."""
    hybrid: bool = True
    """Fuse BM25 over the candidates' lines with the vector ranks."""
    lines: bool = True
    """Fill the budget line by line rather than with whole summaries."""
    dedupe: float = 1.0
    """Skip a line whose word set overlaps a taken line's this much (Jaccard); 1 disables."""
    rrf_k: int = 5
    """The constant of reciprocal rank fusion: smaller trusts top ranks more."""
    vector_weight: float = 2.0
    """Weight of the (line's) vector rank against the lexical rank in the fusion."""
    line_vectors: bool = True
    """Rank lines by their own vector similarity when the candidates carry ``line_scores``."""
    summary_weight: float = 0.5
    """Weight of the summary's vector rank, added to the line ranks when lines have vectors."""
    latest_share: float = 0.0
    """Share of the budget the latest summary may take (its newest lines); 0 leaves it out
    of the prompt as such, its lines then compete with the other candidates."""


@dataclass(slots=True)
class _Unit:
    doc: int
    line: int
    text: str
    terms: tuple[str, ...]
    tokens: int
    score: float = 0.0


def _vector_ranks(
    candidates: Sequence[Summary], units: list[_Unit], options: RetrievalOptions
) -> None:
    """Give each unit its vector part of the fused score."""
    k = options.rrf_k + 1
    per_line = options.line_vectors and any(
        s.line_scores is not None and s.score is not None for s in candidates
    )
    if not per_line:
        for unit in units:
            unit.score = options.vector_weight / (k + unit.doc)
        return
    similarity = []
    for unit in units:
        summary = candidates[unit.doc]
        scores = summary.line_scores if options.lines else None
        if scores is not None and unit.line < len(scores):
            similarity.append(scores[unit.line])
        elif summary.score is not None:
            similarity.append(summary.score)  # no line vectors: the summary's own similarity
        else:
            similarity.append(-math.inf)
    order = sorted(range(len(units)), key=lambda i: -similarity[i])
    rank = 0
    for position, i in enumerate(order):
        if position and similarity[i] < similarity[order[position - 1]]:
            rank = position  # ties share the best rank
        units[i].score = options.vector_weight / (k + rank)
        if options.summary_weight:
            units[i].score += options.summary_weight / (k + units[i].doc)


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def newest_lines(summary: Summary, budget: int, count: TokenCounter) -> tuple[Summary, int]:
    """``summary`` cut to its newest lines that fit in ``budget``; and their tokens.

    Only the summarizer's lines count (the window's messages kept beside them are not a
    summary of what happened most recently).
    """
    summary = summary.without_messages()
    kept: list[str] = []
    used = 0
    for line in reversed(split_lines(summary.text)):
        tokens = count(line)
        if used + tokens > budget:
            break
        kept.append(line)
        used += tokens
    sources = summary.line_sources
    if sources is not None:
        sources = sources[len(sources) - len(kept) :] if kept else ()
    return (
        replace(summary, text="\n".join(reversed(kept)), line_scores=None, line_sources=sources),
        used,
    )


def select(
    candidates: Sequence[Summary],
    query: str,
    budget: int | None,
    count: TokenCounter,
    options: RetrievalOptions = RetrievalOptions(),
    *,
    max_documents: int | None = None,
) -> list[Summary]:
    """What of ``candidates`` (best first by vector) goes into the prompt.

    Returns summaries best first; with ``options.lines`` each one's text is
    only its chosen lines. Their texts' tokens (by ``count``) add up to at
    most ``budget`` (``None``: no limit, every candidate is ranked and kept
    whole). At most ``max_documents`` summaries are returned when given.
    """
    if not candidates:
        return []
    units: list[_Unit] = []
    for d, summary in enumerate(candidates):
        lines = split_lines(summary.text) if options.lines else [summary.text.strip()]
        for i, line in enumerate(lines):
            if line:
                units.append(_Unit(d, i, line, terms(line), 0))

    _vector_ranks(candidates, units, options)
    if options.hybrid:
        query_terms = terms(query)
        lexical = bm25_scores(query_terms, [u.terms for u in units])
        order = sorted((i for i, s in enumerate(lexical) if s > 0), key=lambda i: (-lexical[i], i))
        for rank, i in enumerate(order):
            units[i].score += 1.0 / (options.rrf_k + 1 + rank)
    # Ties keep the vector order and the order of lines within a summary.
    ranked = sorted(units, key=lambda u: (-u.score, u.doc, u.line))

    chosen: dict[int, list[_Unit]] = {}
    taken_terms: list[set[str]] = []
    left = budget
    for unit in ranked:
        if max_documents is not None and unit.doc not in chosen and len(chosen) >= max_documents:
            continue
        words = set(unit.terms)
        if options.dedupe < 1 and any(_jaccard(words, t) >= options.dedupe for t in taken_terms):
            continue
        if left is not None:
            unit.tokens = count(unit.text)
            if unit.tokens > left:
                continue
            left -= unit.tokens
        chosen.setdefault(unit.doc, []).append(unit)
        taken_terms.append(words)
        if left is not None and left <= 0:
            break

    result = []
    for d, picked in chosen.items():  # insertion order: best unit first
        summary = candidates[d]
        if options.lines:
            picked.sort(key=lambda u: u.line)
            text = "\n".join(u.text for u in picked)
            scores = summary.line_scores
            kept = None
            if scores is not None and all(u.line < len(scores) for u in picked):
                kept = tuple(scores[u.line] for u in picked)
            sources = summary.line_sources
            kept_sources = None
            if sources is not None and all(u.line < len(sources) for u in picked):
                kept_sources = tuple(sources[u.line] for u in picked)
            # Picked lines are in document order, so the summary's lines still come first.
            summary_lines = summary.summary_lines
            if summary_lines is not None:
                summary_lines = sum(1 for u in picked if u.line < summary_lines)
            summary = replace(
                summary,
                text=text,
                line_scores=kept,
                line_sources=kept_sources,
                summary_lines=summary_lines,
            )
        result.append(summary)
    return result


__all__ = [
    "RetrievalOptions",
    "TokenCounter",
    "bm25_scores",
    "newest_lines",
    "select",
    "split_lines",
    "terms",
]
