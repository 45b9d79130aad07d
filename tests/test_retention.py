"""Retention: conversations idle past MEMORY_RETENTION_DAYS leave both layers; one sweeper at a time.

Real stores (embedded valkey and Chroma); time is moved by the messages' own
timestamps and the sweeper's clock, never by sleeping.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from honeychat.core.bot import Bot
from honeychat.core.retention import RetentionSweeper
from honeychat.core.types import ConversationKey, utc_now
from honeychat.testing.pytest_plugin import BotFactory, send
from honeychat.testing.responders import keeping_user_lines

DAY = 86400.0


async def held(bot: Bot, key: ConversationKey) -> tuple[int, int]:
    """(messages in the hot buffer, documents in the cold store) of a conversation."""
    assert bot.memory is not None and bot.memory.hot is not None and bot.memory.cold is not None
    return (
        len(await bot.memory.hot.recent(key, 100)),
        len(await bot.memory.cold.all(key.id)),
    )


async def test_idle_conversations_expire_from_both_layers_and_active_ones_stay(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(summary_window=1, memory_retention_days=30)
    bot_factory.llm.responder = keeping_user_lines("ok")
    long_ago = utc_now() - timedelta(days=40)
    await send(bot, "I told you about my old flat", user="olga", sent_at=long_ago)
    await send(bot, "and my new one", user="olga", sent_at=long_ago + timedelta(days=1))
    await send(bot, "fresh news", user="pat")
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(30)
    old = ConversationKey("test", "olga", "luna")
    fresh = ConversationKey("test", "pat", "luna")
    assert await held(bot, old) == (4, 2)
    sweeper = RetentionSweeper(bot, 30)

    assert await sweeper.sweep_once() == 1

    assert await held(bot, old) == (0, 0)
    assert await held(bot, fresh) == (2, 1)
    assert bot.redis is not None
    leftover = [k async for k in bot.redis.scan_iter(match="*olga*")]
    assert [k for k in leftover if ":quota:" not in k] == []  # today's counter expires itself
    # Days later, without new messages, the fresh one goes too; a returning user starts anew.
    later = RetentionSweeper(bot, 30, clock=lambda: time.time() + 31 * DAY)
    assert await later.sweep_once() == 1
    assert await held(bot, fresh) == (0, 0)
    await send(bot, "hello again", user="olga")
    assert await held(bot, old) == (2, 0)


async def test_two_processes_never_sweep_at_once(bot_factory: BotFactory) -> None:
    first = await bot_factory(memory_retention_days=1)
    second = await bot_factory(key_prefix=first.settings.key_prefix, memory_retention_days=1)
    for i in range(3):
        await send(first, f"message {i}", user=f"user{i}", sent_at=utc_now() - timedelta(days=2))
    results = await asyncio.gather(
        RetentionSweeper(first, 1).sweep_once(), RetentionSweeper(second, 1).sweep_once()
    )
    assert sorted(results, key=str) == [3, None]  # one swept everything, the other stood aside
    assert await RetentionSweeper(second, 1).sweep_once() == 0  # the lock was given back


async def test_conversations_from_before_activity_tracking_are_counted_from_the_first_sweep(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(memory_retention_days=10)
    await send(bot, "stored by an older version", user="quinn", sent_at=utc_now())
    assert bot.memory is not None and bot.memory.hot is not None and bot.redis is not None
    await bot.redis.delete(bot.memory.hot.activity_key)  # what an older version left
    key = ConversationKey("test", "quinn", "luna")
    assert await RetentionSweeper(bot, 10).sweep_once() == 0
    assert await held(bot, key) == (2, 0)
    soon = RetentionSweeper(bot, 10, clock=lambda: time.time() + 9 * DAY)
    assert await soon.sweep_once() == 0
    late = RetentionSweeper(bot, 10, clock=lambda: time.time() + 11 * DAY)
    assert await late.sweep_once() == 1
    assert await held(bot, key) == (0, 0)


def test_retention_is_off_by_default(bot_factory: BotFactory) -> None:
    assert bot_factory.settings().memory_retention_days is None
