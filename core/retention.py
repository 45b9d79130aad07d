"""Retention: conversations idle for ``MEMORY_RETENTION_DAYS`` are erased from both layers.

Off by default (memory is kept for ever). When set, every process runs a
periodic sweep (:class:`RetentionSweeper`, every ``RETENTION_SWEEP_MINUTES``);
a lock in Redis (``SET NX PX`` on ``<KEY_PREFIX>:retention:lock``) lets one
process at a time do the work, so several replicas never sweep together.
A conversation's last activity is the sorted set
``<KEY_PREFIX>:conversations:active`` kept by the hot store (to within an
hour); conversations stored by a version that did not keep it are given the
time of the first sweep that sees them, so they expire ``N`` days after that.

An expired conversation is cleared through the memory hooks like ``/forget``
(both layers, summary cache, provenance trails, plugins' own state), then its
state keys are deleted too, so nothing of it is left in Redis.

:meth:`RetentionSweeper.sweep_once` is one self-contained unit of work: when
honeychat has durable scheduled jobs, it can run as one of them instead of
this module's timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from honeychat.core.forget import clear_conversation
from honeychat.core.memory.hot import RedisHotStore
from honeychat.core.memory.stores import StoreUnavailable
from honeychat.core.types import ConversationKey

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

log = logging.getLogger(__name__)

LOCK_SECONDS = 15 * 60
"""How long one sweep may hold the lock (it gives it back as soon as it is done)."""
_BATCH = 100

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RetentionSweeper:
    """Erases conversations idle for more than ``days`` days, one process at a time."""

    def __init__(
        self,
        bot: Bot,
        days: float,
        *,
        every_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if days <= 0:
            raise ValueError(f"retention must be positive, got {days} days")
        self.bot = bot
        self.days = days
        self.every_seconds = every_seconds
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        prefix = bot.settings.key_prefix
        self.lock_key = f"{prefix}:retention:lock"
        self.backfilled_key = f"{prefix}:retention:backfilled"

    def start(self) -> None:
        """Sweep every ``every_seconds`` in the background (the first after one interval)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="honeychat-retention"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_seconds)
            try:
                await self.sweep_once()
            except StoreUnavailable as exc:
                log.warning("retention sweep skipped: %s", exc)
            except Exception:
                log.exception("retention sweep failed; trying again at the next one")

    async def sweep_once(self) -> int | None:
        """Erase every conversation idle longer than the retention; how many.

        ``None`` when another process holds the lock (it is sweeping).
        Raises ``StoreUnavailable`` when a layer cannot be reached; what was
        erased stays erased and the next sweep carries on.
        """
        memory, redis = self.bot.memory, self.bot.redis
        hot = memory.hot if memory is not None else None
        if redis is None or not isinstance(hot, RedisHotStore):
            return 0  # retention knows the Redis hot store only
        token = secrets.token_hex(16)
        try:
            taken = await redis.set(self.lock_key, token, nx=True, px=LOCK_SECONDS * 1000)
        except Exception as exc:
            raise StoreUnavailable("hot", f"retention lock: {exc}") from exc
        if not taken:
            return None
        erased = 0
        try:
            await self._backfill(hot)
            cutoff = self.clock() - self.days * 86400
            while batch := await hot.idle_conversations(cutoff, _BATCH):
                for conversation_id in batch:
                    await self._erase(hot, conversation_id)
                    erased += 1
        finally:
            with contextlib.suppress(Exception):
                await redis.eval(_RELEASE, 1, self.lock_key, token)
        if erased:
            log.warning(
                "retention: erased %d conversation(s) idle for more than %g days", erased, self.days
            )
        return erased

    async def _erase(self, hot: RedisHotStore, conversation_id: str) -> None:
        try:
            conversation = ConversationKey.parse(conversation_id)
        except ValueError:
            log.warning("retention: dropping a malformed conversation id %r", conversation_id)
            await hot.client.zrem(hot.activity_key, conversation_id)
            return
        await clear_conversation(self.bot, conversation)
        await hot.forget(conversation)

    async def _backfill(self, hot: RedisHotStore) -> None:
        """Once per deployment: give conversations of an older version an activity time."""
        if await hot.client.exists(self.backfilled_key):
            return
        now, cursor = self.clock(), 0
        while True:
            cursor, ids = await hot.conversations(cursor, 500, with_state=True)
            for conversation_id in ids:
                await hot.note_known(conversation_id, now)
            if cursor == 0:
                break
        await hot.client.set(self.backfilled_key, str(now))
