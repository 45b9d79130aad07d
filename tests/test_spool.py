"""Nothing answered is lost while Redis is down: the spool keeps it and replays it in order.

Real servers: the embedded valkey, shut down and started again on the same
data (a Redis restart), or frozen with SIGSTOP (a hung Redis, whose timed-out
commands still run when it resumes); the fake LLM over loopback.
"""

from __future__ import annotations

import logging
import os
import signal

import pytest
from test_sigterm import wait_for

from honeychat.core.bot import Bot
from honeychat.core.memory.redis_server import EmbeddedRedis
from honeychat.core.metrics import METRICS
from honeychat.core.types import ConversationKey, Role
from honeychat.testing.pytest_plugin import BotFactory, send

LIMITS = {"memory_read_timeout": 0.5, "redis_timeout": 0.5}


def exchange(text: str) -> list[tuple[Role, str]]:
    """A message and the fake LLM's answer to it, as stored."""
    return [(Role.USER, text), (Role.ASSISTANT, f"I hear you: {text}")]


def conversation(bot: Bot, user: str) -> ConversationKey:
    return ConversationKey("test", user, bot.characters.default.id)


async def buffered(bot: Bot, user: str) -> list[tuple[Role, str]]:
    assert bot.memory is not None and bot.memory.hot is not None
    messages = await bot.memory.hot.recent(conversation(bot, user), 1000)
    seqs = [m.seq for m in messages]
    assert seqs == sorted(set(seqs)), seqs
    return [(m.role, m.text) for m in messages]


async def test_turns_answered_while_redis_is_down_are_replayed_in_order(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(**LIMITS)
    assert bot.memory is not None
    bot.memory.replay_every = 0.05
    await send(bot, "before the outage", user="alice")
    replayed_before = METRICS.spooled_replayed._value.get()
    server = EmbeddedRedis(bot.settings.data_dir)
    server.stop()  # Redis goes away (a clean shutdown keeps its data, as a restart would)
    try:
        for i in range(2):
            channel = await send(bot, f"alice during {i}", user="alice")
            assert channel.last_text == f"I hear you: alice during {i}"
        await send(bot, "bob during 0", user="bob")
        assert len(bot.memory.spool) == 6
        assert bot.memory.hot_health.down
        server.start()
        # Bob never writes again: the background replay writes his exchange.
        await wait_for(lambda: _holds(bot, "bob", 2), within=10)
        # Alice writes first: her spooled messages go in before her new one.
        await send(bot, "alice after", user="alice")
        assert await buffered(bot, "alice") == [
            *exchange("before the outage"),
            *exchange("alice during 0"),
            *exchange("alice during 1"),
            *exchange("alice after"),
        ]
        assert await buffered(bot, "bob") == exchange("bob during 0")
        assert len(bot.memory.spool) == 0
        assert METRICS.spooled_replayed._value.get() - replayed_before == 6
        # The replayed messages reach the next prompt.
        await send(bot, "what did I say?", user="alice")
        prompt = " ".join(str(m["content"]) for m in bot_factory.llm.chat_requests[-1].messages)
        assert "alice during 1" in prompt
    finally:
        await bot.stop()
        server.stop()


async def _holds(bot: Bot, user: str, count: int) -> bool:
    try:
        return len(await buffered(bot, user)) >= count
    except Exception:
        return False


async def test_a_hung_redis_gets_each_message_once(bot_factory: BotFactory) -> None:
    """A write that timed out may still run when Redis resumes; the replay does not repeat it."""
    bot = await bot_factory(**LIMITS)
    assert bot.memory is not None
    bot.memory.replay_every = 0.05
    await send(bot, "first", user="carol")
    pid = EmbeddedRedis(bot.settings.data_dir).pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        for i in range(3):
            await send(bot, f"while hung {i}", user="carol")
        assert len(bot.memory.spool) == 6
    finally:
        os.kill(pid, signal.SIGCONT)
    await wait_for(lambda: _spool_empty(bot), within=10)
    assert await buffered(bot, "carol") == [
        *exchange("first"),
        *exchange("while hung 0"),
        *exchange("while hung 1"),
        *exchange("while hung 2"),
    ]


async def _spool_empty(bot: Bot) -> bool:
    assert bot.memory is not None
    return len(bot.memory.spool) == 0


async def test_a_full_spool_drops_the_oldest_with_a_metric_and_a_log_line(
    bot_factory: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await bot_factory(memory_spool_size=3, **LIMITS)
    assert bot.memory is not None
    bot.memory.replay_every = 3600  # replayed by the next turn only
    dropped_before = METRICS.spooled_dropped._value.get()
    server = EmbeddedRedis(bot.settings.data_dir)
    server.stop()
    try:
        with caplog.at_level(logging.ERROR):
            await send(bot, "one", user="dave")
            await send(bot, "two", user="dave")
        assert METRICS.spooled_dropped._value.get() - dropped_before == 1
        assert len(bot.memory.spool) == 3
        drops = [r for r in caplog.records if "spool is full" in r.getMessage()]
        assert len(drops) == 1  # once per outage, not once per message
        server.start()
        await send(bot, "three", user="dave")
        assert await buffered(bot, "dave") == [
            (Role.ASSISTANT, "I hear you: one"),
            *exchange("two"),
            *exchange("three"),
        ]
    finally:
        await bot.stop()
        server.stop()


async def test_messages_still_spooled_at_shutdown_are_reported_lost(
    bot_factory: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await bot_factory(**LIMITS)
    assert bot.memory is not None
    server = EmbeddedRedis(bot.settings.data_dir)
    server.stop()
    await send(bot, "nobody will store this", user="erin")
    with caplog.at_level(logging.ERROR):
        await bot.stop()
    assert any("2 spooled messages are lost" in r.getMessage() for r in caplog.records)
