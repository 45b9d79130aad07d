"""Built-in plugin ``tools``: the tools every character has unless it lists its own.

* ``current_time``: the date and time in the user's time zone (the clock
  plugin's configuration), for "what day is it?" and "how long until...".
* ``search_memory``: searches what this conversation remembers, with the
  chat's own retrieval, scoped to this conversation only.

Disable both with ``DISABLED_PLUGINS=tools``, or leave them out of a
character's ``tools`` list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from honeychat import hookimpl
from honeychat.core.tools import Tool, ToolContext, tool

if TYPE_CHECKING:
    from honeychat.core.bot import Bot


@tool
async def current_time(ctx: ToolContext) -> str:
    """The current date, time and time zone of the user you are talking to."""
    now = ctx.now()
    return f"{now:%A} {now.day} {now:%B %Y}, {now:%H:%M} ({now.tzinfo}, UTC{now:%z})"


class MemoryQuery(BaseModel):
    """Arguments of ``search_memory``."""

    query: str = Field(min_length=1, description="What to look for, in a few words.")
    k: int = Field(default=5, ge=1, le=20, description="How many memories to return at most.")


@tool(params=MemoryQuery)
async def search_memory(ctx: ToolContext, query: str, k: int = 5) -> str:
    """Search what you remember of earlier conversations with this user (older than the messages you see)."""
    found = await ctx.search_memory(query, k)
    if not found:
        return "Nothing found in memory for that."
    return "\n".join(f"- {s.text.strip()}" for s in found if s.text.strip())


class BuiltinToolsPlugin:
    """Registers ``current_time`` and ``search_memory``."""

    @hookimpl
    def honeychat_register_tools(self, bot: Bot) -> list[Tool]:
        return [current_time, search_memory]
