"""Helpers for testing tools: a :class:`~honeychat.core.tools.ToolContext` without a bot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo

from honeychat.core.tools import ToolContext
from honeychat.core.types import ConversationKey, Summary, utc_now


def tool_context(
    *,
    user_id: str = "alice",
    platform: str = "test",
    character_id: str = "luna",
    zone: tzinfo = UTC,
    clock: Callable[[], datetime] = utc_now,
    memories: list[Summary] | Callable[[str, int], Awaitable[list[Summary]]] | None = None,
) -> ToolContext:
    """A context as a turn of ``user_id`` would give a tool; ``memories`` is what its memory
    search finds (a list, or an async function of the query and ``k``)."""
    search = None
    if callable(memories):
        search = memories
    elif memories is not None:
        found = list(memories)

        async def search(query: str, k: int) -> list[Summary]:
            return found[:k]

    return ToolContext(
        conversation=ConversationKey(platform, user_id, character_id),
        platform=platform,
        user_id=user_id,
        chat_id=user_id,
        is_direct=True,
        user_name=user_id.title(),
        character_id=character_id,
        character_name=character_id.title(),
        tier_name="free",
        zone=zone,
        clock=clock,
        _search=search,
    )
