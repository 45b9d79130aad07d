"""The discord.py client: intents, URL redirection, the command tree and event forwarding."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from .channel import NO_MENTIONS
from .transport import UrlRewriter, redirect_client

log = logging.getLogger(__name__)

MessageHandler = Callable[[discord.Message], Awaitable[None]]
InteractionHandler = Callable[[discord.Interaction], Awaitable[None]]
SetupHandler = Callable[["HoneyClient"], Awaitable[None]]


def minimal_intents() -> discord.Intents:
    """Guilds, guild and DM messages, and the privileged message-content intent; nothing else."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = True
    return intents


class HoneyClient(discord.AutoShardedClient):
    """A discord.py client that forwards messages and component clicks to the adapter.

    Slash commands live in :attr:`tree`; ``on_setup`` (run from discord.py's
    ``setup_hook``, after login) installs and syncs them. discord.py's
    auto-sharded client: with ``shard_count`` unset it runs the number of
    shards Discord recommends (one for a small bot), all in this process; with
    ``shard_count`` and ``shard_ids`` it runs only those shards, so several
    processes can share one bot (each identifies with ``[shard_id, shard_count]``).
    """

    def __init__(
        self,
        rewriter: UrlRewriter,
        *,
        on_message: MessageHandler,
        on_component: InteractionHandler,
        on_setup: SetupHandler,
        shard_count: int | None = None,
        shard_ids: list[int] | None = None,
    ) -> None:
        options: dict[str, Any] = {"shard_count": shard_count}
        if shard_ids:
            options["shard_ids"] = shard_ids
        super().__init__(intents=minimal_intents(), allowed_mentions=NO_MENTIONS, **options)
        redirect_client(self, rewriter)
        self.tree: app_commands.CommandTree[HoneyClient] = app_commands.CommandTree(self)
        self._on_message = on_message
        self._on_component = on_component
        self._on_setup = on_setup

    async def setup_hook(self) -> None:
        await self._on_setup(self)

    async def on_message(self, message: discord.Message) -> None:
        await self._on_message(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is discord.InteractionType.component:
            await self._on_component(interaction)

    async def on_resumed(self) -> None:
        log.info("Discord gateway session resumed")

    async def on_disconnect(self) -> None:
        log.info("Discord gateway disconnected; discord.py reconnects and resumes")

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        log.exception("unhandled error in Discord event %s", event_method)
