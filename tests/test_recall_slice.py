"""The recall benchmark on a conversation the repository generates, as a floor for the product.

A synthetic conversation (``honeychat.testing.synthetic``: 240 messages, 14
facts planted in user messages, some spread over two messages, with near-miss
distractors) is written in the benchmark's operator format and replayed by
``bench/recall.py`` through the real hot store (embedded valkey), the real
cold store and embeddings (embedded Chroma) and the real summarizer with the
"oracle facts, capped" stand-in. Documents are the product's: each window's
summary lines and its messages verbatim (``MEMORY_KEEP_MESSAGES``, the
default). Recall is credited by line provenance only: a memory line counts for
the messages it came from (a message line for its own message).

Only the product is measured and only absolute floors are asserted (the
comparisons with baselines live in ``docs/performance.md``). The floors sit
below the measured figures (1.000 at 256 and 512 tokens on this conversation)
so that noise-free regressions in summarizing, provenance, storage or
retrieval fail the test. The bench itself also asserts that its offline
scoring of the product equals what ``MemoryService.context`` returns.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from honeychat.core.settings import Settings
from honeychat.testing import synthetic

REPO = Path(__file__).resolve().parent.parent
MESSAGES, FACTS = 240, 14
FLOOR_256 = 0.85
FLOOR_512 = 0.9


def _bench() -> ModuleType:
    path = REPO / "bench" / "recall.py"
    spec = importlib.util.spec_from_file_location("honeychat_bench_recall", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_recall_on_a_generated_conversation_stays_above_its_floor(tmp_path: Path) -> None:
    data = tmp_path / "conversation.json"
    conversation = synthetic.conversation(MESSAGES, FACTS, seed=5, conversation_id="slice")
    data.write_text(json.dumps(synthetic.dataset([conversation])), encoding="utf-8")
    bench = _bench()
    # No LLM: the stand-in summarizer makes the figures reproducible.
    settings = Settings(
        _env_file=None, data_dir=tmp_path, llm_base_url=None, openrouter_api_key=None
    )
    figures = asyncio.run(
        asyncio.wait_for(bench.measure(data, settings, ("summary",), tune=False), timeout=300)
    )
    recall = figures["recall"]["summary"]
    assert recall["256"] >= FLOOR_256, figures
    assert recall["512"] >= FLOOR_512, figures
    # One document per complete window of 20 messages, each written once.
    assert figures["documents"]["summary"] == MESSAGES // settings.summary_window_messages
    # Each keeps its window's messages beside the summary, a vector per line (and its own).
    window = settings.summary_window_messages
    assert figures["vectors"]["summary"] >= figures["documents"]["summary"] * (window + 1)
    assert figures["baseline"]["standin"] == "oracle facts, capped"
