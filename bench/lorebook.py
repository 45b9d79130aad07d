"""Lorebook scan time per turn with a 2,000-entry book, against the same prompt without a book.

Run: ``python bench/lorebook.py`` (options: ``--entries``, ``--turns``, ``--seed``,
``--scan-depth``, ``--recursive``). A generated book (seeded) has entries of 1-3
keys drawn from a 6,000-word vocabulary, some two-word keys, 5% selective
entries, 2% case-sensitive, 3 constant entries, and 15-40 words of content
each (the budget is 512 tokens). Each turn is a generated conversation window (messages of 5-120 words
from the same vocabulary; 2% are 8,000-character messages, the longest
``MAX_MESSAGE_CHARS`` allows), so entries fire as they would in a chat.

For every turn, in the same loop (same machine state), it times:

- baseline: ``prompt.assemble`` for the character without a lorebook;
- with book: ``prompt.assemble`` for the same character with the book
  (scanning, budgeting and inserting included);
- scan alone: ``lorebook.scan``, in wall time and in the thread's CPU time
  (what the scan itself costs, without the time other processes on this
  shared machine take the CPU away).

The order of the two assemblies alternates between turns. Token counts are
cached per text (as in production), so entries that fired before are cheaper;
the first pass over the turns is a warm-up and is not reported. Prints a table
and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from honeychat.core.characters import Character
from honeychat.core.lorebook import Lorebook, scan
from honeychat.core.prompt import assemble
from honeychat.core.types import MemoryContext, Role, StoredMessage

SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ren",
    "tho",
    "va",
    "zu",
    "el",
    "dor",
    "fin",
    "gar",
    "is",
    "qu",
    "sa",
]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def make_book(
    rng: random.Random, words: list[str], entries: int, scan_depth: int, recursive: bool
) -> Lorebook:
    items: list[dict[str, Any]] = []
    for i in range(entries):
        keys = [rng.choice(words) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.1:
            keys.append(f"{rng.choice(words)} {rng.choice(words)}")
        item: dict[str, Any] = {
            "id": i,
            "keys": keys,
            "content": " ".join(rng.choice(words) for _ in range(rng.randint(15, 40))) + ".",
            "insertion_order": rng.randint(0, 100),
            "priority": rng.randint(0, 10),
            "enabled": True,
        }
        if rng.random() < 0.05:
            item["selective"] = True
            item["secondary_keys"] = [rng.choice(words)]
        if rng.random() < 0.02:
            item["case_sensitive"] = True
            item["keys"] = [k.capitalize() for k in keys]
        if i < 3:
            item["constant"] = True
            item["content"] = item["content"][:80]
        items.append(item)
    return Lorebook.model_validate(
        {
            "entries": items,
            "scan_depth": scan_depth,
            "token_budget": 512,
            "recursive_scanning": recursive,
        }
    )


def message(rng: random.Random, words: list[str]) -> str:
    if rng.random() < 0.02:
        text = ""
        while len(text) < 8000:
            text += rng.choice(words) + " "
        return text[:8000]
    return " ".join(rng.choice(words) for _ in range(rng.randint(5, 120)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--scan-depth", type=int, default=4)
    parser.add_argument("--recursive", action="store_true")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    words = vocabulary(rng, 6000)
    book = make_book(rng, words, args.entries, args.scan_depth, args.recursive)
    base = {
        "id": "bench",
        "name": "Bench",
        "persona": "You are Bench, a patient narrator of a large fantasy world. " * 4,
        "greeting": "Hello.",
        "scenario": "{{user}} explores the world with {{char}}.",
        "mes_example": "<START>\n{{user}}: Hi\n{{char}}: Welcome, traveller.",
    }
    plain = Character.model_validate(base)
    with_book = Character.model_validate({**base, "lorebook": book})
    now = datetime.now(UTC)
    turns = []
    for _ in range(args.turns):
        history = [
            StoredMessage(
                seq=i,
                role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
                text=message(rng, words),
                at=now,
            )
            for i in range(12)
        ]
        turns.append((MemoryContext(recent=history), message(rng, words)))

    def timed(character: Character, context: MemoryContext, text: str) -> float:
        started = time.perf_counter()
        assemble(character, context, text, user_name="Ada")
        return time.perf_counter() - started

    for context, text in turns:  # warm-up: imports, tokenizer, token-count cache
        timed(plain, context, text)
        timed(with_book, context, text)

    baseline, booked, scanned, scanned_cpu, fired = [], [], [], [], []
    for i, (context, text) in enumerate(turns):
        if i % 2:
            booked.append(timed(with_book, context, text))
            baseline.append(timed(plain, context, text))
        else:
            baseline.append(timed(plain, context, text))
            booked.append(timed(with_book, context, text))
        messages = [m.text for m in context.recent] + [text]
        started, cpu_started = time.perf_counter(), time.thread_time()
        result = scan(book, messages)
        scanned.append(time.perf_counter() - started)
        scanned_cpu.append(time.thread_time() - cpu_started)
        fired.append(len(result))

    def ms(values: list[float], q: float | None = None) -> float:
        return 1000 * (statistics.median(values) if q is None else percentile(values, q))

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    rows = [
        ("prompt without a book (baseline)", ms(baseline), ms(baseline, 0.99)),
        ("prompt with the book", ms(booked), ms(booked, 0.99)),
        ("scan alone", ms(scanned), ms(scanned, 0.99)),
        ("scan alone, CPU time of the thread", ms(scanned_cpu), ms(scanned_cpu, 0.99)),
    ]
    print(
        f"{args.entries} entries, scan depth {args.scan_depth}, recursive {args.recursive}, "
        f"{args.turns} turns (after a warm-up pass), seed {args.seed}"
    )
    print(
        f"machine: {platform.machine()} {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (shared)"
    )
    print(f"{'':36} {'median':>10} {'p99':>10}")
    for label, median, p99 in rows:
        print(f"{label:36} {median:>8.3f}ms {p99:>8.3f}ms")
    extra_median = ms(booked) - ms(baseline)
    print(f"book's cost per turn (median, with - without): {extra_median:.3f} ms")
    print(
        f"ratio with/without book: median {ms(booked) / ms(baseline):.2f}x, p99 {ms(booked, 0.99) / ms(baseline, 0.99):.2f}x"
    )
    print(f"entries fired per turn: median {statistics.median(fired)}, max {max(fired)}")
    print(
        json.dumps(
            {
                "entries": args.entries,
                "turns": args.turns,
                "scan_depth": args.scan_depth,
                "recursive": args.recursive,
                "baseline_median_ms": round(ms(baseline), 3),
                "baseline_p99_ms": round(ms(baseline, 0.99), 3),
                "with_book_median_ms": round(ms(booked), 3),
                "with_book_p99_ms": round(ms(booked, 0.99), 3),
                "scan_median_ms": round(ms(scanned), 3),
                "scan_p99_ms": round(ms(scanned, 0.99), 3),
                "scan_cpu_median_ms": round(ms(scanned_cpu), 3),
                "scan_cpu_p99_ms": round(ms(scanned_cpu, 0.99), 3),
                "fired_median": statistics.median(fired),
                "load_average": [round(x, 2) for x in load],
            }
        )
    )


if __name__ == "__main__":
    main()
