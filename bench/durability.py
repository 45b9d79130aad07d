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
Then ``--kills`` times: a window completes while no worker runs, a ``honeychat worker`` subprocess
(same Redis, its own data directory) takes its job and hangs in the LLM call, it is killed with
``SIGKILL``, and a worker in the bench's process starts; recovery time is from the kill to the
window's document (the bound is ``JOBS_HEARTBEAT_SECONDS + JOBS_SWEEP_SECONDS + 1 s + 2 x
JOBS_POLL_SECONDS``; defaults used). Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from honeychat.core.bot import Bot
from honeychat.core.metrics import METRICS
from honeychat.core.settings import Settings
from honeychat.core.types import IncomingMessage
from honeychat.testing.channel import RecordingChannel
from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.processes import start_cli
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
                }


async def until(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    """Wait until ``check`` holds; ``TimeoutError`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {seconds:g}s")
        await asyncio.sleep(0.05)


async def kill_recovery(kills: int) -> dict[str, Any]:
    """Seconds from ``kill -9`` of a worker in its LLM call to the window's document, per kill."""
    times: list[float] = []
    async with FakeLLM() as llm:
        llm.responder = keeping_user_lines("Noted.")
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                data_dir=Path(tmp) / "bot",
                redis_url=None,
                chroma_url=None,
                key_prefix="benchkill",
                llm_base_url=llm.base_url,
                llm_api_key="bench",
                summary_window=1,
                jobs_worker=False,
                disabled_plugins=["quota"],
            )
            async with Bot(settings) as bot:
                assert bot.jobs is not None and bot.memory is not None
                assert bot.memory.cold is not None and bot._redis_connection is not None
                server = bot._redis_connection.server
                assert server is not None
                conversation = f"bench:alice:{bot.characters.default.id}"
                env = {
                    k: v
                    for k, v in os.environ.items()
                    if k not in {"REDIS_URL", "CHROMA_URL", "OPENROUTER_API_KEY"}
                }
                env.update(
                    DATA_DIR=str(Path(tmp) / "worker"),
                    REDIS_URL=f"unix://{server.socket_path}",
                    KEY_PREFIX="benchkill",
                    LLM_BASE_URL=llm.base_url,
                    LLM_API_KEY="bench",
                    SUMMARY_WINDOW="1",
                )
                for i in range(kills):
                    await say(bot, f"Kill round {i}: the secret word is {NAMES[i % len(NAMES)]}.")
                    stored = len(await bot.memory.cold.all(conversation))
                    calls = sum(1 for r in llm.chat_requests if is_summary_request(r.json))
                    llm.delay_next(600)  # the subprocess's summary call hangs
                    worker = await start_cli("worker", env=env)

                    async def taken(calls: int = calls) -> bool:
                        return (
                            sum(1 for r in llm.chat_requests if is_summary_request(r.json)) > calls
                        )

                    await until(taken, 120)
                    worker.kill()
                    await worker.wait()
                    killed = time.monotonic()
                    await bot.jobs.start_worker()

                    async def written(stored: int = stored) -> bool:
                        assert bot.memory is not None and bot.memory.cold is not None
                        return len(await bot.memory.cold.all(conversation)) > stored

                    await until(written, 120)
                    times.append(time.monotonic() - killed)
                    await bot.jobs.stop_worker()
                bound = bot.jobs.recovery_seconds
    return {
        "kill_recoveries": len(times),
        "recovery_after_kill_s_median": round(statistics.median(times), 2) if times else None,
        "recovery_after_kill_s_max": round(max(times), 2) if times else None,
        "recovery_bound_s": bound if times else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=30)
    parser.add_argument("--after-turns", type=int, default=25)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(run(min(args.facts, len(NAMES)), args.after_turns))
    if args.kills > 0:
        result.update(asyncio.run(kill_recovery(args.kills)))
    for key, value in result.items():
        print(f"{key:<28} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
