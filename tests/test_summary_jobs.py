"""Summaries as durable jobs on Redis: done without another message, finished by another
worker after ``kill -9``, never worked on twice at once, and an idle tail summarized too.

Real embedded valkey and Chroma, real ``honeychat worker`` subprocess, the fake LLM on loopback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cli_env import cli_env

from honeychat.core.bot import Bot
from honeychat.core.jobs import JobContext, Jobs
from honeychat.core.memory.summarizer import IDLE_SCAN_JOB
from honeychat.core.types import ConversationKey, Summary
from honeychat.testing.processes import start_cli
from honeychat.testing.pytest_plugin import BotFactory, send
from honeychat.testing.responders import is_summary_request, keeping_user_lines

FAST_JOBS: dict[str, Any] = {
    "summary_window": 1,  # one turn (two messages) per document
    "jobs_heartbeat_seconds": 0.6,
    "jobs_sweep_seconds": 1,
}


def conversation(bot: Bot) -> ConversationKey:
    return ConversationKey("test", "alice", bot.characters.default.id)


async def documents(bot: Bot) -> list[Summary]:
    assert bot.memory is not None and bot.memory.cold is not None
    return await bot.memory.cold.all(conversation(bot).id)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float) -> float:
    """Seconds until ``check`` holds; fails after ``seconds``."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not reached within {seconds:g}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def summary_calls(bot_factory: BotFactory) -> int:
    return sum(1 for r in bot_factory.llm.chat_requests if is_summary_request(r.json))


async def test_a_window_is_summarized_without_another_message(bot_factory: BotFactory) -> None:
    bot_factory.llm.responder = keeping_user_lines("Noted.")
    bot = await bot_factory(summary_window=1)
    await send(bot, "My tortoise is called Archimedes.")  # completes the window; nothing after

    async def stored() -> bool:
        return bool(await documents(bot))

    await eventually(stored, 10)
    [document] = await documents(bot)
    assert "Archimedes" in document.text and (document.first_seq, document.last_seq) == (1, 2)


async def test_a_killed_worker_is_replaced_within_the_bound(
    bot_factory: BotFactory, tmp_path: Path
) -> None:
    bot_factory.llm.responder = keeping_user_lines("Noted.")
    bot = await bot_factory(jobs_worker=False, **FAST_JOBS)  # no worker here yet
    await send(bot, "My tortoise is called Archimedes.")
    assert bot.jobs is not None and (await bot.jobs.counts()).queued == 1

    bot_factory.llm.delay_next(120)  # the next call, the subprocess's summary, hangs
    connection = bot._redis_connection
    assert connection is not None and connection.server is not None
    env = cli_env(
        tmp_path / "worker-data",  # its own (unused) Chroma; the queue is the bot's Redis
        bot_factory.llm,
        REDIS_URL=f"unix://{connection.server.socket_path}",
        KEY_PREFIX=bot.settings.key_prefix,
        SUMMARY_WINDOW="1",
        JOBS_HEARTBEAT_SECONDS="0.6",
        JOBS_SWEEP_SECONDS="1",
    )
    worker = await start_cli("worker", env=env)
    try:

        async def summary_started() -> bool:
            return summary_calls(bot_factory) == 1

        await eventually(summary_started, 60)
        assert (await bot.jobs.counts()).active == 1
    finally:
        worker.kill()  # kill -9 in the middle of the LLM call
        await worker.wait()
    killed_at = time.monotonic()

    await bot.jobs.start_worker(concurrency=2)  # another worker

    async def stored() -> bool:
        return bool(await documents(bot))

    await eventually(stored, 20)
    recovery = time.monotonic() - killed_at
    assert recovery <= bot.jobs.recovery_seconds + 1.0, f"took {recovery:.1f}s"
    [document] = await documents(bot)
    assert "Archimedes" in document.text
    assert summary_calls(bot_factory) == 2, "the killed call, then the one that finished it"

    # The next window, right after the takeover (saq refuses a swept job's key for a few
    # seconds; that must not lose this trigger).
    await send(bot, "My bike is a red Bianchi.")

    async def next_stored() -> bool:
        return len(await documents(bot)) == 2

    await eventually(next_stored, 10)


async def test_a_slow_summary_renews_its_claim(bot_factory: BotFactory) -> None:
    bot_factory.llm.responder = keeping_user_lines("Noted.")
    first = await bot_factory(jobs_worker=False, **FAST_JOBS)
    await send(first, "My tortoise is called Archimedes.")
    bot_factory.llm.delay_next(2.0)  # the summary takes more than three heartbeats
    second = await bot_factory(key_prefix=first.settings.key_prefix, **FAST_JOBS)
    assert first.jobs is not None
    await first.jobs.start_worker(concurrency=2)  # two workers in two bots, one job

    async def stored() -> bool:
        return bool(await documents(first))

    await eventually(stored, 15)
    await first.jobs.wait_idle(10)
    await asyncio.sleep(1.0)  # a sweep that wrongly took it over would have called again
    assert summary_calls(bot_factory) == 1, "one call: nobody took the job over"
    assert len(await documents(second)) == 1


async def test_an_idle_tail_is_summarized_and_the_next_window_follows(
    bot_factory: BotFactory,
) -> None:
    bot_factory.llm.responder = keeping_user_lines("Noted.")
    # A two-message buffer: the tail's messages leave it, only its summary can bring them back.
    bot = await bot_factory(summary_window=2, memory_idle_summary_minutes=60, hot_buffer_size=2)
    assert bot.memory is not None and bot.memory.summarizer is not None and bot.jobs is not None
    summarizer = bot.memory.summarizer
    later = [0.0]
    summarizer.clock = lambda: time.time() + later[0]
    key = conversation(bot)

    await send(bot, "My tortoise is called Archimedes.")  # half a window
    await bot.jobs.enqueue(IDLE_SCAN_JOB)
    await bot.jobs.wait_idle(10)
    assert await documents(bot) == [], "not idle yet"

    later[0] = 2 * 3600.0  # two hours without a turn
    await bot.jobs.enqueue(IDLE_SCAN_JOB)

    async def tail_stored() -> bool:
        return bool(await documents(bot))

    await eventually(tail_stored, 10)
    await bot.jobs.wait_idle(10)
    [tail] = await documents(bot)
    assert (tail.first_seq, tail.last_seq) == (1, 2) and "Archimedes" in tail.text
    assert bot.memory.hot is not None
    assert await bot.memory.hot.watermark(key) == 2
    assert await bot.jobs.client.zscore(f"{bot.jobs.prefix}:summaries:active", key.id) is None

    later[0] = 0.0
    await send(bot, "I grow purple carrots.")
    await send(bot, "My bike is a red Bianchi.")
    await summarizer.wait_idle(10)
    ids = {d.doc_id: (d.first_seq, d.last_seq) for d in await documents(bot)}
    assert sorted(ids.values()) == [(1, 2), (3, 6)], "the next full window starts after the tail"
    assert len(ids) == 2
    found = await bot.memory.search(key, "What is my tortoise called?", 1)
    assert found and "Archimedes" in found[0].text
    await send(bot, "What is the name of my tortoise?")
    assert "Archimedes" in bot_factory.last_system_prompt()


async def test_a_key_enqueued_while_it_runs_runs_once_more(bot_factory: BotFactory) -> None:
    bot = await bot_factory(jobs_worker=False)
    assert bot.redis is not None
    jobs = Jobs(bot.redis, prefix=f"{bot.settings.key_prefix}x", poll_seconds=0.1)
    runs: list[str] = []
    release = asyncio.Event()

    async def handler(job: JobContext, payload: dict[str, Any]) -> None:
        runs.append(str(payload["n"]))
        if len(runs) == 1:
            await release.wait()

    jobs.register("count", handler)
    try:
        await jobs.start_worker(concurrency=2)
        assert await jobs.enqueue("count", {"n": 1}, key="k")

        async def running() -> bool:
            return bool(runs)

        await eventually(running, 5)
        assert await jobs.enqueue("count", {"n": 2}, key="k"), "flagged to run again"
        release.set()

        async def twice() -> bool:
            return len(runs) >= 2

        await eventually(twice, 5)
        await jobs.wait_idle(5)
        assert runs == ["1", "1"], "once more, with the running job's payload"
        # Delayed: nothing runs before its time.
        assert await jobs.enqueue("count", {"n": 4}, key="later", delay=30)
        assert not await jobs.enqueue("count", {"n": 5}, key="later")
        assert (await jobs.counts()).scheduled == 1
    finally:
        await jobs.close()
