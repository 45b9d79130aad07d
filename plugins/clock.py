"""Built-in plugin ``clock``: tells the character the user's current date and time.

Adds one short line to the system prompt, in the user's time zone, so the
character can say "good morning" at the right time and knows what "tomorrow"
means. Disable it with ``DISABLED_PLUGINS=clock``.

Config (``PLUGIN_CONFIG["clock"]``, see :class:`ClockConfig`)::

    {"default_timezone": "Europe/Paris", "user_timezones": {"slack:T1:U2": "Asia/Tokyo"}}
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from honeychat import hookimpl
from honeychat.core.types import utc_now
from honeychat.plugins.timezones import UserTimeZones

if TYPE_CHECKING:
    from honeychat.core.bot import Bot
    from honeychat.core.turn import Turn

NAME = "clock"


class ClockConfig(UserTimeZones):
    """Time zones of the clock plugin (a default and per-user overrides)."""


def describe_now(now: datetime) -> str:
    """The prompt line for an aware local time, independent of the process locale."""
    return (
        f"Current date and time for the user: {now:%A}, {now.day} {now:%B %Y}, "
        f"{now:%H:%M} ({now.tzinfo})."
    )


class ClockPlugin:
    """Adds the user's local date and time to every turn's system prompt."""

    config_model = ClockConfig

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        self.config = ClockConfig()

    @hookimpl
    def honeychat_startup(self, bot: Bot) -> None:
        self.config = bot.plugins.config(NAME)

    @hookimpl
    def honeychat_prompt_sections(self, turn: Turn) -> str:
        zone = self.config.zone_for(turn.message.platform, turn.message.user_id)
        return describe_now(self.clock().astimezone(zone))
