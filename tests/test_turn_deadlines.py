"""A turn's LLM deadlines against the loopback fake LLM: hangs, trickles, keep-alives, blanks.

Real embedded stores, the real LLM client over HTTP; deadlines are short so
each test takes a few seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from honeychat.core.bot import CUT_OFF_MARK
from honeychat.testing.channel import RecordingChannel
from honeychat.testing.pytest_plugin import BotFactory, memory_state, send
from honeychat.testing.responders import is_summary_request

FAST = {"llm_read_timeout": 0.6, "llm_total_timeout": 2.0, "llm_max_retries": 1}


def chat_count(bot_factory: BotFactory) -> int:
    return sum(1 for r in bot_factory.llm.chat_requests if not is_summary_request(r.json))


def stored(state: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["text"]) for m in state.get("recent", [])]


async def test_a_hanging_llm_gives_the_error_message_within_the_total_deadline(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(**FAST)
    bot_factory.llm.delay = 30.0
    started = time.monotonic()
    channel = await send(bot, "are you there?")
    took = time.monotonic() - started
    assert took < FAST["llm_total_timeout"] + 1.0
    assert channel.last_text == bot.characters.default.error_message
    assert stored(await memory_state(bot)) == [("user", "are you there?")]


async def test_keep_alive_comments_count_as_bytes_but_the_total_deadline_still_holds(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(**FAST)
    llm = bot_factory.llm
    llm.keepalive_interval = 0.2  # well inside the 0.6 s idle timeout
    llm.delay = 1.0
    llm.script(["Thought about it: yes."])
    channel = await send(bot, "a hard question")
    # Keep-alives kept the idle timeout from firing: the answer came on the first request.
    assert channel.last_text == "Thought about it: yes."
    assert chat_count(bot_factory) == 1

    llm.delay = 30.0  # keep-alives for ever: only the total deadline ends it
    started = time.monotonic()
    channel = await send(bot, "another one")
    assert time.monotonic() - started < FAST["llm_total_timeout"] + 1.0
    assert channel.last_text == bot.characters.default.error_message


async def test_a_trickling_reply_is_cut_off_shown_and_stored_marked(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(**FAST)
    llm = bot_factory.llm
    llm.chunk_delay = 0.3  # each chunk inside the idle timeout, the whole far beyond the total
    llm.script([" ".join(f"word{i}" for i in range(40))])
    started = time.monotonic()
    channel = await send(bot, "tell me a long story")
    assert time.monotonic() - started < FAST["llm_total_timeout"] + 1.0
    shown = channel.last_text
    assert shown.startswith("word0 word1") and shown.endswith(CUT_OFF_MARK)
    assert "word39" not in shown
    history = stored(await memory_state(bot))
    assert history[-1] == ("assistant", shown)


async def test_a_later_message_waits_for_the_timed_out_turn(bot_factory: BotFactory) -> None:
    bot = await bot_factory(**FAST)
    llm = bot_factory.llm
    llm.delay_next(30.0, times=2)  # both attempts of the first turn hang
    channel = RecordingChannel()
    first = asyncio.create_task(send(bot, "first", channel=channel))
    await asyncio.sleep(0.2)
    llm.script(["an answer to the second"])
    await send(bot, "second", channel=channel)
    await first
    texts = [event[2] for event in channel.events if event[0] == "send"]
    assert texts == [bot.characters.default.error_message, "an answer to the second"]
    user_lines = [t for r, t in stored(await memory_state(bot)) if r == "user"]
    assert user_lines == ["first", "second"]


async def test_a_whitespace_only_answer_falls_back_and_is_never_stored(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(llm_max_retries=0)
    llm = bot_factory.llm
    llm.script([" \n\t "])
    channel = await send(bot, "hello?")
    assert channel.last_text == bot.characters.default.error_message
    assert stored(await memory_state(bot)) == [("user", "hello?")]

    # With a fallback model, the blank answer moves on to it.
    bot.settings.tiers[bot.settings.default_tier].fallback_models = ["fake-backup"]
    llm.script(["  ", "Here I am."])
    channel = await send(bot, "hello again?")
    assert channel.last_text == "Here I am."
    assert [r.model for r in llm.chat_requests[-2:]] == [
        bot.settings.tiers[bot.settings.default_tier].model,
        "fake-backup",
    ]
    assert stored(await memory_state(bot))[-1] == ("assistant", "Here I am.")
