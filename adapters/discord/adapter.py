"""The Discord adapter: runs discord.py's client and turns its events into core turns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import discord

from honeychat.core.inflight import InflightTasks
from honeychat.core.types import Reply

from .channel import DiscordChannel, ForbiddenLog
from .client import HoneyClient
from .commands import install_commands
from .components import choice_payload, discord_codec
from .incoming import PLATFORM, channel_allowed, interaction_incoming, is_from_bot, to_incoming
from .media import with_downloads
from .respond import reply_when_ready, respond
from .settings import DiscordSettings
from .transport import UrlRewriter, install_webhook_redirect

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

log = logging.getLogger(__name__)

READY_TIMEOUT = 30.0
"""How long ``start`` waits for the gateway's READY before returning anyway."""
DRAIN_TIMEOUT = 30.0
"""How long ``stop`` lets in-flight replies finish."""

NOT_HERE = "I don't answer in this channel."


class DiscordStartupError(RuntimeError):
    """Discord refused to start the bot; the message says what to fix."""


def explain_startup_failure(error: BaseException) -> str:
    """One clear sentence for why the client could not start."""
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return (
            "Discord refused the connection because the Message Content intent is not enabled: turn on "
            "'Message Content Intent' under Bot > Privileged Gateway Intents in the Developer Portal."
        )
    if isinstance(error, discord.LoginFailure):
        return "Discord rejected DISCORD_BOT_TOKEN: copy the token from the Bot page of your application."
    return f"Could not connect to Discord: {error}"


class DiscordAdapter:
    """Serves the bot's characters on Discord: DMs, mentions and replies, threads, slash commands."""

    name = PLATFORM

    def __init__(self, bot: Bot, settings: DiscordSettings | None = None) -> None:
        """``settings`` default to the ``discord`` plugin's validated config."""
        self.bot = bot
        settings = settings if settings is not None else bot.plugins.config(PLATFORM)
        self.settings: DiscordSettings = settings
        self._token = settings.discord_bot_token or ""
        self._allowed = [str(c) for c in settings.discord_allowed_channels]
        self._rewriter = UrlRewriter(settings.discord_api_base, settings.discord_gateway_url)
        self._forbidden = ForbiddenLog()
        self.inflight = InflightTasks("discord")
        self.codec = discord_codec(bot)
        self._ready = asyncio.Event()
        self._client: HoneyClient | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def client(self) -> HoneyClient:
        """The running discord.py client (after :meth:`start`)."""
        if self._client is None:
            raise RuntimeError("the Discord adapter is not started")
        return self._client

    # Lifecycle

    async def start(self) -> None:
        """Log in, sync slash commands and connect; return once the gateway sent READY.

        Raises :class:`DiscordStartupError` with one clear sentence when Discord
        refuses (bad token, Message Content intent not enabled).
        """
        self._client = HoneyClient(
            self._rewriter,
            on_message=self._on_message,
            on_component=self._on_component,
            on_setup=self._setup,
            shard_count=self.settings.discord_shard_count,
            shard_ids=self.settings.discord_shard_ids,
        )
        self._client.event(self.on_connect)
        self._client.event(self.on_ready)
        self._task = asyncio.create_task(self._run(), name="discord-client")
        ready = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait(
            {self._task, ready}, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        ready.cancel()
        if self._task in done:
            error = self._task.exception() or RuntimeError("the Discord client stopped")
            await self._client.close()
            raise DiscordStartupError(explain_startup_failure(error)) from error
        if not done:
            log.warning(
                "Discord gateway not ready after %.0f s; still trying in the background",
                READY_TIMEOUT,
            )
        self._task.add_done_callback(self._client_ended)

    async def on_connect(self) -> None:
        """The gateway accepted us (READY): events flow from now on."""
        self._ready.set()

    async def on_ready(self) -> None:
        """discord.py finished loading the guilds it was told about."""
        user = self.client.user
        log.info("Discord ready as %s (id %s)", user, user.id if user else "?")

    async def _run(self) -> None:
        # Interaction responses go through discord.py's webhook transport, which
        # it looks up in a context variable: set it for this task and its children.
        install_webhook_redirect(self._rewriter)
        await self.client.start(self._token, reconnect=True)

    def _client_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("Discord client stopped: %s", explain_startup_failure(task.exception()))  # type: ignore[arg-type]

    async def stop(self) -> None:
        """Let in-flight replies finish (bounded; the rest is cancelled), then disconnect."""
        await self.inflight.drain(DRAIN_TIMEOUT)
        if self._client is not None:
            await self._client.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError, Exception):
                await asyncio.wait_for(self._task, 10)

    async def _setup(self, client: HoneyClient) -> None:
        """Runs after login: register and sync the slash commands."""
        names = install_commands(client.tree, self.bot, self._run_slash)
        try:
            await client.tree.sync()
        except discord.HTTPException as error:
            log.warning("syncing Discord slash commands failed (chat still works): %s", error)
        else:
            log.info("synced Discord slash commands: %s", ", ".join(f"/{n}" for n in names))

    # Events

    async def _on_message(self, message: discord.Message) -> None:
        me = self.client.user
        if me is None or is_from_bot(message):
            return
        if message.guild is not None and not channel_allowed(message.channel, self._allowed):
            return
        incoming = with_downloads(to_incoming(message, me), message)
        if not incoming.addresses_bot and (incoming.is_direct or not incoming.text.strip()):
            return  # the core keeps a guild message not for the bot in its space's memory
        channel = DiscordChannel(
            message.channel,
            message.channel.id,
            self._forbidden,
            reply_to=None if incoming.is_direct else message,
            codec=self.codec,
        )
        async with self.inflight.track():
            await self.bot.handle_event(
                PLATFORM, str(message.id), self.bot.handle_message(incoming, channel)
            )

    async def _run_slash(self, interaction: discord.Interaction, name: str, args: str) -> None:
        """A slash command: run it through the core and render its Reply."""
        if await self._refused(interaction):
            return
        incoming = interaction_incoming(interaction, f"/{name} {args}".strip())
        async with self.inflight.track():
            await reply_when_ready(
                interaction, self.bot.run_command(incoming, name, args), codec=self.codec
            )

    async def _on_component(self, interaction: discord.Interaction) -> None:
        """A click on one of our buttons or select menus: run the chosen command."""
        data: dict[str, Any] = dict(interaction.data or {})
        payload = choice_payload(
            str(data.get("custom_id", "")), [str(v) for v in data.get("values", [])]
        )
        picked = await self.codec.decode(payload) if payload is not None else None
        if picked is None or await self._refused(interaction):
            return
        command, value = picked
        incoming = interaction_incoming(interaction, f"/{command} {value}".strip())
        pending = self.bot.run_command(incoming, command, value, from_choice=True)
        on_private = interaction.message is not None and interaction.message.flags.ephemeral
        async with self.inflight.track():
            await reply_when_ready(interaction, pending, update=on_private, codec=self.codec)

    # Helpers

    async def _refused(self, interaction: discord.Interaction) -> bool:
        """Dedupe a replayed interaction, and refuse channels outside the allow-list."""
        if not await self.bot.claim_event(PLATFORM, f"interaction:{interaction.id}"):
            return True  # a replayed interaction
        if interaction.guild_id is not None and not channel_allowed(
            interaction.channel, self._allowed
        ):
            await respond(interaction, Reply(NOT_HERE, ephemeral=True))
            return True
        return False
