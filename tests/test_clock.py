"""The built-in clock plugin puts the user's local date and time into the system prompt."""

from __future__ import annotations

from datetime import UTC, datetime

from honeychat.plugins.clock import ClockPlugin
from honeychat.testing.pytest_plugin import BotFactory, send


async def test_the_prompt_carries_the_users_local_time(bot_factory: BotFactory) -> None:
    bot = await bot_factory(
        plugin_config={
            "clock": {
                "default_timezone": "Europe/Paris",
                "user_timezones": {"test:kenji": "Asia/Tokyo"},
            }
        }
    )
    plugin = bot.plugins.pm.get_plugin("clock")
    assert isinstance(plugin, ClockPlugin)
    plugin.clock = lambda: datetime(2025, 3, 4, 23, 30, tzinfo=UTC)
    await send(bot, "hello")
    system = bot_factory.llm.chat_requests[-1].messages[0]["content"]
    assert "Wednesday, 5 March 2025, 00:30 (Europe/Paris)" in system
    await send(bot, "hello", user="kenji")
    system = bot_factory.llm.chat_requests[-1].messages[0]["content"]
    assert "Wednesday, 5 March 2025, 08:30 (Asia/Tokyo)" in system


async def test_clock_can_be_disabled(bot_factory: BotFactory) -> None:
    bot = await bot_factory(disabled_plugins=["clock"])
    await send(bot, "hello")
    assert "Current date and time" not in bot_factory.llm.chat_requests[-1].messages[0]["content"]
    assert "clock" in bot.plugins.disabled
