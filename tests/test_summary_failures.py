"""Bounded failure: a window the summarizer never manages is kept verbatim after K attempts,
the watermark moves on, and the backlog shows in metrics, /readyz and the doctor."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from honeychat.core.bot import Bot
from honeychat.core.doctor import check_summaries
from honeychat.core.inspector.health import readiness
from honeychat.core.metrics import METRICS
from honeychat.core.types import ConversationKey
from honeychat.testing.pytest_plugin import BotFactory, memory_state, send
from honeychat.testing.responders import is_summary_request

TURNS = 6


def refusing(request: dict[str, Any]) -> str:
    """Summaries come back empty (as a content filter would leave them); chat works."""
    return "" if is_summary_request(request) else "Okay."


async def wait_for(predicate: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def counter(value: Any) -> float:
    return float(value._value.get())


async def test_a_window_that_never_summarizes_is_kept_verbatim(bot_factory: BotFactory) -> None:
    bot_factory.llm.responder = refusing
    bot: Bot = await bot_factory(
        summary_window=1,
        summary_max_attempts=3,
        summary_retry_seconds=0.05,
        hot_buffer_size=4,
    )
    failures_before = counter(METRICS.summary_failures)
    verbatim_before = counter(METRICS.windows_verbatim)
    for i in range(TURNS):
        await send(bot, f"My locker number {i} is {1000 + i}.")

    async def all_stored() -> bool:
        return (await memory_state(bot))["summarized_through"] == 2 * TURNS

    await wait_for(all_stored)
    state = await memory_state(bot)
    assert len(state["summaries"]) == TURNS
    assert {s["kind"] for s in state["summaries"]} == {"verbatim"}
    first = state["summaries"][0]
    assert first["text"].splitlines() == ["User: My locker number 0 is 1000.", "Luna: Okay."]
    assert len(state["recent"]) <= 4, "the buffer stays bounded once windows are stored"
    summary_calls = [r for r in bot_factory.llm.chat_requests if is_summary_request(r.json)]
    assert len(summary_calls) == 3 * TURNS, "exactly K attempts per window"
    assert counter(METRICS.summary_failures) - failures_before == 3 * TURNS
    assert counter(METRICS.windows_verbatim) - verbatim_before == TURNS

    # Still retrievable, and it reaches the prompt.
    assert bot.memory is not None
    key = ConversationKey("test", "alice", bot.characters.default.id)
    found = await bot.memory.search(key, "locker number 3", 1)
    assert found and "1003" in found[0].text
    await send(bot, "What was my locker number 2?")
    assert "1002" in bot_factory.last_system_prompt()

    # Nothing waits any more, once the question's own window is kept too.
    async def question_stored() -> bool:
        return (await memory_state(bot))["summarized_through"] == 2 * (TURNS + 1)

    await wait_for(question_stored)
    ready = await readiness(bot)
    assert ready.backlog is not None and ready.backlog.pending_windows == 0
    assert (await check_summaries(bot.settings)).ok


async def test_the_backlog_is_reported_while_windows_wait(bot_factory: BotFactory) -> None:
    bot_factory.llm.responder = refusing
    bot: Bot = await bot_factory(summary_window=1, summary_max_attempts=5, summary_retry_seconds=60)
    await send(bot, "Remember that my bike is red.")

    async def waiting() -> bool:
        ready = await readiness(bot)
        return ready.backlog is not None and ready.backlog.pending_windows == 1

    await wait_for(waiting)
    ready = await readiness(bot)
    assert ready.backlog is not None and ready.backlog.oldest_wait_seconds is not None
    check = await check_summaries(bot.settings)
    assert check.ok and "1 conversation(s)" in check.detail
    state = await memory_state(bot)
    assert state["summarized_through"] == 0 and state["summaries"] == []
