"""Lorebooks: entries of world knowledge inserted into the prompt when their keys come up.

The shape is Character Card V2's ``character_book`` (the same field names, so
a card's book round-trips unchanged). An entry fires when one of its ``keys``
appears in the scanned text: the last ``scan_depth`` messages of the
conversation, the current one included. A ``selective`` entry also needs one
of its ``secondary_keys``; a ``constant`` entry always fires. Fired entries
are kept within ``token_budget`` (higher ``priority`` first) and inserted in
``insertion_order``.

Keys are matched as plain text (case-insensitive unless ``case_sensitive``),
on word boundaries when the key starts or ends with a letter or digit. No
key is ever compiled as a regular expression, so no card can make a turn
hang on catastrophic backtracking.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from honeychat.core.memory.tokens import count_tokens

DEFAULT_SCAN_DEPTH = 2
"""Messages scanned when a book gives no ``scan_depth`` (the common front-end default)."""
DEFAULT_TOKEN_BUDGET = 512
"""Tokens fired entries may add to a turn's prompt when a book gives no ``token_budget``."""
MAX_ENTRIES = 10_000
MAX_SCAN_DEPTH = 100
MAX_RECURSION = 3
"""Passes over fired entries' content when ``recursive_scanning`` is on."""


class LorebookEntry(BaseModel):
    """One piece of knowledge and the keys that bring it into the prompt.

    Fields a card may add beyond these (``use_regex``, ``extensions`` of
    other front ends...) are kept as they are, for export.
    """

    model_config = {"extra": "allow"}

    keys: list[str] = Field(default_factory=list)
    content: str = ""
    enabled: bool = True
    insertion_order: int = 0
    """Lower is inserted earlier in its position's block."""
    case_sensitive: bool | None = None
    name: str | None = None
    priority: int | None = None
    """When the budget is exceeded, lower priority is dropped first."""
    id: int | str | None = None
    comment: str | None = None
    selective: bool | None = None
    """Also require one of ``secondary_keys``."""
    secondary_keys: list[str] | None = None
    constant: bool | None = None
    """Always inserted, whatever the messages say."""
    position: str | None = None
    """``before_char`` or ``after_char`` (the default): before or after the character's definition."""
    extensions: dict[str, Any] = Field(default_factory=dict)


class Lorebook(BaseModel):
    """A character's lorebook (Character Card V2 ``character_book``)."""

    model_config = {"extra": "allow"}

    name: str | None = None
    description: str | None = None
    scan_depth: int | None = Field(default=None, ge=0, le=MAX_SCAN_DEPTH)
    token_budget: int | None = Field(default=None, ge=0)
    recursive_scanning: bool | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)
    entries: list[LorebookEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)
    _index: _Index | None = PrivateAttr(default=None)

    def index(self) -> _Index:
        """The keys prepared for scanning, built on first use (a loaded book is not edited)."""
        if self._index is None:
            self._index = _Index(self)
        return self._index


@dataclass(frozen=True, slots=True)
class FiredEntry:
    """An entry inserted into one turn's prompt, and why."""

    index: int
    """Position of the entry in the book."""
    entry: LorebookEntry
    matched: tuple[str, ...]
    """The keys that matched (empty for a constant entry)."""
    tokens: int

    @property
    def label(self) -> str:
        return self.entry.name or self.entry.comment or f"entry {self.index}"

    def report(self) -> dict[str, Any]:
        """The provenance record stored in ``turn.extras["lorebook_fired"]``."""
        entry_id = self.entry.id if self.entry.id is not None else self.index
        return {
            "id": str(entry_id),
            "name": self.label,
            "keys": list(self.matched),
            "tokens": self.tokens,
        }


_WORD_RUN = re.compile(r"\w+")
"""Words of the scanned text: runs of letters, digits and '_' (a fixed pattern, linear time)."""


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"  # what \w matches


def _find_key(key: str, text: str) -> bool:
    """Whether ``key`` occurs in ``text``; word-like ends must sit on word boundaries."""
    check_start = _is_word_char(key[0])
    check_end = _is_word_char(key[-1])
    start = text.find(key)
    while start != -1:
        end = start + len(key)
        before_ok = not check_start or start == 0 or not _is_word_char(text[start - 1])
        after_ok = not check_end or end == len(text) or not _is_word_char(text[end])
        if before_ok and after_ok:
            return True
        start = text.find(key, start + 1)
    return False


@dataclass(frozen=True, slots=True)
class _Key:
    original: str
    text: str
    """Case-folded unless the entry is case-sensitive."""
    case_sensitive: bool
    word: bool
    """One word: it matches exactly when it is one of the text's words (a set lookup)."""
    first_word: str | None
    """For a key starting with a letter or digit: its first word, which the text must contain."""

    @classmethod
    def of(cls, key: str, case_sensitive: bool) -> _Key | None:
        key = key.strip()
        if not key:
            return None
        text = key if case_sensitive else key.casefold()
        first = _WORD_RUN.match(text)
        return cls(
            key,
            text,
            case_sensitive,
            first is not None and first.end() == len(text),
            first.group() if first else None,
        )


class _Text:
    """One scanned text, prepared once for all keys."""

    __slots__ = ("folded", "folded_words", "raw", "words")

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.folded = raw.casefold()
        self.words = set(_WORD_RUN.findall(raw))
        self.folded_words = set(_WORD_RUN.findall(self.folded))

    def has(self, key: _Key) -> bool:
        words = self.words if key.case_sensitive else self.folded_words
        if key.word:
            return key.text in words
        if key.first_word is not None and key.first_word not in words:
            return False  # a match would start on a word boundary with this whole word
        return _find_key(key.text, self.raw if key.case_sensitive else self.folded)


class _Index:
    """A book's keys prepared for scanning: one-word keys by word, the others in a list."""

    def __init__(self, book: Lorebook) -> None:
        self.by_word: dict[tuple[bool, str], list[tuple[int, int, _Key]]] = {}
        self.phrases: list[tuple[int, int, _Key]] = []
        self.constants: list[int] = []
        self.secondary: dict[int, list[_Key]] = {}
        for index, entry in enumerate(book.entries):
            if not entry.enabled or not entry.content.strip():
                continue
            if entry.constant:
                self.constants.append(index)
                continue
            sensitive = bool(entry.case_sensitive)
            for position, raw in enumerate(entry.keys):
                key = _Key.of(raw, sensitive)
                if key is None:
                    continue
                if key.word:
                    self.by_word.setdefault((sensitive, key.text), []).append(
                        (index, position, key)
                    )
                else:
                    self.phrases.append((index, position, key))
            if entry.selective and entry.secondary_keys:
                keys = [_Key.of(raw, sensitive) for raw in entry.secondary_keys]
                self.secondary[index] = [k for k in keys if k is not None]

    def matches(self, text: _Text) -> dict[int, list[str]]:
        """Entry index -> the primary and secondary keys found in ``text`` (key order)."""
        found: dict[int, list[tuple[int, str]]] = {}
        for sensitive, words in ((False, text.folded_words), (True, text.words)):
            for word in words:
                for index, position, key in self.by_word.get((sensitive, word), ()):
                    found.setdefault(index, []).append((position, key.original))
        for index, position, key in self.phrases:
            if text.has(key):
                found.setdefault(index, []).append((position, key.original))
        result: dict[int, list[str]] = {}
        for index, hits in found.items():
            keys = [key for _, key in sorted(hits)]
            if index in self.secondary:
                secondary = [k.original for k in self.secondary[index] if text.has(k)]
                if not secondary:
                    continue
                keys += secondary
            result[index] = keys
        return result


def scan(book: Lorebook | None, messages: Sequence[str]) -> list[FiredEntry]:
    """The entries that fire for ``messages`` (oldest first), in insertion order, within the budget."""
    if book is None or not book.entries:
        return []
    index = book.index()
    entries = book.entries
    depth = DEFAULT_SCAN_DEPTH if book.scan_depth is None else book.scan_depth
    text = "\n".join(messages[-depth:]) if depth else ""
    fired = {
        i: FiredEntry(i, entries[i], (), count_tokens(entries[i].content)) for i in index.constants
    }
    passes = 1 + (MAX_RECURSION if book.recursive_scanning else 0)
    kept: list[FiredEntry] = []
    pending = set(fired)  # constant entries' content is scanned with the first pass's
    for _ in range(passes):
        new = [
            FiredEntry(i, entries[i], tuple(keys), count_tokens(entries[i].content))
            for i, keys in sorted(index.matches(_Text(text)).items())
            if i not in fired
        ]
        fired.update((item.index, item) for item in new)
        kept = _within_budget(list(fired.values()), book)
        # Only entries that make it into the prompt trigger others, and each pass scans
        # only what the previous one added, so recursion stops when the budget is full.
        added = pending | {item.index for item in new}
        pending = set()
        text = "\n".join(item.entry.content for item in kept if item.index in added)
        if not text:
            break
    return kept


def _within_budget(fired: list[FiredEntry], book: Lorebook) -> list[FiredEntry]:
    budget = DEFAULT_TOKEN_BUDGET if book.token_budget is None else book.token_budget
    # Constant entries first, then higher priority, then earlier insertion order.
    ranked = sorted(
        fired,
        key=lambda f: (
            not f.entry.constant,
            -(f.entry.priority or 0),
            f.entry.insertion_order,
            f.index,
        ),
    )
    kept: list[FiredEntry] = []
    used = 0
    for item in ranked:
        if used + item.tokens > budget:
            continue
        kept.append(item)
        used += item.tokens
    return sorted(kept, key=lambda f: (f.entry.insertion_order, f.index))
