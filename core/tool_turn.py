"""Tools in one turn: which the turn offers, the context they get, and what is recorded.

The bot calls :func:`tool_loop` once per turn. It returns ``None`` when the
turn offers no tools (tools off, or none allowed for the character and the
tier): the request then carries no ``tools`` field at all, as before tools
existed. Otherwise every step's calls run through :func:`run_calls` with the
turn's :class:`~honeychat.core.tools.ToolContext`, and each result is added
to ``turn.tools`` (stored with the reply, shown in its provenance trail) and
its time to ``turn.timings["tools"]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING

from honeychat.core.llm import ToolLoop
from honeychat.core.tools import ToolCall, ToolContext, ToolResult, run_calls
from honeychat.core.types import Summary, utc_now

if TYPE_CHECKING:
    from honeychat.core.bot import Bot
    from honeychat.core.turn import Turn


def user_zone(bot: Bot, platform: str, user_id: str) -> tzinfo:
    """The user's time zone, as the clock plugin knows it (UTC without that plugin)."""
    try:
        config = bot.plugins.config("clock")
    except KeyError:
        return UTC
    zone: tzinfo = config.zone_for(platform, user_id)
    return zone


def _clock(bot: Bot) -> Callable[[], datetime]:
    plugin = bot.plugins.pm.get_plugin("clock")
    clock = getattr(plugin, "clock", None)
    return clock if callable(clock) else utc_now


def context_for(turn: Turn) -> ToolContext:
    """The read-only view of ``turn`` its tools receive; its memory search is bound to the turn's
    conversation, so no argument the model sends can point it at another."""
    bot, conversation = turn.bot, turn.conversation

    async def search(query: str, k: int) -> list[Summary]:
        found = await bot.plugins.first(
            "honeychat_search_memory", conversation=conversation, query=query, k=k, bot=bot
        )
        return list(found or [])

    message = turn.message
    return ToolContext(
        conversation=conversation,
        platform=message.platform,
        user_id=message.user_id,
        chat_id=message.chat_id,
        is_direct=message.is_direct,
        user_name=message.user_name,
        character_id=turn.character.id,
        character_name=turn.character.name,
        tier_name=turn.tier_name,
        zone=user_zone(bot, message.platform, message.user_id),
        clock=_clock(bot),
        _search=search,
    )


def tool_loop(turn: Turn) -> ToolLoop | None:
    """The tools loop of ``turn``, or ``None`` when it offers no tools."""
    bot = turn.bot
    s = bot.settings
    tools = bot.tools.allowed(turn.character, turn.tier, enabled=s.tools_enabled)
    steps = s.tool_max_steps if turn.tier.tool_max_steps is None else turn.tier.tool_max_steps
    if not tools or steps <= 0:
        return None
    ctx = context_for(turn)

    async def run(calls: list[ToolCall]) -> list[ToolResult]:
        step = 1 + max((int(r["step"]) for r in turn.tools), default=0)
        started = time.perf_counter()
        results = await run_calls(tools, calls, ctx, s.tool_timeout)
        turn.timings["tools"] = turn.timings.get("tools", 0.0) + time.perf_counter() - started
        turn.tools += [r.record(step, max_chars=s.tool_history_max_chars) for r in results]
        return results

    return ToolLoop(
        specs=[t.spec() for t in tools.values()],
        run=run,
        max_steps=steps,
        result_max_chars=s.tool_result_max_chars,
    )
