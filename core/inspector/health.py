"""Readiness: can this process reach Redis and Chroma, and is an LLM configured?

The summary backlog is reported alongside; it never makes a process unready
(restarting it would not summarize anything faster).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from honeychat.core.inspector.models import Backlog, Check, Readiness
from honeychat.core.redact import redact

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

CHECK_TIMEOUT = 3.0
"""Seconds each check may take before it counts as down (probes must answer quickly)."""


async def check_redis(bot: Bot) -> Check:
    """PING the hot layer's Redis."""
    memory = bot.memory
    if memory is None or memory.hot is None or bot.redis is None:
        return Check(name="redis", ok=False, detail="the hot memory layer is not connected")
    where = redact(bot.settings.redis_url or "embedded server")
    try:
        await asyncio.wait_for(bot.redis.ping(), CHECK_TIMEOUT)
    except Exception as exc:
        return Check(name="redis", ok=False, detail=redact(f"{where}: {type(exc).__name__}: {exc}"))
    return Check(name="redis", ok=True, detail=f"{where} answers")


async def check_chroma(bot: Bot) -> Check:
    """Heartbeat of the cold layer's Chroma (any other cold store: a read)."""
    memory = bot.memory
    if memory is None or memory.cold is None:
        return Check(name="chroma", ok=False, detail="the cold memory layer is not connected")
    where = redact(bot.settings.chroma_url or "embedded Chroma")
    check = getattr(memory.cold, "check", None)
    try:
        if callable(check):
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
        else:
            await asyncio.wait_for(memory.cold.latest("readyz:probe:probe"), CHECK_TIMEOUT)
    except Exception as exc:
        return Check(name="chroma", ok=False, detail=redact(f"{where}: {exc}"))
    return Check(name="chroma", ok=True, detail=f"{where} answers")


def check_llm(bot: Bot) -> Check:
    """Whether an LLM endpoint is configured (not called: probes must not spend tokens)."""
    endpoint = bot.settings.llm_endpoint
    if not endpoint:
        return Check(
            name="llm",
            ok=False,
            detail="no LLM configured: set OPENROUTER_API_KEY or LLM_BASE_URL",
        )
    return Check(name="llm", ok=True, detail=f"configured: {redact(endpoint)}")


async def summary_backlog(bot: Bot) -> Backlog | None:
    """Summary work waiting in Redis, or ``None`` if the hot layer cannot say."""
    memory = bot.memory
    backlog = getattr(memory.hot, "backlog", None) if memory is not None else None
    if backlog is None:
        return None
    with contextlib.suppress(Exception):
        count, oldest = await asyncio.wait_for(backlog(), CHECK_TIMEOUT)
        wait = None if oldest is None else round(max(0.0, time.time() - oldest), 1)
        return Backlog(pending_windows=count, oldest_wait_seconds=wait)
    return None


async def readiness(bot: Bot) -> Readiness:
    """Every check, run concurrently, and the summary backlog."""
    redis_check, chroma_check, backlog = await asyncio.gather(
        check_redis(bot), check_chroma(bot), summary_backlog(bot)
    )
    checks = [redis_check, chroma_check, check_llm(bot)]
    return Readiness(ready=all(c.ok for c in checks), checks=checks, backlog=backlog)
