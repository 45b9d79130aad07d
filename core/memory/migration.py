"""Bringing stored memory up to the current format, in place, once per deployment.

Readers accept every format up to :data:`~honeychat.core.types.MEMORY_FORMAT`
(a format-1 record is upgraded as it is read), so memory works before, during
and after this pass. The pass rewrites what is stored so that it says its
version: every buffered message and cached summary in Redis
(:meth:`RedisHotStore.upgrade_records`) and every Chroma document
(:meth:`ChromaColdStore.upgrade_documents`).

It runs in the background when memory starts (``honeychat run``, ``chat``,
``serve``...). Two processes starting at once are fine: a Redis lock lets one
of them do the pass (the other skips it), every step is idempotent, and a
durable marker (``{prefix}:format``, one field per layer) stops later starts
from repeating a finished pass. A process that dies mid-pass leaves the marker
unset and the lock to expire: the next start does the rest. See
``docs/memory-format.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from redis.exceptions import LockError, RedisError

from honeychat.core.memory.stores import ColdStore, HotStore, StoreUnavailable
from honeychat.core.types import MEMORY_FORMAT

log = logging.getLogger(__name__)

LOCK_SECONDS = 60.0
"""How long the pass's lock lives without being renewed (it is renewed every third of it)."""


@dataclass(frozen=True, slots=True)
class UpgradeReport:
    """What one start's pass did: records upgraded per layer (``None``: not run)."""

    hot: int | None = None
    cold: int | None = None
    skipped: str | None = None
    """Why nothing was done: already done, or another process holds the lock."""


def marker_key(prefix: str) -> str:
    """The Redis hash recording the format each layer was upgraded to."""
    return f"{prefix}:format"


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def upgrade_memory(
    hot: HotStore | None,
    cold: ColdStore | None,
    client: redis.asyncio.Redis,
    *,
    prefix: str,
    lock_seconds: float = LOCK_SECONDS,
) -> UpgradeReport:
    """Upgrade both layers' stored records to :data:`MEMORY_FORMAT`, at most one process at once.

    Layers that cannot upgrade themselves (a plugin's own store) are left as
    they are. Raises ``StoreUnavailable`` or ``RedisError`` when a store
    fails; what was upgraded stays upgraded and the next start goes on.
    """
    upgrade_hot = getattr(hot, "upgrade_records", None)
    upgrade_cold = getattr(cold, "upgrade_documents", None)
    marker = marker_key(prefix)
    done = {_decode(k): _decode(v) for k, v in (await client.hgetall(marker)).items()}

    def pending(layer: str, upgrade: Any) -> bool:
        return upgrade is not None and int(done.get(layer) or 1) < MEMORY_FORMAT

    if not pending("hot", upgrade_hot) and not pending("cold", upgrade_cold):
        return UpgradeReport(skipped="already at the current format")
    lock = client.lock(f"{prefix}:format:lock", timeout=lock_seconds, blocking=False)
    if not await lock.acquire():
        return UpgradeReport(skipped="another process is upgrading")
    renewing = asyncio.create_task(_renew(lock, lock_seconds))
    try:
        hot_count = cold_count = None
        if pending("hot", upgrade_hot):
            assert upgrade_hot is not None
            hot_count = await upgrade_hot()
            await client.hset(marker, "hot", MEMORY_FORMAT)
        if pending("cold", upgrade_cold):
            assert upgrade_cold is not None
            cold_count = await upgrade_cold()
            await client.hset(marker, "cold", MEMORY_FORMAT)
        return UpgradeReport(hot=hot_count, cold=cold_count)
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        with contextlib.suppress(LockError, RedisError, OSError):
            await lock.release()


async def _renew(lock: Any, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds / 3)
        with contextlib.suppress(LockError, RedisError, OSError):
            await lock.extend(seconds, replace_ttl=True)


async def upgrade_in_background(
    hot: HotStore | None, cold: ColdStore | None, client: redis.asyncio.Redis, *, prefix: str
) -> UpgradeReport | None:
    """:func:`upgrade_memory`, logging the outcome instead of raising (a start's task)."""
    try:
        report = await upgrade_memory(hot, cold, client, prefix=prefix)
    except (StoreUnavailable, RedisError, OSError) as exc:
        log.warning("memory format upgrade postponed to the next start: %s", exc)
        return None
    if report.skipped is None:
        log.info(
            "memory upgraded to format %d: %s buffered records, %s documents",
            MEMORY_FORMAT,
            "no" if report.hot is None else report.hot,
            "no" if report.cold is None else report.cold,
        )
    return report


__all__ = ["LOCK_SECONDS", "UpgradeReport", "marker_key", "upgrade_in_background", "upgrade_memory"]
