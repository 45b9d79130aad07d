"""Shared setup for the Discord tests: a started Bot, a FakeDiscord and the adapter between them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from honeychat.adapters.discord import DiscordAdapter
from honeychat.core.bot import Bot
from honeychat.testing.fake_discord import FakeDiscord, RecordedRequest
from honeychat.testing.fake_llm import FakeLLM

WAIT = 15.0
"""Upper bound for any single wait on the fake (tests never hang)."""


@dataclass
class DiscordRig:
    """Everything a Discord test needs."""

    fake: FakeDiscord
    adapter: DiscordAdapter
    bot: Bot
    llm: FakeLLM

    def posts(self, channel_id: str) -> list[RecordedRequest]:
        """Messages the bot created in a channel."""
        return self.fake.requests_matching("POST", rf"/channels/{channel_id}/messages")

    def edits(self, channel_id: str) -> list[RecordedRequest]:
        """Edits of the bot's messages in a channel."""
        return self.fake.requests_matching("PATCH", rf"/channels/{channel_id}/messages/\d+")

    def callbacks(self) -> list[RecordedRequest]:
        """Interaction responses."""
        return self.fake.requests_matching("POST", r"/interactions/\d+/[^/]+/callback")

    def callback(self, interaction: dict[str, Any]) -> Any:
        """The body of the callback answering one interaction, or ``None`` yet."""
        matches = self.fake.requests_matching(
            "POST", rf"/interactions/{interaction['id']}/[^/]+/callback"
        )
        return matches[0].json if matches else None

    async def until(self, predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
        """Wait (bounded) until ``predicate()`` holds, re-checking on every request the fake sees."""
        return await self.fake.wait_for(predicate, timeout)

    def content_of(self, request: RecordedRequest) -> str:
        return str((request.json or {}).get("content", ""))


def discord_settings(fake: FakeDiscord, **overrides: Any) -> dict[str, Any]:
    """The Discord plugin's ``PLUGIN_CONFIG`` section for talking to ``fake``."""
    return {
        "discord_bot_token": "fake-token",
        "discord_api_base": fake.api_base,
        "discord_gateway_url": fake.gateway_url,
        **overrides,
    }


@asynccontextmanager
async def discord_rig(bot_factory: Any, **settings: Any) -> AsyncIterator[DiscordRig]:
    """A started bot serving Discord through discord.py against a fresh FakeDiscord.

    ``discord_*`` settings go to the Discord plugin's section, the others to the
    core. A setting given as a callable is called with the fake (for ids it generates).
    """
    fake_options = ("message_content_allowed", "everyone_permissions")
    fake_kwargs = {k: settings.pop(k) for k in fake_options if k in settings}
    async with FakeDiscord(**fake_kwargs) as fake:
        settings = {k: v(fake) if callable(v) else v for k, v in settings.items()}
        adapter_settings = {k: settings.pop(k) for k in list(settings) if k.startswith("discord_")}
        bot = await bot_factory(
            plugin_config={"discord": discord_settings(fake, **adapter_settings)}, **settings
        )
        adapter = DiscordAdapter(bot)
        await adapter.start()
        try:
            yield DiscordRig(fake, adapter, bot, bot_factory.llm)
        finally:
            await adapter.stop()
