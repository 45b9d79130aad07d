"""One codec for the payload a platform carries back when a user picks a :class:`Choice`.

Buttons and menus carry a short string (Telegram callback data: 64 bytes;
Discord custom ids and select values: 100 characters; Slack option values:
150 characters). A choice is encoded as ``command:value`` when that fits the
adapter's limit.

Overflow policy: a longer pair is stored in Redis under
``<prefix>:choice:<digest>`` for :data:`CHOICE_TTL_SECONDS` (30 days, renewed
each time the same pair is sent again) and the button carries ``~<digest>``.
So long choices keep working after a restart and on every replica. A button
older than that, or one whose pair could not be stored while Redis was down
and whose process restarted since, decodes to ``None``: the adapter then asks
the user to run the command again. A bounded table in process memory also
keeps the latest pairs, for when Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from honeychat.core.types import Choice

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

log = logging.getLogger(__name__)

CHOICE_TTL_SECONDS = 30 * 86400
LONG_PREFIX = "~"
_LOCAL_MAX = 4096


class ChoiceCodec:
    """Encodes choices into payloads of at most ``limit`` bytes, and back.

    Without a ``bot`` (or while its Redis is down) long pairs live in process memory only.
    """

    def __init__(self, limit: int, bot: Bot | None = None) -> None:
        if limit < 1 + 24:
            raise ValueError("a choice payload limit must leave room for a digest (25 bytes)")
        self.bot = bot
        self.limit = limit
        self._local: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._writes: set[asyncio.Task[None]] = set()

    def encode(self, choice: Choice) -> str:
        """The payload for ``choice``: ``command:value``, or ``~digest`` when that is too long."""
        data = f"{choice.command}:{choice.value}"
        if len(data.encode()) <= self.limit and not data.startswith(LONG_PREFIX):
            return data
        key = LONG_PREFIX + hashlib.sha256(data.encode()).hexdigest()[:24]
        self._local[key] = (choice.command, choice.value)
        self._local.move_to_end(key)
        while len(self._local) > _LOCAL_MAX:
            self._local.popitem(last=False)
        self._store(key, data)
        return key

    def _store(self, key: str, data: str) -> None:
        redis = self.bot.redis if self.bot is not None else None
        if redis is None:
            return

        async def write() -> None:
            try:
                await redis.set(self._redis_key(key), data, ex=CHOICE_TTL_SECONDS)
            except Exception as exc:
                log.warning("could not store a long choice (it works until a restart): %s", exc)

        try:
            task = asyncio.get_running_loop().create_task(write())
        except RuntimeError:
            return  # no running loop (encoding outside the bot): process memory only
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def decode(self, data: str) -> tuple[str, str] | None:
        """``(command, value)`` of a payload, or None when it is unknown, expired or malformed."""
        if not data.startswith(LONG_PREFIX):
            command, sep, value = data.partition(":")
            return (command, value) if sep and command else None
        if data in self._local:
            return self._local[data]
        redis = self.bot.redis if self.bot is not None else None
        if redis is None:
            return None
        try:
            stored = await redis.get(self._redis_key(data))
        except Exception as exc:
            log.warning("could not read a long choice: %s", exc)
            return None
        if stored is None:
            return None
        text = stored.decode() if isinstance(stored, bytes) else str(stored)
        command, sep, value = text.partition(":")
        return (command, value) if sep and command else None

    def _redis_key(self, key: str) -> str:
        prefix = self.bot.settings.key_prefix if self.bot is not None else "hc"
        return f"{prefix}:choice:{key[len(LONG_PREFIX) :]}"
