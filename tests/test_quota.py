"""The built-in quota plugin through the real pipeline: embedded Redis, fake LLM on loopback."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta

import pytest

from honeychat.core.bot import Bot
from honeychat.core.settings import Settings, Tier
from honeychat.core.types import ConversationKey
from honeychat.plugins.quota import QuotaPlugin
from honeychat.testing.pytest_plugin import BotFactory, send


def quota_of(bot: Bot) -> QuotaPlugin:
    plugin = bot.plugins.pm.get_plugin("quota")
    assert isinstance(plugin, QuotaPlugin), bot.plugins.problems
    return plugin


def tiny_tiers(limit: int | None) -> dict[str, Tier]:
    return {"free": Tier(daily_message_limit=limit), "premium": Tier()}


async def stored_texts(bot: Bot, user: str = "alice") -> list[str]:
    assert bot.memory is not None and bot.memory.hot is not None
    messages = await bot.memory.hot.recent(ConversationKey("test", user, "luna"), 50)
    return [m.text for m in messages]


def test_the_free_tier_allows_twenty_messages_a_day_by_default() -> None:
    assert Settings(_env_file=None).tiers["free"].daily_message_limit == 20


async def test_a_spent_quota_is_answered_in_character_and_nothing_is_stored(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(tiers=tiny_tiers(2))
    llm = bot_factory.llm
    for i in range(2):
        channel = await send(bot, f"message {i}")
        assert channel.last_text == f"I hear you: message {i}"
    calls = len(llm.chat_requests)
    refused = await send(bot, "one more please")
    assert "today's limit of 2 messages" in refused.last_text
    assert "after midnight" in refused.last_text
    assert len(llm.chat_requests) == calls, "a refused message never reaches the LLM"
    assert "one more please" not in await stored_texts(bot)
    help_reply = await send(bot, "/help")
    assert "/forget" in help_reply.last_text, "commands do not count and still work"
    other = await send(bot, "hello", user="bob")
    assert other.last_text == "I hear you: hello", "the quota is per user"
    for i in range(3):
        local = await send(bot, f"terminal {i}", platform="terminal")
        assert local.last_text == f"I hear you: terminal {i}", "the operator's terminal is exempt"


async def test_twenty_first_message_of_the_free_tier_is_refused(bot_factory: BotFactory) -> None:
    bot = await bot_factory()
    plugin = quota_of(bot)
    day, _ = plugin.local_day("test", "alice")
    assert bot.redis is not None
    await bot.redis.set(plugin.key(bot, "test", "alice", day), 19)
    assert (await send(bot, "twentieth")).last_text == "I hear you: twentieth"
    assert "limit of 20 messages" in (await send(bot, "twenty-first")).last_text


async def test_unlimited_tier_is_never_counted(bot_factory: BotFactory) -> None:
    bot = await bot_factory(tiers=tiny_tiers(0), user_tiers={"test:vip": "premium"})
    assert (await send(bot, "hi", user="vip")).last_text == "I hear you: hi"
    assert "limit of 0 messages" in (await send(bot, "hi", user="alice")).last_text
    assert bot.redis is not None
    assert await bot.redis.keys(f"{bot.settings.key_prefix}:quota:test:vip:*") == []


async def test_the_count_resets_at_the_users_midnight_not_utc(bot_factory: BotFactory) -> None:
    bot = await bot_factory(
        tiers=tiny_tiers(1),
        plugin_config={
            "quota": {
                "default_timezone": "Asia/Tokyo",
                "user_timezones": {"test:nyc": "America/New_York"},
            }
        },
    )
    plugin = quota_of(bot)
    # 23:50 in Tokyo is 14:50 UTC; twenty minutes later it is a new day in Tokyo only.
    now = datetime(2025, 3, 4, 14, 50, tzinfo=UTC)
    plugin.clock = lambda: now
    for user in ("alice", "nyc"):
        assert (await send(bot, "first", user=user)).last_text == "I hear you: first"
        refused = await send(bot, "second", user=user)
        assert "limit of 1 messages" in refused.last_text
    assert "in 10 minutes" in (await send(bot, "again", user="alice")).last_text
    now += timedelta(minutes=20)
    assert (await send(bot, "new day", user="alice")).last_text == "I hear you: new day"
    assert "limit" in (await send(bot, "still today", user="nyc")).last_text
    assert bot.redis is not None
    key = plugin.key(
        bot, "test", "alice", now.astimezone(plugin.config.zone_for("test", "alice")).date()
    )
    assert key.endswith(":2025-03-05")
    assert 0 < await bot.redis.ttl(key) <= 2 * 86400


async def test_per_character_message(bot_factory: BotFactory) -> None:
    bot = await bot_factory(
        tiers=tiny_tiers(0),
        plugin_config={
            "quota": {"character_messages": {"luna": "{name} needs sleep. Back {reset_in}."}}
        },
    )
    assert (await send(bot, "hi")).last_text.startswith("Luna needs sleep. Back in ")


async def test_invalid_config_keeps_the_plugin_out_and_the_bot_running(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(
        tiers=tiny_tiers(0),
        plugin_config={"quota": {"default_timezone": "Mars/Olympus", "message": "bye {user}"}},
    )
    [problem] = [p for p in bot.plugins.problems if p.name == "quota"]
    assert "default_timezone" in problem.message and "Mars/Olympus" in problem.message
    assert "message" in problem.message and "{user}" in problem.message
    assert (await send(bot, "hi")).last_text == "I hear you: hi"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_redis_down_fails_open_and_logs_once(
    bot_factory: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await bot_factory(tiers=tiny_tiers(1), redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    caplog.set_level(logging.WARNING, logger="honeychat.plugins.quota")
    for i in range(3):
        assert (await send(bot, f"msg {i}")).last_text == f"I hear you: msg {i}"
    outages = [r for r in caplog.records if r.name == "honeychat.plugins.quota"]
    assert len(outages) == 1 and "serving users without a limit" in outages[0].getMessage()
