"""Recall of long-term memory, measured fairly, through honeychat's own memory code.

Every conversation of a file is replayed message by message into the real
memory layers: a :class:`RedisHotStore` on an embedded valkey and a
:class:`ChromaColdStore` (bundled all-MiniLM-L6-v2 embeddings) on an embedded
Chroma, in a temporary directory. Complete windows are summarized by the real
:class:`Summarizer`, whose answers are parsed by the product's own
``summary_from_answer`` (one fact per line with its source message numbers).
The summarize function is the configured LLM when there is one
(``LLM_BASE_URL`` or ``OPENROUTER_API_KEY``), else a stand-in labelled
"oracle facts, capped": the file's facts whose (last) evidence message falls
in the window, whole facts in order while they fit in the summarizer's own
word limit (``SUMMARY_MAX_WORDS``), each with its evidence messages inside the
window as its sources. A file without facts gets the window's messages
verbatim, capped the same way.

Input: a LoCoMo-format file (``locomo10.json`` layout) or the operator format
(``{"conversations": [{"id", "user", "assistant", "messages": [{"id", "role",
"text", "at"?}], "facts"?: [{"text", "evidence"}], "questions": [{"question",
"evidence", "category"?}]}]}``, see ``docs/performance.md``).

Each question is asked after its conversation. Its recall is the share of its
evidence messages covered by the prompt: the recent buffer (the same for every
strategy) plus the memory block, capped at 256, 512 and 1,024 tokens.
Coverage is credited by content only, for every strategy: a line in the
prompt credits exactly the messages it came from (its ``line_sources``; a
summary line without valid provenance credits nothing). Strategies:

``summary``       the product: one document per window holding the summary's
                  lines and the window's messages verbatim (``MEMORY_KEEP_MESSAGES``,
                  the default), each line with its own vector; its candidates,
                  fusion and selection (the figure at shipped settings is
                  checked against ``MemoryService.context``)
``summary-only``  the product's code with ``MEMORY_KEEP_MESSAGES=false`` (the
                  layout before #15): the same summaries, without the messages
``message``       one document per message, vector search only
``message_best``  one document per message, the product's retrieval path
``window``        one raw-text document per window, vector search, lines

Candidate coverage is the same for every strategy: the product fetches
``RETRIEVAL_CANDIDATES`` windows; when that is every window of a conversation
the baselines search every document ("all"), else the same fraction of their
documents. Fusion weights of ``summary`` and ``message_best`` are tuned by
rotation (each conversation in turn is held out; the weights are chosen on
the others, by mean recall at 256 and 512 tokens) and the held-out figures
are reported. Every figure has a bootstrap 95% interval over questions.

``--long N`` adds a generated conversation of N messages with planted facts
(``honeychat.testing.synthetic``), where candidate limits matter.

The last line printed is one JSON object with the figures and the rules.

Usage::

    python bench/recall.py [DATA.json] [--conversations N] [--questions N]
                           [--strategies summary,message,...] [--long N] [--no-tune]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import chromadb
import numpy as np

from honeychat.core.jobs import Jobs
from honeychat.core.memory.cold import ChromaColdStore
from honeychat.core.memory.embeddings import make_embedding_function
from honeychat.core.memory.hot import RedisHotStore
from honeychat.core.memory.redis_server import EmbeddedRedis
from honeychat.core.memory.retrieval import RetrievalOptions, select, split_lines
from honeychat.core.memory.service import MemoryService
from honeychat.core.memory.summarizer import SUMMARY_MAX_WORDS, Summarizer, llm_summarize_fn
from honeychat.core.memory.tokens import TOKENIZER_NAME, count_tokens
from honeychat.core.settings import Settings
from honeychat.core.types import ConversationKey, Role, StoredMessage, Summary
from honeychat.testing import synthetic

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "locomo" / "locomo-dev.json"
BUDGETS = (256, 512, 1024)
TUNED_ON = (256, 512)
STRATEGIES = ("summary", "summary-only", "message", "message_best", "window")
BOOTSTRAP = 2000
LOCOMO_CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
_DIA = re.compile(r"D(\d+):(\d+)")

MESSAGE_FUSION = {"rrf_k": 5, "vector_weight": 1.0, "summary_weight": 0.0}
"""``message_best``'s weights before tuning (a message is one line: line vectors change nothing)."""

GRIDS: dict[str, list[dict[str, Any]]] = {
    "summary": [
        {"rrf_k": r, "vector_weight": v, "summary_weight": s}
        for r, v, s in itertools.product((3, 5, 10), (1.0, 2.0, 3.0), (0.0, 0.5, 1.0))
    ],
    "summary-only": [
        {"rrf_k": r, "vector_weight": v, "summary_weight": s}
        for r, v, s in itertools.product((3, 5, 10), (1.0, 2.0, 3.0), (0.0, 0.5, 1.0))
    ],
    "message_best": [
        {"rrf_k": r, "vector_weight": v, "summary_weight": 0.0}
        for r, v in itertools.product((3, 5, 10, 20), (0.5, 0.75, 1.0, 1.5, 2.0))
    ],
}
"""The fusion settings tried when tuning by rotation (the same kind of grid for both)."""


@dataclass(frozen=True, slots=True)
class Strategy:
    """A way of filling the memory block: which documents, and how they are retrieved."""

    name: str
    store: str
    """``summary`` (the product's cold store), ``message`` or ``window``."""
    options: RetrievalOptions
    k: int | None = None
    """At most this many documents in the prompt (``None``: as many as fit)."""
    exhaustive: bool = False
    """Search every document whatever the product's candidate limit (long case variants)."""


def strategies(settings: Settings, names: Sequence[str], *, long: bool) -> list[Strategy]:
    """The strategies to measure; the long case adds exhaustive-candidate variants."""
    product = RetrievalOptions(candidates=settings.retrieval_candidates)
    base = {
        "summary": Strategy("summary", "summary", product, settings.retrieval_k),
        "message": Strategy("message", "message", RetrievalOptions(hybrid=False, lines=False)),
        "message_best": Strategy("message_best", "message", replace(product, **MESSAGE_FUSION)),
        "window": Strategy("window", "window", RetrievalOptions(hybrid=False, lines=True)),
        "summary-only": Strategy("summary-only", "summary_only", product, settings.retrieval_k),
    }
    chosen = [base[name] for name in names]
    if long:
        chosen += [
            replace(base[n], name=f"{n}[all candidates]", exhaustive=True)
            for n in ("summary", "summary-only", "message_best")
            if n in names
        ]
    return chosen


def dia_id(text: str) -> list[str]:
    """Normalized LoCoMo turn ids (``D3:7``) found in ``text``."""
    return [f"D{int(a)}:{int(b)}" for a, b in _DIA.findall(str(text))]


# The data


@dataclass(slots=True)
class Turn:
    dia_id: str
    speaker: str
    role: Role
    text: str
    at: datetime


@dataclass(slots=True)
class Question:
    text: str
    category: str
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
    """The conversations of a LoCoMo-format or operator-format file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "conversations" in data:
        return [load_operator(c) for c in data["conversations"]]
    if isinstance(data, list):
        return [load_locomo(sample) for sample in data]
    raise ValueError(f"{path}: neither a LoCoMo list nor an object with 'conversations'")


def load_operator(raw: dict[str, Any]) -> Conversation:
    """One conversation of the operator format (see the module docstring)."""
    cid = str(raw.get("id") or "conversation")
    user, assistant = str(raw.get("user") or "User"), str(raw.get("assistant") or "Assistant")
    clock = datetime(2026, 1, 1)
    turns = []
    for i, m in enumerate(raw["messages"]):
        role = Role(str(m.get("role", "user")))
        at = datetime.fromisoformat(m["at"]).replace(tzinfo=None) if m.get("at") else clock
        clock = max(clock, at) + timedelta(seconds=1)
        text = " ".join(str(m.get("text", "")).split())
        if not text:
            continue
        name = user if role is Role.USER else assistant
        turns.append(Turn(str(m.get("id", f"m{i + 1}")), name, role, text, clock))
    known = {t.dia_id for t in turns}
    facts = [
        (" ".join(str(f["text"]).split()), [str(e) for e in f["evidence"] if str(e) in known])
        for f in raw.get("facts") or []
    ]
    questions = []
    for q in raw.get("questions") or []:
        evidence = [str(e) for e in dict.fromkeys(q.get("evidence") or []) if str(e) in known]
        if evidence:
            questions.append(Question(str(q["question"]), str(q.get("category", "")), evidence))
    return Conversation(cid, user, assistant, turns, [f for f in facts if f[1]], questions)


def load_locomo(sample: dict[str, Any]) -> Conversation:
    """One sample of a ``locomo10.json``-format file (category 5 and no-evidence left out)."""
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
            role = Role.USER if item["speaker"] == raw["speaker_a"] else Role.ASSISTANT
            turns.append(Turn(ids[0], item["speaker"], role, text, clock + timedelta(seconds=i)))
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
        category = int(qa.get("category", 0))
        if category == 5 or not evidence:
            continue
        questions.append(
            Question(str(qa["question"]), LOCOMO_CATEGORIES.get(category, str(category)), evidence)
        )
    return Conversation(
        sample["sample_id"], raw["speaker_a"], raw["speaker_b"], turns, facts, questions
    )


# Summarizing without an LLM


def standin_summarizer(
    conversation: Conversation, seq_to_dia: dict[int, str], max_words: int
) -> Callable[[Sequence[StoredMessage], str], Awaitable[str]]:
    """Oracle facts, capped: the window's facts in the summarizer's own answer format.

    A fact belongs to the window of its last evidence message (when all of it
    has been said); its sources are its evidence messages inside the window.
    Whole facts are kept in order while they fit in ``max_words``. Without
    facts, the window's messages verbatim stand in, capped the same way.
    """
    index = {t.dia_id: i for i, t in enumerate(conversation.turns)}
    facts = [(f, ids) for f, ids in conversation.facts if all(e in index for e in ids)]

    async def summarize(messages: Sequence[StoredMessage], character_name: str) -> str:
        seq_of = {seq_to_dia[m.seq]: m.seq for m in messages if m.seq in seq_to_dia}
        if facts or conversation.facts:
            picked = sorted(
                (index[max(ids, key=index.__getitem__)], fact, ids)
                for fact, ids in facts
                if max(ids, key=index.__getitem__) in seq_of
            )
            lines = [(fact, [seq_of[e] for e in ids if e in seq_of]) for _, fact, ids in picked]
        else:
            lines = [
                (f"{'User' if m.role is Role.USER else character_name}: {m.text}", [m.seq])
                for m in messages
            ]
        out, words = [], 0
        for text, sources in lines:
            size = len(text.split())
            if words + size > max_words:
                break
            words += size
            out.append(f"{text} [{', '.join(map(str, sorted(sources)))}]")
        return "\n".join(out)

    return summarize


# Replaying and asking


@dataclass(slots=True)
class Case:
    """One question with everything needed to score any retrieval setting offline."""

    conversation: int
    question: Question
    evidence: set[str]
    buffered: set[str]
    pools: dict[str, list[Summary]]
    seq_to_dia: dict[int, str]


@dataclass(slots=True)
class Storage:
    documents: int = 0
    vectors: int = 0
    bytes: int = 0


class Bench:
    """One replay of a set of conversations into the memory layers, then the questions."""

    def __init__(self, root: Path, chosen: Sequence[Strategy], settings: Settings) -> None:
        self.root = root
        self.strategies = list(chosen)
        self.stores = {s.store for s in chosen}
        self.settings = settings
        self.redis = EmbeddedRedis(root / "data")
        self.llm: Any = None
        self.cases: list[Case] = []
        self.storage: dict[str, Storage] = defaultdict(Storage)
        self.history_tokens: list[int] = []
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.message_candidates: list[int | str] = []
        self.product_candidates = settings.retrieval_candidates
        self.context_checked = 0

    async def __aenter__(self) -> Bench:
        await self.redis.start_async()
        self.client = self.redis.async_client()
        self.chroma = chromadb.PersistentClient(path=str(self.root / "chroma"))
        self.embedding = make_embedding_function(self.settings)
        s = self.settings
        self.hot = RedisHotStore(
            self.client, prefix="hc", buffer_size=s.hot_buffer_size, ttl_seconds=86400.0
        )
        self.cold = ChromaColdStore(
            self.chroma, self.embedding, prefix="hc", keep_messages=s.memory_keep_messages
        )
        self.messages = ChromaColdStore(self.chroma, self.embedding, prefix="msg")
        self.windows = ChromaColdStore(self.chroma, self.embedding, prefix="win")
        self.summary_only = ChromaColdStore(
            self.chroma, self.embedding, prefix="so", keep_messages=False
        )
        if s.llm_endpoint:
            from honeychat.core.llm import LLMClient

            self.llm = LLMClient(s)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.llm is not None:
            await self.llm.aclose()
        await self.client.aclose()
        await self.redis.release()

    @property
    def mode(self) -> str:
        if self.llm is not None:
            return f"LLM summaries ({self.settings.summarizer_model}), scored by line provenance"
        return f"oracle facts, capped at {SUMMARY_MAX_WORDS} words per window"

    async def replay(self, conversation: Conversation) -> tuple[ConversationKey, dict[int, str]]:
        key = ConversationKey("bench", conversation.sample_id, "bench")
        seq_to_dia: dict[int, str] = {}
        window = self.settings.summary_window_messages
        if self.llm is not None:
            summarize = llm_summarize_fn(self.llm, self.settings.summarizer_model)
        else:
            summarize = standin_summarizer(conversation, seq_to_dia, SUMMARY_MAX_WORDS)
        # Summaries are jobs: a queue and a worker of this replay's own.
        jobs = Jobs(self.client, prefix=f"hcjobs-{key.digest}", poll_seconds=0.1)
        summarizer = Summarizer(
            self.hot,
            self.cold,
            summarize,
            jobs=jobs,
            window=window,
            model=self.settings.summarizer_model if self.llm else "oracle-facts-capped",
            character_name=lambda _: conversation.assistant,
            idle_seconds=None,
        )
        await jobs.start_worker(concurrency=1)
        service = MemoryService(self.hot, self.cold, summarizer)
        message_docs: list[Summary] = []
        for turn in conversation.turns:
            stored = await service.persist(key, turn.role, turn.text, turn.at, speaker=turn.speaker)
            assert stored is not None, "the hot store is unavailable"
            seq_to_dia[stored.seq] = turn.dia_id
            line = f"{turn.speaker}: {turn.text}"
            if "message" in self.stores:
                message_docs.append(
                    Summary(
                        key.id,
                        line,
                        stored.seq,
                        stored.seq,
                        turn.at,
                        turn.at,
                        line_sources=((stored.seq,),),
                    )
                )
                if len(message_docs) >= 256:
                    await self.messages.add_many(message_docs)
                    message_docs = []
            if stored.seq % window == 0:
                await service.schedule_summary(key)
                await summarizer.wait_idle(600)
                if "window" in self.stores:
                    first = stored.seq - window + 1
                    turns = conversation.turns[first - 1 : stored.seq]
                    await self.windows.add(
                        Summary(
                            key.id,
                            "\n".join(f"{t.speaker}: {t.text}" for t in turns),
                            first,
                            stored.seq,
                            turn.at,
                            turn.at,
                            line_sources=tuple((first + i,) for i in range(len(turns))),
                        )
                    )
                if "summary_only" in self.stores:
                    # The same summary through the product's cold store, messages dropped.
                    latest = await self.cold.latest(key.id)
                    if latest is not None and latest.last_seq == stored.seq:
                        await self.summary_only.add(latest)
        await summarizer.wait_idle(600)
        await jobs.close()
        await self.messages.add_many(message_docs)
        for store, cold in (("summary", self.cold), ("message", self.messages)):
            if store in self.stores:
                self._measure_storage(store, cold, key)
        if "window" in self.stores:
            self._measure_storage("window", self.windows, key)
        if "summary_only" in self.stores:
            self._measure_storage("summary_only", self.summary_only, key)
        self.history_tokens.append(
            sum(count_tokens(f"{t.speaker}: {t.text}") for t in conversation.turns)
        )
        return key, seq_to_dia

    def _measure_storage(self, store: str, cold: ChromaColdStore, key: ConversationKey) -> None:
        """Documents, stored vectors (document + line vectors) and bytes of one conversation.

        Bytes: document text, metadata as stored (line vectors are int8 there)
        and 4 bytes per dimension of the document's own float32 vector.
        """
        try:
            collection = self.chroma.get_collection(cold.collection_name(key.id))
        except Exception:
            return
        found = collection.get(
            where={"conversation": key.id}, include=["documents", "metadatas", "embeddings"]
        )
        usage = self.storage[store]
        for document, metadata, vector in zip(
            found["documents"] or [], found["metadatas"] or [], found["embeddings"], strict=True
        ):
            lines = len(split_lines(document or ""))
            usage.documents += 1
            usage.vectors += 1 + (lines if lines > 1 else 0)
            usage.bytes += len((document or "").encode())
            usage.bytes += len(json.dumps(metadata).encode()) + 4 * len(vector)

    async def ask(
        self,
        index: int,
        conversation: Conversation,
        key: ConversationKey,
        seq_to_dia: dict[int, str],
        questions: Sequence[Question],
    ) -> None:
        s = self.settings
        product = next((x for x in self.strategies if x.name == "summary"), None)
        service = MemoryService(
            self.hot, self.cold, None, options=product.options if product else RetrievalOptions()
        )
        windows = max(1, len(await self.cold.all(key.id)))
        # What MemoryService.context fetches for the product (k + 2 when k is given).
        k = product.k if product else None
        n_summary = s.retrieval_candidates if k is None else max(k + 2, s.retrieval_candidates)
        share = min(1.0, n_summary / windows)
        messages = len(conversation.turns)
        raw_windows = max(1, messages // s.summary_window_messages)
        n_message = messages if share >= 1 else max(1, math.ceil(share * messages))
        n_window = raw_windows if share >= 1 else max(1, math.ceil(share * raw_windows))
        total = {
            "summary": windows,
            "message": messages,
            "window": raw_windows,
            "summary_only": windows,
        }
        self.message_candidates.append("all" if share >= 1 else n_message)
        self.product_candidates = n_summary
        for question in questions:
            context = await service.context(key, question.text, recent=s.hot_buffer_size, k=0)
            oldest = min((m.seq for m in context.recent), default=math.inf)
            pools: dict[str, list[Summary]] = {}
            for strategy in self.strategies:
                store = {
                    "summary": self.cold,
                    "message": self.messages,
                    "window": self.windows,
                    "summary_only": self.summary_only,
                }[strategy.store]
                if strategy.exhaustive:
                    n = total[strategy.store]
                else:
                    n = {"summary": n_summary, "message": n_message, "summary_only": n_summary}.get(
                        strategy.store, n_window
                    )
                pool_key = f"{strategy.store}:{n}"
                if pool_key not in pools:
                    started = time.perf_counter()
                    found = await store.search(key.id, question.text, n)
                    self.latency[pool_key.split(":")[0]].append(time.perf_counter() - started)
                    pools[pool_key] = [x for x in found if x.first_seq < oldest]
            case = Case(
                index,
                question,
                set(question.evidence),
                {seq_to_dia[m.seq] for m in context.recent},
                pools,
                seq_to_dia,
            )
            self.cases.append(case)
            if product is not None:
                await self._check_product_path(service, key, case, product)

    async def _check_product_path(
        self, service: MemoryService, key: ConversationKey, case: Case, product: Strategy
    ) -> None:
        """The offline scoring of ``summary`` equals what ``MemoryService.context`` returns."""
        for budget in BUDGETS:
            context = await service.context(
                key,
                case.question.text,
                recent=self.settings.hot_buffer_size,
                k=product.k,
                budget=budget,
            )
            shown = ([context.latest_summary] if context.latest_summary else []) + list(
                context.relevant
            )
            online = covered(shown, case.seq_to_dia) | case.buffered
            offline = coverage(case, product, product.options, budget, self.settings)
            assert online == offline, (case.question.text, budget, online ^ offline)
        self.context_checked += 1


def covered(shown: Sequence[Summary], seq_to_dia: dict[int, str]) -> set[str]:
    """The messages the lines of ``shown`` came from (content only: a line credits its sources)."""
    found: set[str] = set()
    for summary in shown:
        for sources in summary.line_sources or ():
            found.update(seq_to_dia[q] for q in sources if q in seq_to_dia)
    return found


def pool_for(case: Case, strategy: Strategy, settings: Settings) -> list[Summary]:
    prefix = f"{strategy.store}:"
    keys = sorted(
        (k for k in case.pools if k.startswith(prefix)), key=lambda k: int(k[len(prefix) :])
    )
    return case.pools[keys[-1] if strategy.exhaustive else keys[0]]


def coverage(
    case: Case, strategy: Strategy, options: RetrievalOptions, budget: int, settings: Settings
) -> set[str]:
    shown = select(
        pool_for(case, strategy, settings),
        case.question.text,
        budget,
        count_tokens,
        options,
        max_documents=strategy.k,
    )
    return covered(shown, case.seq_to_dia) | case.buffered


def recalls(
    cases: Sequence[Case],
    strategy: Strategy,
    options: RetrievalOptions,
    budget: int,
    settings: Settings,
) -> list[float]:
    return [
        len(c.evidence & coverage(c, strategy, options, budget, settings)) / len(c.evidence)
        for c in cases
    ]


# Statistics


def interval(values: Sequence[float], seed: int = 7) -> tuple[float, float]:
    """Bootstrap 95% interval of the mean of ``values`` (resampling questions)."""
    if not values:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    data = np.asarray(values, dtype=float)
    means = data[rng.integers(0, len(data), (BOOTSTRAP, len(data)))].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def ratio_interval(a: Sequence[float], b: Sequence[float], seed: int = 7) -> tuple[float, float]:
    """Paired bootstrap 95% interval of ``mean(a) / mean(b)`` (same questions)."""
    rng = np.random.default_rng(seed)
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    picks = rng.integers(0, len(x), (BOOTSTRAP, len(x)))
    ratios = x[picks].mean(axis=1) / np.maximum(y[picks].mean(axis=1), 1e-12)
    return (float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5)))


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _fmt(values: Sequence[float]) -> str:
    low, high = interval(values)
    return f"{_mean(values):.3f} [{low:.3f}-{high:.3f}]"


# Tuning by rotation


def rotation(
    bench: Bench, strategy: Strategy, conversations: int
) -> tuple[list[dict[str, Any]], dict[int, list[float]]]:
    """Leave one conversation out: tune on the others, score the held-out one.

    Returns the chosen settings per fold and the held-out recall of every
    question (in ``bench.cases`` order) per budget.
    """
    grid = GRIDS[strategy.name.split("[")[0]]
    by_conversation: dict[int, list[Case]] = defaultdict(list)
    for case in bench.cases:
        by_conversation[case.conversation].append(case)
    # Recall of every question under every setting, at the tuning budgets.
    table: dict[tuple[int, int], dict[int, list[float]]] = {}
    for g, settings in enumerate(grid):
        options = replace(strategy.options, **settings)
        for c, cases in by_conversation.items():
            table[g, c] = {
                b: recalls(cases, strategy, options, b, bench.settings) for b in TUNED_ON
            }
    folds = []
    held: dict[int, list[float]] = {b: [] for b in BUDGETS}
    for out in range(conversations):
        train = [c for c in by_conversation if c != out]

        def objective(g: int, train: list[int] = train) -> float:
            values = [v for c in train for b in TUNED_ON for v in table[g, c][b]]
            return _mean(values)

        best = max(range(len(grid)), key=lambda g: (objective(g), -g))
        options = replace(strategy.options, **grid[best])
        folds.append({"held_out": out, "settings": grid[best], "train_recall": objective(best)})
        for b in BUDGETS:
            held[b] += recalls(by_conversation[out], strategy, options, b, bench.settings)
        folds[-1]["held_out_recall"] = {
            b: _mean(recalls(by_conversation[out], strategy, options, b, bench.settings))
            for b in BUDGETS
        }
    return folds, held


# Reporting


def report(
    bench: Bench, data: Sequence[Conversation], title: str, tune: bool, elapsed: float
) -> dict[str, Any]:
    s = bench.settings
    cases = bench.cases
    print(f"== {title}: {len(data)} conversations, {len(cases)} questions")
    print(f"summaries: {bench.mode}")
    candidates = sorted(set(map(str, bench.message_candidates)))
    print(
        f"rules: product fetches {bench.product_candidates} windows (windows of "
        f"{s.summary_window_messages} messages); baselines search the same share of their "
        f"documents: per-message candidates {', '.join(candidates)}; a line credits only the "
        f"messages it came from; recent buffer {s.hot_buffer_size} messages for every strategy"
    )
    load = os.getloadavg()
    print(
        f"tokenizer: {TOKENIZER_NAME}; machine: {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}, load average {load[0]:.2f} {load[1]:.2f}"
    )
    buffer = [len(c.evidence & c.buffered) / len(c.evidence) for c in cases]
    print(f"recent buffer alone covers {_mean(buffer):.3f} of the evidence")
    print(
        f"product path checked: offline scoring == MemoryService.context on "
        f"{bench.context_checked} questions x {len(BUDGETS)} budgets"
    )
    print()
    shipped: dict[str, dict[int, list[float]]] = {}
    print("shipped settings, all questions (mean recall [bootstrap 95% interval]):")
    print(
        f"{'strategy':<28}{'docs':>7}{'vectors':>9}{'KB':>8}"
        + "".join(f"{'R@' + str(b):>22}" for b in BUDGETS)
    )
    for strategy in bench.strategies:
        shipped[strategy.name] = {
            b: recalls(cases, strategy, strategy.options, b, s) for b in BUDGETS
        }
        usage = bench.storage[strategy.store]
        print(
            f"{strategy.name:<28}{usage.documents:>7}{usage.vectors:>9}{usage.bytes / 1024:>8.0f}"
            + "".join(f"{_fmt(shipped[strategy.name][b]):>22}" for b in BUDGETS)
        )
    history = _mean(bench.history_tokens)
    print(f"{'full history':<28}{'-':>7}  replays {history:,.0f} tokens per question")
    for store, values in bench.latency.items():
        print(
            f"search latency {store}: p50 {_percentile(values, 0.5) * 1000:.1f} ms, "
            f"p99 {_percentile(values, 0.99) * 1000:.1f} ms (one cold-store search, with the "
            "query embedding)"
        )
    figures: dict[str, Any] = {
        "recall": {n: {str(b): round(_mean(v[b]), 4) for b in BUDGETS} for n, v in shipped.items()},
        "interval": {
            n: {str(b): [round(x, 4) for x in interval(v[b])] for b in BUDGETS}
            for n, v in shipped.items()
        },
        "documents": {st.name: bench.storage[st.store].documents for st in bench.strategies},
        "vectors": {st.name: bench.storage[st.store].vectors for st in bench.strategies},
        "bytes": {st.name: bench.storage[st.store].bytes for st in bench.strategies},
    }
    pairs = [
        (a, b)
        for a, b in (
            ("summary", "message_best"),
            ("summary-only", "message_best"),
            ("summary", "message"),
            ("summary", "summary-only"),
            ("summary[all candidates]", "message_best[all candidates]"),
        )
        if a in shipped and b in shipped
    ]
    for a, b in pairs:
        print(
            f"  {a} / {b}: "
            + ", ".join(
                f"@{x} x{_mean(shipped[a][x]) / max(_mean(shipped[b][x]), 1e-12):.3f} "
                f"[{'-'.join(f'{r:.3f}' for r in ratio_interval(shipped[a][x], shipped[b][x]))}]"
                for x in BUDGETS
            )
        )
    categories = sorted({c.question.category for c in cases})
    print("recall by category at 512 tokens:")
    print(f"{'strategy':<28}" + "".join(f"{c[:12]:>13}" for c in categories))
    for name, values in shipped.items():
        row = f"{name:<28}"
        for category in categories:
            picked = [
                v
                for v, c in zip(values[512], cases, strict=True)
                if c.question.category == category
            ]
            row += f"{_mean(picked):>13.3f}"
        print(row)
    print(
        f"{'questions':<28}"
        + "".join(f"{sum(c.question.category == x for c in cases):>13}" for x in categories)
    )

    tunable = [st for st in bench.strategies if st.name in GRIDS]
    if tune and len(data) >= 2 and tunable:
        print()
        print(
            f"tuned by rotation (each conversation held out in turn; fusion settings chosen on "
            f"the others by mean recall at {' and '.join(map(str, TUNED_ON))} tokens; "
            f"grids: {', '.join(f'{n} {len(g)} settings' for n, g in GRIDS.items())}):"
        )
        held_out: dict[str, dict[int, list[float]]] = {}
        per_fold: dict[str, list[dict[str, Any]]] = {}
        for strategy in tunable:
            folds, held = rotation(bench, strategy, len(data))
            held_out[strategy.name], per_fold[strategy.name] = held, folds
            for fold in folds:
                print(
                    f"  {strategy.name:<14} held out {data[fold['held_out']].sample_id:<12} "
                    f"settings {fold['settings']} -> "
                    + ", ".join(f"R@{b} {fold['held_out_recall'][b]:.3f}" for b in BUDGETS)
                )
        print(f"{'held-out (pooled)':<28}" + "".join(f"{'R@' + str(b):>22}" for b in BUDGETS))
        for name, held in held_out.items():
            print(f"{name:<28}" + "".join(f"{_fmt(held[b]):>22}" for b in BUDGETS))
        print(f"{'mean of the folds':<28}")
        for name, folds in per_fold.items():
            print(
                f"{name:<28}"
                + "".join(
                    f"{_mean([f['held_out_recall'][b] for f in folds]):>22.3f}" for b in BUDGETS
                )
            )
        figures["held_out"] = {
            n: {
                str(b): round(_mean([f["held_out_recall"][b] for f in per_fold[n]]), 4)
                for b in BUDGETS
            }
            for n in per_fold
        }
        figures["held_out_interval"] = {
            n: {str(b): [round(x, 4) for x in interval(h[b])] for b in BUDGETS}
            for n, h in held_out.items()
        }
        figures["folds"] = {
            n: [
                {"held_out": data[f["held_out"]].sample_id, "settings": f["settings"]}
                for f in folds
            ]
            for n, folds in per_fold.items()
        }
        for name, label in (
            ("summary", "held_out_ratio"),
            ("summary-only", "held_out_ratio_summary_only"),
        ):
            if {name, "message_best"} <= held_out.keys():
                a, b = held_out[name], held_out["message_best"]
                figures[label] = {}
                for x in BUDGETS:
                    low, high = ratio_interval(a[x], b[x])
                    value = _mean(a[x]) / max(_mean(b[x]), 1e-12)
                    figures[label][str(x)] = [round(value, 4), round(low, 4), round(high, 4)]
                    print(
                        f"  held-out {name} / message_best @{x}: x{value:.3f} [{low:.3f}-{high:.3f}]"
                    )
    elif tune:
        print("(tuning by rotation needs at least two conversations: shipped settings only)")
    figures["baseline"] = {
        "message_candidates": "all" if candidates == ["all"] else bench.message_candidates,
        "product_candidates": bench.product_candidates,
        "standin": None if bench.llm else "oracle facts, capped",
        "standin_max_words": None if bench.llm else SUMMARY_MAX_WORDS,
    }
    figures["tokenizer"] = TOKENIZER_NAME
    print(f"elapsed {elapsed:.0f} s")
    print()
    return figures


async def run(
    data: Sequence[Conversation],
    settings: Settings,
    chosen: Sequence[Strategy],
    *,
    questions: int,
    title: str,
    tune: bool,
) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hc-recall-") as tmp:
        async with Bench(Path(tmp), chosen, settings) as bench:
            for index, conversation in enumerate(data):
                key, seq_to_dia = await bench.replay(conversation)
                subset = conversation.questions[: questions or None]
                await bench.ask(index, conversation, key, seq_to_dia, subset)
            return report(bench, data, title, tune, time.perf_counter() - started)


async def measure(
    path: Path | None,
    settings: Settings,
    names: Sequence[str] = STRATEGIES,
    *,
    conversations: int = 0,
    questions: int = 0,
    long: int = 0,
    tune: bool = True,
) -> dict[str, Any]:
    """Replay ``path`` (and a generated ``long``-message conversation) and print the report.

    Returns the figures of the last line. ``conversations`` and ``questions``
    (per conversation) limit the run to the first ones (0: all).
    """
    unknown = set(names) - set(STRATEGIES)
    if unknown:
        raise ValueError(
            f"unknown strategies {sorted(unknown)}; choose from {', '.join(STRATEGIES)}"
        )
    figures: dict[str, Any] = {}
    if path is not None:
        if not await asyncio.to_thread(path.is_file):
            raise FileNotFoundError(
                f"no data at {path}: pass a LoCoMo-format or operator-format JSON file"
            )
        data = load(path)[: conversations or None]
        figures = await run(
            data,
            settings,
            strategies(settings, names, long=False),
            questions=questions,
            title=str(path.name),
            tune=tune,
        )
    if long:
        generated = synthetic.conversation(long, max(8, long // 60), seed=1, conversation_id="long")
        figures["long"] = await run(
            [load_operator(generated)],
            settings,
            strategies(settings, names, long=True),
            questions=questions,
            title=f"long synthetic conversation ({long} messages)",
            tune=False,
        )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "data",
        nargs="?",
        default=str(DEFAULT_DATA),
        help="a LoCoMo-format or operator-format JSON file ('-' for none, with --long)",
    )
    parser.add_argument("--conversations", type=int, default=0, help="only the first N (0: all)")
    parser.add_argument(
        "--questions", type=int, default=0, help="only the first N per conversation"
    )
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument(
        "--long", type=int, default=0, help="also a generated conversation of N messages"
    )
    parser.add_argument("--no-tune", action="store_true", help="skip tuning by rotation")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.strategies.split(",") if name.strip()]
    try:
        figures = asyncio.run(
            measure(
                None if args.data == "-" else Path(args.data),
                Settings(),
                names,
                conversations=args.conversations,
                questions=args.questions,
                long=args.long,
                tune=not args.no_tune,
            )
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"recall: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
