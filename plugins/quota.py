"""Built-in plugin ``quota``: a daily message limit per user, from the user's tier.

Every message that starts a turn counts (chat commands do not, and nor do
messages from ``exempt_platforms``: the local terminal chat by default). The count
lives in Redis under a key holding the user's *local* date, so it resets at
the user's midnight; keys expire after two days. When the tier's
``daily_message_limit`` is spent (the free tier's default is 20), the
character answers with a short in-character message and the turn ends
there: the message is not stored and the LLM is not called. A tier whose
limit is ``None`` is unlimited.

Tools cost too: after a turn, each round of tool calls the reply took counts
``tool_step_weight`` of a message and each second spent in tools
``tool_second_weight``; these fractions add up in a second key of the same
day and their whole part is added to the day's count.

If Redis cannot be reached the plugin fails open: messages are served
uncounted and the outage is logged once (and its end once).

Config (``PLUGIN_CONFIG["quota"]``, see :class:`QuotaConfig`)::

    {"default_timezone": "Europe/Paris",
     "user_timezones": {"telegram:42": "America/New_York"},
     "message": "We've talked so much today! Back after midnight ({reset_in}).",
     "character_messages": {"pixel": "Daily quota reached. Respawn {reset_in}."}}
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from pydantic import Field, field_validator

from honeychat import hookimpl
from honeychat.core.erase import UserKeys, register_user_keys
from honeychat.core.media.pipeline import kind_of
from honeychat.core.types import Reply, utc_now
from honeychat.plugins.timezones import UserTimeZones

if TYPE_CHECKING:
    from honeychat.core.bot import Bot
    from honeychat.core.turn import Turn

log = logging.getLogger(__name__)

QUOTA_KEYS = UserKeys(
    "quota counter",
    "how many messages the user sent on one local day",
    re.compile(r"quota:(?P<platform>[^:]+):(?P<user>[^:]+):\d{4}-\d{2}-\d{2}"),
)

NAME = "quota"
KEY_TTL_SECONDS = 2 * 86400
"""Long enough to outlive any user's local day, short enough to clean up after itself."""
PLACEHOLDERS = {"name", "limit", "reset_in"}

DEFAULT_MESSAGE = (
    "I've loved talking with you today, but we've reached today's limit of {limit} messages. "
    "Come back after midnight ({reset_in}) and I'll be right here."
)


def _check_template(value: str) -> str:
    used = {field for _, field, _, _ in string.Formatter().parse(value) if field is not None}
    unknown = used - PLACEHOLDERS
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {', '.join(sorted(unknown))}; "
            f"use {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}"
        )
    return value


class QuotaConfig(UserTimeZones):
    """Configuration of the quota plugin.

    The limit itself comes from the user's tier (``TIERS``); this section
    sets time zones and what the character says when the quota is spent.
    Messages may use ``{name}`` (the character), ``{limit}`` and ``{reset_in}``.
    """

    message: str = DEFAULT_MESSAGE
    """What the character says when the day's quota is spent."""
    exempt_platforms: list[str] = Field(default_factory=lambda: ["terminal"])
    """Platforms never counted: by default the local terminal chat (the operator's own)."""
    character_messages: dict[str, str] = Field(default_factory=dict)
    """Per-character override of ``message``, keyed by character id."""
    media_weight: int = Field(default=1, ge=1)
    """How many messages a message with an image or a voice note counts for
    (transcription and vision cost more than text)."""
    tool_step_weight: float = Field(default=0.5, ge=0)
    """What one round of tool calls in a reply counts for, in messages."""
    tool_second_weight: float = Field(default=0.05, ge=0)
    """What one second spent running tools counts for, in messages (0.05: 20 s = 1)."""

    @field_validator("message")
    @classmethod
    def _valid_message(cls, value: str) -> str:
        return _check_template(value)

    @field_validator("character_messages")
    @classmethod
    def _valid_character_messages(cls, value: dict[str, str]) -> dict[str, str]:
        for template in value.values():
            _check_template(template)
        return value


def describe_wait(delta: timedelta) -> str:
    """A friendly duration until the reset: ``in 3 hours``, ``in 25 minutes``."""
    minutes = max(1, int(delta.total_seconds() // 60))
    if minutes >= 120:
        return f"in {minutes // 60} hours"
    if minutes >= 60:
        return "in about an hour"
    return f"in {minutes} minute{'s' if minutes != 1 else ''}"


class QuotaPlugin:
    """Counts each user's messages per local day in Redis and refuses past the tier's limit."""

    config_model = QuotaConfig

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        """Returns the current aware time; tests replace it to cross midnight."""
        self.config = QuotaConfig()
        self._outage_logged = False

    @hookimpl
    def honeychat_startup(self, bot: Bot) -> None:
        self.config = bot.plugins.config(NAME)
        register_user_keys(QUOTA_KEYS)  # erasing a user deletes their counters too

    def local_day(self, platform: str, user_id: str) -> tuple[date, timedelta]:
        """The user's current local date and the time left until their midnight."""
        now = self.clock().astimezone(self.config.zone_for(platform, user_id))
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)
        return now.date(), midnight - now

    def key(self, bot: Bot, platform: str, user_id: str, day: date) -> str:
        """The Redis key of one user's count for one local day."""
        user = f"{quote(platform, safe='')}:{quote(user_id, safe='')}"
        return f"{bot.settings.key_prefix}:quota:{user}:{day.isoformat()}"

    async def count(
        self, bot: Bot, key: str, amount: float = 1, *, tools: bool = False
    ) -> int | None:
        """Add ``amount`` to the day's count and return it with the tools' whole part;
        ``None`` when Redis is unreachable. ``tools``: add to the tools' fractional count."""
        if bot.redis is None:
            self._log_outage("no Redis connection")
            return None
        try:
            async with bot.redis.pipeline(transaction=True) as pipe:
                if tools:
                    pipe.incrbyfloat(f"{key}:tools", amount)
                    pipe.expire(f"{key}:tools", KEY_TTL_SECONDS)
                else:
                    pipe.incrby(key, int(amount))
                    pipe.expire(key, KEY_TTL_SECONDS)
                pipe.get(key)
                pipe.get(f"{key}:tools")
                *_, count, tool_count = await pipe.execute()
        except Exception as exc:  # any Redis or network failure: fail open
            self._log_outage(str(exc))
            return None
        if self._outage_logged:
            log.info("quota: Redis is reachable again; counting messages")
            self._outage_logged = False
        return int(count or 0) + int(float(tool_count or 0))

    def _log_outage(self, reason: str) -> None:
        if not self._outage_logged:
            log.warning("quota: cannot count messages (%s); serving users without a limit", reason)
            self._outage_logged = True

    @hookimpl
    async def honeychat_ingest(self, turn: Turn) -> Reply | None:
        limit = turn.tier.daily_message_limit
        if limit is None or turn.message.platform in self.config.exempt_platforms:
            return None
        platform, user_id = turn.message.platform, turn.message.user_id
        day, left = self.local_day(platform, user_id)
        has_media = any(kind_of(a) for a in turn.message.attachments)
        weight = self.config.media_weight if has_media else 1
        count = await self.count(turn.bot, self.key(turn.bot, platform, user_id, day), weight)
        if count is None or count <= limit:
            return None
        template = self.config.character_messages.get(turn.character.id, self.config.message)
        return Reply(
            template.format(name=turn.character.name, limit=limit, reset_in=describe_wait(left))
        )

    @hookimpl
    async def honeychat_turn_complete(self, turn: Turn) -> None:
        if turn.tier.daily_message_limit is None or not turn.tools:
            return
        if turn.message.platform in self.config.exempt_platforms:
            return
        steps = len({record["step"] for record in turn.tools})
        cost = (
            steps * self.config.tool_step_weight
            + turn.timings.get("tools", 0.0) * self.config.tool_second_weight
        )
        if cost <= 0:
            return
        platform, user_id = turn.message.platform, turn.message.user_id
        day, _ = self.local_day(platform, user_id)
        await self.count(turn.bot, self.key(turn.bot, platform, user_id, day), cost, tools=True)
