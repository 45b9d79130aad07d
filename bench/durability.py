"""Durability of memory: facts told before an idle expiry and a Redis flush, still found after.

Run: ``python bench/durability.py`` (options: ``--facts``, ``--after-turns``). Embedded valkey and
Chroma, the fake LLM on loopback (its summaries keep the user's lines, so a fact that survives in the
cold layer is findable). Rules: ``--facts`` facts are told, one per turn, with ``SUMMARY_WINDOW=2``;
the summaries are awaited; the process restarts with a one-second ``HOT_BUFFER_TTL_DAYS``, says one
line, and after an idle second the buffer has expired; then Redis is flushed as well; then ``--after-turns`` unrelated turns; then each fact is asked for once and counts
as retrievable when its distinctive word is in the system prompt (memory), not in the recent messages.
``facts_in_cold_store`` counts the facts whose word is in some stored document (what durability
promises); ``facts_retrievable`` those that also reached the prompt (that depends on retrieval).
Also printed: how many windows were summarized exactly once (summary requests per window), and the
summary lag (a window's last message to its document) p50/p99 from the process's histogram.
Recovery time after ``kill -9`` of a worker is not measured: summaries are not durable jobs yet.
Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from honeychat.core.bot import Bot
from honeychat.core.metrics import METRICS
from honeychat.core.settings import Settings
from honeychat.core.types import IncomingMessage
from honeychat.testing.channel import RecordingChannel
from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.responders import is_summary_request, keeping_user_lines

NAMES = [
    "Agnieszka", "Pumpernickel", "Zanzibar", "Okonkwo", "Marisol", "Thorvald", "Quetzal",
    "Bellweather", "Ingeborg", "Caspian", "Dumbarton", "Esperanza", "Fitzgerald", "Galapagos",
    "Hyacinth", "Ignatius", "Jubilee", "Kilimanjaro", "Lysander", "Montgomery", "Nebuchadnezzar",
    "Ophelia", "Persimmon", "Quixote", "Rasputin", "Saskatoon", "Tiberius", "Ulysses", "Valparaiso",
    "Wilhelmina", "Xanadu", "Yggdrasil", "Zebedee",
]  # fmt: skip


async def say(bot: Bot, text: str) -> None:
    message = IncomingMessage("bench", "alice", "alice", text, is_direct=True)
    await bot.handle_message(message, RecordingChannel())


def lag_quantiles() -> tuple[float | None, float | None]:
    """p50 and p99 of the summary-lag histogram, as bucket upper bounds."""
    buckets: list[tuple[float, float]] = []
    for metric in METRICS.summary_lag.collect():
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), sample.value))
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None, None

    def quantile(q: float) -> float:
        return next(le for le, count in buckets if count >= q * total)

    return quantile(0.5), quantile(0.99)


async def run(facts: int, after_turns: int) -> dict[str, Any]:
    async with FakeLLM() as llm:
        llm.responder = keeping_user_lines("Noted.")
        with tempfile.TemporaryDirectory() as tmp:
            common: dict[str, Any] = {
                "data_dir": Path(tmp),
                "redis_url": None,
                "chroma_url": None,
                "key_prefix": "bench",
                "llm_base_url": llm.base_url,
                "llm_api_key": "bench",
                "summary_window": 2,
                "disabled_plugins": ["quota"],  # the free tier's daily limit would refuse facts
            }
            told = NAMES[:facts]
            async with Bot(Settings(**common)) as first:
                assert first.memory is not None and first.memory.summarizer is not None
                for i, name in enumerate(told):
                    await say(first, f"Fact {i}: the secret word for item {i} is {name}.")
                await first.memory.summarizer.wait_idle(300)
            # A restart with a one-second buffer TTL: the next write sets it, an idle second
            # expires the buffer, then Redis is flushed on top.
            async with Bot(Settings(**common, hot_buffer_ttl_days=1.0 / 86400)) as bot:
                assert bot.memory is not None and bot.memory.summarizer is not None
                await say(bot, "Back after a while.")
                await bot.memory.summarizer.wait_idle(300)
                await asyncio.sleep(1.5)  # every buffer expires
                assert bot.redis is not None
                await bot.redis.flushdb()
                for i in range(after_turns):
                    await say(bot, f"Small talk {i} about the weather and trains.")
                await bot.memory.summarizer.wait_idle(300)
                assert bot.memory.cold is not None
                conversation = f"bench:alice:{bot.characters.default.id}"
                stored = " ".join(d.text for d in await bot.memory.cold.all(conversation))
                in_cold = sum(name in stored for name in told)
                found = 0
                for i, name in enumerate(told):
                    await say(bot, f"What is the secret word for item {i}?")
                    request = [r for r in llm.chat_requests if not is_summary_request(r.json)][-1]
                    system = str(request.messages[0]["content"])
                    found += name in system
                await bot.memory.summarizer.wait_idle(300)
                summaries = [r for r in llm.chat_requests if is_summary_request(r.json)]
                windows: dict[str, int] = {}
                for r in summaries:
                    key = str(r.messages[-1]["content"])
                    windows[key] = windows.get(key, 0) + 1
                p50, p99 = lag_quantiles()
                return {
                    "facts_told": facts,
                    "facts_in_cold_store": in_cold,
                    "facts_retrievable": found,
                    "windows_summarized": len(windows),
                    "windows_summarized_once": sum(1 for n in windows.values() if n == 1),
                    "summary_lag_s_p50_bucket": p50,
                    "summary_lag_s_p99_bucket": p99,
                    "recovery_after_kill_s": None,
                }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=30)
    parser.add_argument("--after-turns", type=int, default=25)
    args = parser.parse_args()
    result = asyncio.run(run(min(args.facts, len(NAMES)), args.after_turns))
    for key, value in result.items():
        print(f"{key:<28} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
