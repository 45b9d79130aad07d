"""Lorebook scanning: entries fire only when their keys come up in the scanned messages."""

from __future__ import annotations

import time
from typing import Any

from honeychat.core.lorebook import Lorebook, scan


def book(*entries: dict[str, Any], **fields: Any) -> Lorebook:
    return Lorebook.model_validate({"entries": list(entries), **fields})


def fired(lore: Lorebook, *messages: str) -> list[str]:
    return [f.entry.content for f in scan(lore, list(messages))]


WOLF = {"keys": ["wolf", "wolves"], "content": "Wolves serve the king."}


def test_entry_fires_only_when_a_key_is_within_scan_depth() -> None:
    lore = book(WOLF, scan_depth=2)
    assert fired(lore, "I heard wolves last night", "ok") == ["Wolves serve the king."]
    # Three messages ago is outside a scan depth of 2.
    assert fired(lore, "I heard wolves", "ok", "fine") == []
    assert fired(lore, "nothing about animals") == []
    assert fired(book(WOLF, scan_depth=0), "wolves!") == []


def test_default_scan_depth_is_two_messages() -> None:
    assert fired(book(WOLF), "wolf", "a", "b") == []
    assert fired(book(WOLF), "wolf", "a") == ["Wolves serve the king."]


def test_keys_match_whole_words_case_insensitively_by_default() -> None:
    lore = book(WOLF)
    assert fired(lore, "A WOLF!") == ["Wolves serve the king."]
    assert fired(lore, "werewolfish behaviour") == []  # not a whole word
    sensitive = book({**WOLF, "keys": ["Wolf"], "case_sensitive": True})
    assert fired(sensitive, "a wolf") == []
    assert fired(sensitive, "Wolf pack") == ["Wolves serve the king."]


def test_selective_entries_need_a_secondary_key_too() -> None:
    lore = book({"keys": ["king"], "secondary_keys": ["shadow"], "selective": True, "content": "S"})
    assert fired(lore, "the king is here") == []
    assert fired(lore, "the king of shadow") == ["S"]
    # Without selective, secondary keys are not required.
    assert fired(
        book({"keys": ["king"], "secondary_keys": ["shadow"], "content": "K"}), "king"
    ) == ["K"]


def test_constant_and_disabled_entries() -> None:
    lore = book(
        {"keys": [], "constant": True, "content": "Always."},
        {**WOLF, "enabled": False},
    )
    assert fired(lore, "wolves everywhere") == ["Always."]


def test_budget_keeps_higher_priority_and_inserts_in_insertion_order() -> None:
    long_text = "word " * 40  # about 40 tokens each
    lore = book(
        {"keys": ["a"], "content": "A " + long_text, "priority": 1, "insertion_order": 1},
        {"keys": ["b"], "content": "B " + long_text, "priority": 9, "insertion_order": 3},
        {"keys": ["c"], "content": "C " + long_text, "priority": 5, "insertion_order": 2},
        token_budget=90,
    )
    result = fired(lore, "a b c")
    assert [text[0] for text in result] == ["C", "B"]  # A dropped (lowest priority)


def test_recursive_scanning_only_when_the_book_asks() -> None:
    entries = (
        {"keys": ["castle"], "content": "The castle belongs to Duke Aldric."},
        {"keys": ["aldric"], "content": "Aldric fears fire."},
    )
    assert fired(book(*entries), "the castle") == ["The castle belongs to Duke Aldric."]
    assert fired(book(*entries, recursive_scanning=True), "the castle") == [
        "The castle belongs to Duke Aldric.",
        "Aldric fears fire.",
    ]


def test_report_names_entries_and_matched_keys() -> None:
    lore = book({**WOLF, "name": "wolves", "id": 7}, {"keys": ["moon"], "content": "Full."})
    reports = [f.report() for f in scan(lore, ["wolf under the moon"])]
    assert reports[0] == {
        "id": "7",
        "name": "wolves",
        "keys": ["wolf"],
        "tokens": reports[0]["tokens"],
    }
    assert reports[0]["tokens"] > 0
    assert reports[1]["id"] == "1" and reports[1]["name"] == "entry 1"


def test_regex_looking_keys_are_plain_text_and_cannot_hang() -> None:
    evil = "(a+)+$"
    lore = book({"keys": [evil, "/(x+x+)+y/i"], "content": "E", "use_regex": True})
    started = time.perf_counter()
    assert fired(lore, "a" * 50_000 + "!") == []
    assert time.perf_counter() - started < 1.0
    assert fired(lore, "literally (a+)+$ here") == ["E"]


def test_recursion_stops_at_the_budget_and_starts_from_constants() -> None:
    chain = [
        {"keys": [f"k{i}"], "content": f"k{i + 1} " + "filler " * 20, "insertion_order": i}
        for i in range(50)
    ]
    lore = book(*chain, recursive_scanning=True, token_budget=60)
    result = scan(lore, ["k0"])
    assert 1 <= len(result) <= 3 and sum(f.tokens for f in result) <= 60
    constant = book(
        {"keys": [], "constant": True, "content": "See the castle."},
        {"keys": ["castle"], "content": "The castle is empty."},
        recursive_scanning=True,
    )
    assert fired(constant, "hello") == ["See the castle.", "The castle is empty."]
