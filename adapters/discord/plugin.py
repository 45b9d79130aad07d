"""Registers the Discord adapter when ``DISCORD_BOT_TOKEN`` is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from honeychat.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from honeychat.core.bot import Bot


@hookimpl
def honeychat_register_adapters(bot: Bot) -> list[object]:
    """The Discord adapter, if a bot token is configured."""
    if not bot.settings.discord_bot_token:
        return []
    from honeychat.adapters.discord.adapter import DiscordAdapter

    return [DiscordAdapter(bot)]
