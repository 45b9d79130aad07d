"""The LoCoMo recall benchmark on a small slice, as a regression floor.

One conversation, its first questions, the product's ``summary`` strategy and
the ``message`` baseline: the real hot store on an embedded valkey, the real
cold store and embeddings on an embedded Chroma, the dataset-backed summarizer.
The floors were set from the measured figures with a margin (see
``docs/performance.md``); the full run is ``bench/recall.py``, not a test.

The data is read from ``../shared/data/locomo/locomo-dev.json`` relative to
the repository root (``HONEYCHAT_LOCOMO`` overrides the path). A missing file
fails the test: a skipped recall check would pass silently.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from honeychat.core.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DATA = Path(
    os.environ.get("HONEYCHAT_LOCOMO")
    or REPO / ".." / "shared" / "data" / "locomo" / "locomo-dev.json"
)

QUESTIONS = 40
SUMMARY_FLOOR_512 = 0.60
"""``summary`` recall at 512 tokens on this slice measured 0.70; a drop below 0.60 fails."""
MIN_RATIO_OVER_MESSAGE = 1.2
"""``summary`` measured 1.58 x the vector-only per-message baseline at 512 tokens."""


def _bench() -> ModuleType:
    path = REPO / "bench" / "recall.py"
    spec = importlib.util.spec_from_file_location("honeychat_bench_recall", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_recall_slice_stays_above_its_floor(tmp_path: Path) -> None:
    assert DATA.is_file(), (
        f"LoCoMo data not found at {DATA.resolve()}: the recall test needs the shared "
        "dataset (../shared/data/locomo/locomo-dev.json next to the repository, "
        "or HONEYCHAT_LOCOMO=/path/to/locomo-dev.json)"
    )
    bench = _bench()
    # No LLM: the stand-in summarizer makes the figures reproducible.
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        llm_base_url=None,
        openrouter_api_key=None,
    )
    figures = asyncio.run(
        asyncio.wait_for(
            bench.measure(
                DATA, settings, ("summary", "message"), conversations=1, questions=QUESTIONS
            ),
            timeout=600,
        )
    )
    summary, message = figures["recall"]["summary"], figures["recall"]["message"]
    assert summary["512"] >= SUMMARY_FLOOR_512, figures
    assert summary["512"] >= MIN_RATIO_OVER_MESSAGE * message["512"], figures
    assert summary["256"] <= summary["512"] <= summary["1024"], figures
    assert figures["documents"]["summary"] * 10 <= figures["documents"]["message"], figures
