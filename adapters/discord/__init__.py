"""The Discord adapter (discord.py): DMs, mentions and replies, threads and slash commands.

Inside this package ``import discord`` is the top-level discord.py library
(absolute imports), not this package.
"""

from honeychat.adapters.discord.adapter import DiscordAdapter, DiscordStartupError

__all__ = ["DiscordAdapter", "DiscordStartupError"]
