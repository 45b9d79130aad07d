"""The pluggy plugin that offers the Telegram adapter when a bot token is configured.

Its settings (``TELEGRAM_*``) are its ``config_model``, :class:`TelegramSettings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from honeychat import hookimpl
from honeychat.adapters.telegram.settings import TelegramSettings

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

NAME = "telegram"
config_model = TelegramSettings


@hookimpl
def honeychat_register_adapters(bot: Bot) -> list[Any]:
    """A :class:`TelegramAdapter` when ``TELEGRAM_BOT_TOKEN`` is set, else nothing."""
    settings: TelegramSettings = bot.plugins.config(NAME)
    if not settings.telegram_bot_token:
        return []
    # Imported here so that loading plugins stays cheap when Telegram is not used.
    from honeychat.adapters.telegram.adapter import TelegramAdapter

    return [TelegramAdapter(bot, settings=settings)]
