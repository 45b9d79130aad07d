"""What each space and each user chose: the space's character and reply policy, who shares.

Kept in Redis (the source of truth every process shares), with the same
fail-soft rule as the rest of the chat path: while Redis cannot be read,
a space gets the defaults and no one's private memory is shared (the safe
answer). Writes raise :class:`SettingNotSaved` so a command can say so.

Keys (``<space>`` and ``<user>`` percent-encoded like conversation ids)::

    {prefix}:share:<platform>:<user>:<character>   "1" when the user shares   (durable)
    {prefix}:space:<platform>:<space>:character    the space's character       (durable)
    {prefix}:space:<platform>:<space>:policy       hash: the reply policy      (durable)
    {prefix}:space:<platform>:<space>:replies:<minute>  replies this minute     (expires)
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast
from urllib.parse import quote

if TYPE_CHECKING:
    from honeychat.core.bot import Bot
    from honeychat.core.types import IncomingMessage

log = logging.getLogger(__name__)

ReplyMode = Literal["mentions", "keywords", "chance"]
ADMIN_CHECK_SECONDS = 5.0
"""How long the platform may take to say whether someone administers a space."""

T = TypeVar("T")


class SettingNotSaved(RuntimeError):
    """A choice could not be stored (Redis unreachable)."""


@dataclass(frozen=True, slots=True)
class ReplyPolicy:
    """When the character answers in a space.

    It always answers a message that mentions it or replies to it; with
    ``keywords`` also a message containing one of ``keywords`` (whole words,
    any case); with ``chance`` also any other message with probability
    ``chance``. At most ``per_minute`` replies per minute (``None``: the
    ``SPACE_REPLIES_PER_MINUTE`` default).
    """

    mode: ReplyMode = "mentions"
    keywords: tuple[str, ...] = ()
    chance: float = 0.0
    per_minute: int | None = None

    def wants(self, message: IncomingMessage, text: str, draw: float) -> bool:
        """Whether ``message`` calls for a reply; ``draw`` is a uniform number in [0, 1)."""
        if message.addresses_bot:
            return True
        if self.mode == "keywords" and self.keywords:
            words = "|".join(re.escape(k) for k in self.keywords)
            return re.search(rf"(?<!\w)(?:{words})(?!\w)", text, re.IGNORECASE) is not None
        if self.mode == "chance":
            return draw < self.chance
        return False

    def describe(self, default_per_minute: int) -> str:
        limit = default_per_minute if self.per_minute is None else self.per_minute
        when = "when mentioned or replied to"
        if self.mode == "keywords" and self.keywords:
            when += ", and on the words " + ", ".join(self.keywords)
        elif self.mode == "chance":
            when += f", and to {self.chance:.0%} of other messages"
        return f"I answer {when}; at most {limit} replies a minute."

    def to_hash(self) -> dict[str, str]:
        data = {"mode": self.mode, "keywords": "\n".join(self.keywords), "chance": str(self.chance)}
        if self.per_minute is not None:
            data["per_minute"] = str(self.per_minute)
        return data

    @classmethod
    def from_hash(cls, data: dict[str, Any]) -> ReplyPolicy:
        mode = data.get("mode")
        per_minute = data.get("per_minute")
        try:
            return cls(
                mode=mode if mode in ("mentions", "keywords", "chance") else "mentions",
                keywords=tuple(k for k in str(data.get("keywords") or "").split("\n") if k),
                chance=min(max(float(data.get("chance") or 0), 0.0), 1.0),
                per_minute=None if per_minute in (None, "") else max(int(per_minute), 0),
            )
        except ValueError:
            return cls()


@dataclass
class SpaceSettings:
    """Reads and writes the per-space and per-user choices of one bot."""

    bot: Bot
    _local_replies: OrderedDict[str, int] = field(default_factory=OrderedDict)

    # Keys

    def _space_key(self, platform: str, space: str, name: str) -> str:
        prefix = self.bot.settings.key_prefix
        return f"{prefix}:space:{quote(platform, safe='')}:{quote(space, safe='')}:{name}"

    def _share_key(self, platform: str, user_id: str, character_id: str) -> str:
        parts = ":".join(quote(p, safe="") for p in (platform, user_id, character_id))
        return f"{self.bot.settings.key_prefix}:share:{parts}"

    async def _read(self, call: Awaitable[T], default: T, what: str) -> T:
        if self.bot.redis is None:
            if asyncio.iscoroutine(call):
                call.close()
            return default
        try:
            return await asyncio.wait_for(call, self.bot.settings.redis_timeout)
        except Exception as exc:
            log.warning("could not read %s; using the default: %s", what, exc)
            return default

    async def _write(self, call: Awaitable[Any], what: str) -> None:
        if self.bot.redis is None:
            if asyncio.iscoroutine(call):
                call.close()
            raise SettingNotSaved(f"{what}: no Redis")
        try:
            await asyncio.wait_for(call, self.bot.settings.redis_timeout)
        except Exception as exc:
            raise SettingNotSaved(f"{what}: {exc}") from exc

    # Sharing private memory in spaces

    async def shares_private(self, platform: str, user_id: str, character_id: str) -> bool:
        """Whether the user lets ``character_id`` use their private memory in spaces."""
        if self.bot.redis is None:
            return False
        key = self._share_key(platform, user_id, character_id)
        return await self._read(self.bot.redis.get(key), None, "a sharing choice") == "1"

    async def set_shares_private(
        self, platform: str, user_id: str, character_id: str, on: bool
    ) -> None:
        """Record the user's ``/memory share on|off``; raises :class:`SettingNotSaved`."""
        redis = self.bot.redis
        key = self._share_key(platform, user_id, character_id)
        call = None if redis is None else (redis.set(key, "1") if on else redis.delete(key))
        await self._write(call or _nothing(), "the sharing choice")

    # The space's character

    async def character_id(self, platform: str, space: str) -> str | None:
        if self.bot.redis is None:
            return None
        key = self._space_key(platform, space, "character")
        stored = await self._read(self.bot.redis.get(key), None, "the space's character")
        return stored if isinstance(stored, str) else None

    async def set_character_id(self, platform: str, space: str, character_id: str) -> None:
        redis = self.bot.redis
        key = self._space_key(platform, space, "character")
        await self._write(
            _nothing() if redis is None else redis.set(key, character_id), "the character"
        )

    # Reply policy and rate limit

    async def policy(self, platform: str, space: str) -> ReplyPolicy:
        if self.bot.redis is None:
            return ReplyPolicy()
        key = self._space_key(platform, space, "policy")
        data = await self._read(self.bot.redis.hgetall(key), {}, "the space's reply policy")
        return (
            ReplyPolicy.from_hash({str(k): v for k, v in data.items()}) if data else ReplyPolicy()
        )

    async def set_policy(self, platform: str, space: str, policy: ReplyPolicy) -> None:
        redis = self.bot.redis
        key = self._space_key(platform, space, "policy")
        if redis is None:
            await self._write(_nothing(), "the reply policy")
            return

        async def replace() -> None:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(key, mapping=cast("dict[Any, Any]", policy.to_hash()))
                await pipe.execute()

        await self._write(replace(), "the reply policy")

    async def take_reply_slot(self, platform: str, space: str, per_minute: int) -> bool:
        """Count one reply in the space's current minute; False when the cap is reached.

        Counted in Redis so every process shares the cap; while Redis is
        unreachable, counted per process.
        """
        if per_minute <= 0:
            return False
        minute = int(time.time() // 60)
        key = self._space_key(platform, space, f"replies:{minute}")
        redis = self.bot.redis
        if redis is not None:
            try:
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, 120)
                    used, _ = await asyncio.wait_for(
                        pipe.execute(), self.bot.settings.redis_timeout
                    )
                return int(used) <= per_minute
            except Exception as exc:
                log.warning("reply rate limit counted per process: %s", exc)
        used = self._local_replies.get(key, 0) + 1
        self._local_replies[key] = used
        while len(self._local_replies) > 10_000:
            self._local_replies.popitem(last=False)
        return used <= per_minute

    # Admins

    async def is_admin(self, message: IncomingMessage) -> bool:
        """Whether the sender may run a space's admin commands: listed in ``SPACE_ADMINS``, or
        an admin by the platform's own rules (the adapter's check, bounded in time)."""
        if f"{message.platform}:{message.user_id}" in self.bot.settings.space_admins:
            return True
        if message.is_space_admin is None:
            return False
        try:
            return bool(await asyncio.wait_for(message.is_space_admin(), ADMIN_CHECK_SECONDS))
        except Exception as exc:
            log.warning(
                "could not check whether %s administers the space: %s", message.user_id, exc
            )
            return False


async def _nothing() -> None:
    return None
