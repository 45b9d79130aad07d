"""Recall of long-term memory on LoCoMo, through honeychat's own memory code.

Every conversation of a LoCoMo-format file is replayed turn by turn into the
real memory layers: a :class:`RedisHotStore` on an embedded valkey and a
:class:`ChromaColdStore` (bundled all-MiniLM-L6-v2 embeddings) on an embedded
Chroma, both in a temporary directory. The two speakers are the user and the
assistant; complete windows are summarized by the real :class:`Summarizer`.
Its summarize function is the configured LLM when there is one
(``LLM_BASE_URL`` or ``OPENROUTER_API_KEY``), else a stand-in backed by the
dataset: the ``observation`` facts whose turn falls in the window, one per
line, with the turns each line came from kept aside to score coverage.

Each question (category 5 and questions without evidence left out) is asked
at the end of its conversation. Its recall is the share of its evidence
turns covered by what memory puts in the prompt: the recent buffer (the same
for every strategy) plus the memory block, capped at 256, 512 and 1,024
tokens. Strategies:

``summary``       the product: ``MemoryService.context`` with its retrieval path
``message``       one document per message, vector search only, whole messages
``message_best``  one document per message, the product's retrieval path
``window``        one raw-text document per window, vector search, lines in order

plus the token cost of replaying the full history. The last line printed is
one JSON object with the recall figures, document counts and the tokenizer.

Usage::

    python bench/recall.py [DATA.json] [--conversations N] [--questions N]
                           [--strategies summary,message] [--ablation]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import chromadb

from honeychat.core.memory.cold import ChromaColdStore
from honeychat.core.memory.embeddings import make_embedding_function
from honeychat.core.memory.hot import RedisHotStore
from honeychat.core.memory.redis_server import EmbeddedRedis
from honeychat.core.memory.retrieval import RetrievalOptions, select, split_lines
from honeychat.core.memory.service import MemoryService
from honeychat.core.memory.summarizer import Summarizer, llm_summarize_fn
from honeychat.core.memory.tokens import TOKENIZER_NAME, count_tokens
from honeychat.core.settings import Settings
from honeychat.core.types import ConversationKey, Role, StoredMessage, Summary

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "locomo" / "locomo-dev.json"
BUDGETS = (256, 512, 1024)
STRATEGIES = ("summary", "message", "message_best", "window")
_DIA = re.compile(r"D(\d+):(\d+)")

MESSAGE_CANDIDATES = 100
"""Enough messages (about 25 tokens each) to fill the largest budget several times over."""


@dataclass(frozen=True, slots=True)
class Strategy:
    """A way of filling the memory block: which documents, and how they are retrieved."""

    name: str
    store: str
    """``summary`` (the product's cold store), ``message`` or ``window``."""
    options: RetrievalOptions
    k: int | None = None
    """At most this many documents in the prompt (``None``: as many as fit)."""


def strategies(settings: Settings, names: Sequence[str], ablation: bool) -> list[Strategy]:
    """The strategies to measure: the product and the baselines, and variants with ``ablation``."""
    product = product_options(settings)
    base = {
        "summary": Strategy("summary", "summary", product, settings.retrieval_k),
        "message": Strategy(
            "message",
            "message",
            RetrievalOptions(candidates=MESSAGE_CANDIDATES, hybrid=False, lines=False, dedupe=1.0),
        ),
        "message_best": Strategy(
            "message_best", "message", replace(product, candidates=MESSAGE_CANDIDATES)
        ),
        "window": Strategy(
            "window", "window", RetrievalOptions(hybrid=False, lines=True, dedupe=1.0)
        ),
    }
    chosen = [base[name] for name in names]
    if ablation:
        variants = {
            "vector,whole": replace(product, hybrid=False, lines=False),
            "hybrid,whole": replace(product, lines=False),
            "vector,lines": replace(product, hybrid=False),
            "no dedupe": replace(product, dedupe=1.0),
            "candidates 8": replace(product, candidates=8),
            "rrf_k 3": replace(product, rrf_k=3),
            "rrf_k 30": replace(product, rrf_k=30),
            "vector_weight 0.5": replace(product, vector_weight=0.5),
            "vector_weight 2": replace(product, vector_weight=2.0),
            "latest_share 0": replace(product, latest_share=0.0),
            "latest_share 0.25": replace(product, latest_share=0.25),
            "latest_share 1": replace(product, latest_share=1.0),
        }
        chosen += [Strategy(f"summary[{n}]", "summary", o) for n, o in variants.items()]
        chosen += [Strategy(f"summary[k={k}]", "summary", product, k) for k in (3, 8, None)]
        if "message_best" in names:
            chosen += [
                Strategy(f"message_best[{n}]", "message", replace(o, candidates=MESSAGE_CANDIDATES))
                for n, o in variants.items()
                if n in ("rrf_k 3", "rrf_k 30", "vector_weight 0.5", "vector_weight 2")
            ]
    return chosen


def product_options(settings: Settings) -> RetrievalOptions:
    """The retrieval options the product runs with under ``settings``."""
    return RetrievalOptions(candidates=settings.retrieval_candidates)


def dia_id(text: str) -> list[str]:
    """Normalized turn ids (``D3:7``) found in ``text``."""
    return [f"D{int(a)}:{int(b)}" for a, b in _DIA.findall(str(text))]


# The data


@dataclass(slots=True)
class Turn:
    dia_id: str
    speaker: str
    text: str
    at: datetime


@dataclass(slots=True)
class Question:
    text: str
    category: int
    evidence: list[str]


@dataclass(slots=True)
class Conversation:
    sample_id: str
    user: str
    assistant: str
    turns: list[Turn]
    facts: list[tuple[str, list[str]]]
    questions: list[Question]


def _session_time(text: str, fallback: datetime) -> datetime:
    for pattern in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y"):
        try:
            return datetime.strptime(text.strip(), pattern)
        except ValueError:
            continue
    return fallback


def load(path: Path) -> list[Conversation]:
    """The conversations of a LoCoMo-format file (``locomo10.json`` layout)."""
    samples = json.loads(path.read_text(encoding="utf-8"))
    conversations = []
    for sample in samples:
        raw = sample["conversation"]
        sessions = sorted(
            (int(m.group(1)), key)
            for key in raw
            if (m := re.fullmatch(r"session_(\d+)", key)) and isinstance(raw[key], list)
        )
        turns: list[Turn] = []
        clock = datetime(2023, 1, 1)
        for _number, key in sessions:
            start = _session_time(str(raw.get(f"{key}_date_time", "")), clock)
            clock = max(start, clock)
            for i, item in enumerate(raw[key]):
                ids = dia_id(item.get("dia_id", ""))
                if not ids:
                    continue
                text = " ".join(str(item.get("text", "")).split())
                if item.get("blip_caption"):
                    text += f" [shares a photo: {item['blip_caption']}]"
                turns.append(Turn(ids[0], item["speaker"], text, clock + timedelta(seconds=i)))
        facts = []
        for observations in (sample.get("observation") or {}).values():
            for per_speaker in observations.values():
                for entry in per_speaker:
                    fact, source = entry[0], entry[1] if len(entry) > 1 else ""
                    ids = dia_id(json.dumps(source))
                    if fact and ids:
                        facts.append((" ".join(str(fact).split()), ids))
        known = {t.dia_id for t in turns}
        questions = []
        for qa in sample.get("qa", []):
            evidence = [
                e for e in dict.fromkeys(dia_id(json.dumps(qa.get("evidence", [])))) if e in known
            ]
            if int(qa.get("category", 0)) == 5 or not evidence:
                continue
            questions.append(Question(str(qa["question"]), int(qa["category"]), evidence))
        conversations.append(
            Conversation(
                sample["sample_id"],
                raw["speaker_a"],
                raw["speaker_b"],
                turns,
                facts,
                questions,
            )
        )
    return conversations


# Summarizing


class Provenance:
    """Which turns each memory line covers, per conversation."""

    def __init__(self) -> None:
        self.lines: dict[str, set[str]] = defaultdict(set)
        self.windows: dict[str, set[str]] = {}

    def covered(self, summary: Summary, text: str, seq_to_dia: dict[int, str]) -> set[str]:
        """The turns covered by ``text`` (lines of ``summary`` that are in the prompt)."""
        if summary.doc_id in self.windows:  # a real LLM summary: the whole window
            return self.windows[summary.doc_id] if text.strip() else set()
        found: set[str] = set()
        for line in split_lines(text):
            found |= self.lines.get(line, set())
        return found


def standin_summarizer(
    conversation: Conversation, seq_to_dia: dict[int, str]
) -> Callable[[Sequence[StoredMessage], str], Awaitable[str]]:
    """The window's observation facts, one per line: what an LLM summary would say."""
    index = {t.dia_id: i for i, t in enumerate(conversation.turns)}

    async def summarize(messages: Sequence[StoredMessage], character_name: str) -> str:
        inside = {seq_to_dia[m.seq] for m in messages if m.seq in seq_to_dia}
        lines = [
            (index[ids[0]], fact)
            for fact, ids in conversation.facts
            if ids[0] in inside and ids[0] in index
        ]
        return "\n".join(fact for _, fact in sorted(lines))

    return summarize


# Strategies


@dataclass(slots=True)
class Result:
    recall: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    by_category: dict[int, dict[int, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    tokens: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    latency: list[float] = field(default_factory=list)
    documents: int = 0


class Bench:
    """One replay of a file into the memory layers, then the questions."""

    def __init__(
        self,
        root: Path,
        chosen: Sequence[Strategy],
        settings: Settings,
    ) -> None:
        self.root = root
        self.strategies = list(chosen)
        self.stores = {s.store for s in chosen}
        self.settings = settings
        self.options = product_options(settings)
        self.redis = EmbeddedRedis(root / "data")
        self.provenance = Provenance()
        self.llm: Any = None
        self.results = {s.name: Result() for s in self.strategies}
        self.history_tokens: list[int] = []
        self.buffer_recall: list[float] = []

    async def __aenter__(self) -> Bench:
        await self.redis.start_async()
        self.client = self.redis.async_client()
        self.chroma = chromadb.PersistentClient(path=str(self.root / "chroma"))
        self.embedding = make_embedding_function(self.settings)
        s = self.settings
        self.hot = RedisHotStore(
            self.client, prefix="hc", buffer_size=s.hot_buffer_size, ttl_seconds=86400.0
        )
        self.cold = ChromaColdStore(self.chroma, self.embedding, prefix="hc")
        self.messages = ChromaColdStore(self.chroma, self.embedding, prefix="msg")
        self.windows = ChromaColdStore(self.chroma, self.embedding, prefix="win")
        if s.llm_endpoint:
            from honeychat.core.llm import LLMClient

            self.llm = LLMClient(s)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.llm is not None:
            await self.llm.aclose()
        await self.client.aclose()
        await self.redis.release()

    def service(self, options: RetrievalOptions) -> MemoryService:
        return MemoryService(
            self.hot,
            self.cold,
            None,
            budget_tokens=self.settings.memory_budget_tokens,
            options=options,
        )

    async def replay(self, conversation: Conversation) -> tuple[ConversationKey, dict[int, str]]:
        key = ConversationKey("locomo", conversation.sample_id, "bench")
        seq_to_dia: dict[int, str] = {}
        window = self.settings.summary_window_messages
        if self.llm is not None:
            summarize = llm_summarize_fn(self.llm, self.settings.summarizer_model)
        else:
            summarize = standin_summarizer(conversation, seq_to_dia)
        summarizer = Summarizer(
            self.hot,
            self.cold,
            summarize,
            window=window,
            model=self.settings.summarizer_model if self.llm else "locomo-observations",
            character_name=lambda _: conversation.assistant,
        )
        service = MemoryService(self.hot, self.cold, summarizer)
        for turn in conversation.turns:
            role = Role.USER if turn.speaker == conversation.user else Role.ASSISTANT
            stored = await service.persist(key, role, turn.text, turn.at)
            assert stored is not None, "the hot store is unavailable"
            seq_to_dia[stored.seq] = turn.dia_id
            if "message" in self.stores:
                await self.messages.add(
                    Summary(
                        key.id,
                        f"{turn.speaker}: {turn.text}",
                        stored.seq,
                        stored.seq,
                        turn.at,
                        turn.at,
                    )
                )
            if stored.seq % window == 0:
                service.schedule_summary(key)
                await summarizer.wait_idle(600)
                if "window" in self.stores:
                    first = stored.seq - window + 1
                    lines = [
                        f"{t.speaker}: {t.text}" for t in conversation.turns[first - 1 : stored.seq]
                    ]
                    await self.windows.add(
                        Summary(key.id, "\n".join(lines), first, stored.seq, turn.at, turn.at)
                    )
        await summarizer.wait_idle(600)
        # Provenance of what the summarizer wrote.
        for summary in await self.cold.all(key.id):
            if self.llm is not None:
                self.provenance.windows[summary.doc_id] = {
                    seq_to_dia[q]
                    for q in range(summary.first_seq, summary.last_seq + 1)
                    if q in seq_to_dia
                }
        for fact, ids in conversation.facts:
            self.provenance.lines[fact] |= set(ids)
        counts = {
            "summary": len(await self.cold.all(key.id)),
            "message": len(conversation.turns),
            "window": len(conversation.turns) // window,
        }
        for strategy in self.strategies:
            self.results[strategy.name].documents += counts[strategy.store]
        self.history_tokens.append(
            sum(count_tokens(f"{t.speaker}: {t.text}") for t in conversation.turns)
        )
        return key, seq_to_dia

    async def ask(
        self,
        conversation: Conversation,
        key: ConversationKey,
        seq_to_dia: dict[int, str],
        questions: Sequence[Question],
    ) -> None:
        recent = self.settings.hot_buffer_size
        services = {
            s.name: self.service(s.options) for s in self.strategies if s.store == "summary"
        }
        buffer_only = self.service(self.options)
        for question in questions:
            evidence = set(question.evidence)
            for budget in BUDGETS:
                for strategy in self.strategies:
                    started = time.perf_counter()
                    if strategy.store == "summary":
                        context = await services[strategy.name].context(
                            key, question.text, recent=recent, k=strategy.k, budget=budget
                        )
                        shown = ([context.latest_summary] if context.latest_summary else []) + list(
                            context.relevant
                        )
                    else:
                        context = await buffer_only.context(key, question.text, recent=recent, k=0)
                        oldest = min((m.seq for m in context.recent), default=math.inf)
                        store = self.windows if strategy.store == "window" else self.messages
                        found = await store.search(
                            key.id, question.text, strategy.options.candidates
                        )
                        pool = [s for s in found if s.first_seq < oldest]
                        shown = select(
                            pool,
                            question.text,
                            budget,
                            count_tokens,
                            strategy.options,
                            max_documents=strategy.k,
                        )
                    elapsed = time.perf_counter() - started
                    buffered = {seq_to_dia[m.seq] for m in context.recent}
                    covered = set(buffered)
                    tokens = 0
                    for summary in shown:
                        tokens += sum(count_tokens(line) for line in split_lines(summary.text))
                        covered |= self._covered(strategy.store, summary, seq_to_dia, conversation)
                    result = self.results[strategy.name]
                    share = len(evidence & covered) / len(evidence)
                    result.recall[budget].append(share)
                    result.by_category[budget][question.category].append(share)
                    result.tokens[budget].append(tokens)
                    result.latency.append(elapsed)
                    if strategy is self.strategies[0] and budget == BUDGETS[0]:
                        self.buffer_recall.append(len(evidence & buffered) / len(evidence))

    def _covered(
        self, name: str, summary: Summary, seq_to_dia: dict[int, str], conversation: Conversation
    ) -> set[str]:
        if name == "summary":
            return self.provenance.covered(summary, summary.text, seq_to_dia)
        if name == "window":
            turns = conversation.turns[summary.first_seq - 1 : summary.last_seq]
            lines = set(split_lines(summary.text))
            return {t.dia_id for t in turns if f"{t.speaker}: {t.text}" in lines}
        return {seq_to_dia[summary.first_seq]}


# Reporting


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def report(bench: Bench, conversations: int, questions: int, elapsed: float) -> dict[str, Any]:
    results = bench.results
    mode = (
        f"LLM summaries ({bench.settings.summarizer_model})"
        if bench.llm
        else "dataset stand-in (observations)"
    )
    print(f"LoCoMo recall: {conversations} conversations, {questions} questions, summaries: {mode}")
    print(
        f"tokenizer: {TOKENIZER_NAME}; machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.python_version()}"
    )
    print(
        f"recent buffer alone covers {_mean(bench.buffer_recall):.3f} of the evidence (counted for every strategy)"
    )
    print()
    header = f"{'strategy':<26}{'docs':>7}" + "".join(f"{'R@' + str(b):>9}" for b in BUDGETS)
    header += "".join(f"{'tok@' + str(b):>9}" for b in BUDGETS) + f"{'p50 ms':>9}{'p99 ms':>9}"
    print(header)
    for name, result in results.items():
        row = f"{name:<26}{result.documents:>7}"
        row += "".join(f"{_mean(result.recall[b]):>9.3f}" for b in BUDGETS)
        row += "".join(f"{_mean(result.tokens[b]):>9.0f}" for b in BUDGETS)
        row += f"{_percentile(result.latency, 0.5) * 1000:>9.1f}{_percentile(result.latency, 0.99) * 1000:>9.1f}"
        print(row)
    history = _mean(bench.history_tokens)
    print(
        f"{'full history':<26}{'-':>7}{1.0:>9.3f}{1.0:>9.3f}{1.0:>9.3f}  replay costs {history:,.0f} tokens per question (mean per conversation)"
    )
    print()
    categories = sorted({c for r in results.values() for c in r.by_category[BUDGETS[0]]})
    print("recall by category at 512 tokens:")
    print(f"{'strategy':<26}" + "".join(f"{'cat ' + str(c):>9}" for c in categories))
    for name, result in results.items():
        print(
            f"{name:<26}"
            + "".join(f"{_mean(result.by_category[512][c]):>9.3f}" for c in categories)
        )
    counts = [len(results[next(iter(results))].by_category[512][c]) for c in categories]
    print(f"{'questions':<26}" + "".join(f"{n:>9}" for n in counts))
    if "summary" in results:
        summary = results["summary"]
        print()
        print("ratios of summary to the baselines:")
        for name in (n for n in STRATEGIES if n in results and n != "summary"):
            parts = []
            for b in BUDGETS:
                base = _mean(results[name].recall[b])
                parts.append(
                    f"recall@{b} x{_mean(summary.recall[b]) / base:.2f}"
                    if base
                    else f"recall@{b} -"
                )
            docs = summary.documents / results[name].documents if results[name].documents else 0
            print(f"  vs {name:<13}" + ", ".join(parts) + f", documents x{docs:.3f}")
        print(
            f"  vs full history: memory block at 512 = {_mean(summary.tokens[512]) / history:.3f} of the replay tokens"
        )
    print(f"elapsed {elapsed:.0f} s")
    return {
        "recall": {
            name: {str(b): round(_mean(r.recall[b]), 4) for b in BUDGETS}
            for name, r in results.items()
            if name in STRATEGIES
        },
        "documents": {name: r.documents for name, r in results.items() if name in STRATEGIES},
        "tokenizer": TOKENIZER_NAME,
    }


async def measure(
    path: Path,
    settings: Settings,
    names: Sequence[str] = STRATEGIES,
    *,
    conversations: int = 0,
    questions: int = 0,
    ablation: bool = False,
) -> dict[str, Any]:
    """Replay ``path`` and print the report; returns the figures of the last line.

    ``conversations`` and ``questions`` (per conversation) limit the run to
    the first ones (0: all).
    """
    if not await asyncio.to_thread(path.is_file):
        raise FileNotFoundError(
            f"no LoCoMo data at {path}: pass the path of a locomo10-format JSON file"
        )
    unknown = set(names) - set(STRATEGIES)
    if unknown:
        raise ValueError(
            f"unknown strategies {sorted(unknown)}; choose from {', '.join(STRATEGIES)}"
        )
    data = load(path)[: conversations or None]
    chosen = strategies(settings, names, ablation)
    started = time.perf_counter()
    asked = 0
    with tempfile.TemporaryDirectory(prefix="hc-recall-") as tmp:
        async with Bench(Path(tmp), chosen, settings) as bench:
            for conversation in data:
                key, seq_to_dia = await bench.replay(conversation)
                subset = conversation.questions[: questions or None]
                asked += len(subset)
                await bench.ask(conversation, key, seq_to_dia, subset)
            return report(bench, len(data), asked, time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "data", nargs="?", default=str(DEFAULT_DATA), help="a LoCoMo-format JSON file"
    )
    parser.add_argument("--conversations", type=int, default=0, help="only the first N (0: all)")
    parser.add_argument(
        "--questions", type=int, default=0, help="only the first N per conversation"
    )
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument(
        "--ablation", action="store_true", help="also measure variants of the retrieval options"
    )
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.strategies.split(",") if name.strip()]
    try:
        figures = asyncio.run(
            measure(
                Path(args.data),
                Settings(),
                names,
                conversations=args.conversations,
                questions=args.questions,
                ablation=args.ablation,
            )
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"recall: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
