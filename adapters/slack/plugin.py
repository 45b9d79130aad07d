"""Registers the Slack adapter when its credentials are configured.

Its settings (``SLACK_*``) are its ``config_model``, :class:`SlackSettings`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from honeychat import hookimpl
from honeychat.adapters.slack.settings import SlackSettings

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

log = logging.getLogger(__name__)

NAME = "slack"
config_model = SlackSettings


@hookimpl
def honeychat_register_adapters(bot: Bot) -> list[Any]:
    """The Slack adapter, when ``SLACK_BOT_TOKEN`` and a signing secret or app token are set."""
    settings: SlackSettings = bot.plugins.config(NAME)
    if not settings.slack_bot_token:
        return []
    if not (settings.slack_signing_secret or settings.slack_app_token):
        log.warning(
            "SLACK_BOT_TOKEN is set but neither SLACK_SIGNING_SECRET (HTTP mode) nor "
            "SLACK_APP_TOKEN (Socket Mode) is; the Slack adapter is not started"
        )
        return []
    from honeychat.adapters.slack.adapter import SlackAdapter  # slack-bolt loads only when used

    return [SlackAdapter(bot, settings)]
