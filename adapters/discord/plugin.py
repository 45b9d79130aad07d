"""Registers the Discord adapter when ``DISCORD_BOT_TOKEN`` is set.

Its settings (``DISCORD_*``) are its ``config_model``, :class:`DiscordSettings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from honeychat.adapters.discord.settings import DiscordSettings
from honeychat.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

NAME = "discord"
config_model = DiscordSettings


@hookimpl
def honeychat_register_adapters(bot: Bot) -> list[object]:
    """The Discord adapter, if a bot token is configured."""
    settings: DiscordSettings = bot.plugins.config(NAME)
    if not settings.discord_bot_token:
        return []
    from honeychat.adapters.discord.adapter import DiscordAdapter

    return [DiscordAdapter(bot, settings)]
