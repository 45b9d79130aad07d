"""The Discord adapter (discord.py): DMs, mentions and replies, threads and slash commands.

Inside this package ``import discord`` is the top-level discord.py library
(absolute imports), not this package. Nothing here imports discord.py until
:class:`DiscordAdapter` is used, so loading the plugin (its settings) stays cheap
where Discord is not configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from honeychat.adapters.discord.adapter import DiscordAdapter, DiscordStartupError

__all__ = ["DiscordAdapter", "DiscordStartupError"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from honeychat.adapters.discord import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
