"""honeychat's pytest plugin (entry point ``pytest11``): fixtures for bots and plugins.

``bot_factory`` builds started bots with real stores (an embedded
Redis-protocol server and an embedded Chroma in the test's temporary
directory) and the LLM pointed at a :class:`~honeychat.testing.fake_llm.FakeLLM`
on loopback. ``send`` sends a message as a user and returns the channel with
what came back; :meth:`BotFactory.last_prompt` shows what the LLM received
and :func:`memory_state` what memory holds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from honeychat.core.bot import Bot
from honeychat.core.settings import Settings
from honeychat.core.types import ConversationKey, IncomingMessage
from honeychat.testing.channel import RecordingChannel
from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.responders import is_summary_request


class BotFactory:
    """Builds bots for one test; every bot is stopped when the test ends."""

    def __init__(self, data_dir: Path, llm: FakeLLM) -> None:
        self.data_dir = data_dir
        self.llm = llm
        self.bots: list[Bot] = []

    def settings(self, **overrides: Any) -> Settings:
        """Settings isolated to this test: its own data dir, key prefix and the fake LLM."""
        values: dict[str, Any] = {
            "data_dir": self.data_dir,
            "redis_url": None,
            "chroma_url": None,
            "key_prefix": f"t{uuid.uuid4().hex[:8]}",
            "llm_base_url": self.llm.base_url,
            "llm_api_key": "test-key",
            "openrouter_api_key": None,
            "llm_backoff_base": 0.01,
            "llm_backoff_max": 0.05,
            "jobs_poll_seconds": 0.1,  # retries and delayed jobs due within 0.1 s
        }
        values.update(overrides)
        return Settings(**values)

    async def __call__(
        self, *, plugins: list[tuple[str, object]] | None = None, **overrides: Any
    ) -> Bot:
        """A started bot. ``plugins`` are ``(name, plugin)`` pairs registered before the
        installed ones; an installed plugin of the same name is left out, so a test of a
        plugin passes whether or not its package is installed."""
        plugins = plugins or []
        if plugins:
            disabled = list(overrides.get("disabled_plugins", []))
            overrides["disabled_plugins"] = disabled + [name for name, _ in plugins]
        bot = Bot(self.settings(**overrides), plugins=plugins)
        await bot.start()
        self.bots.append(bot)
        return bot

    async def close(self) -> None:
        for bot in reversed(self.bots):
            await bot.stop()

    # Reading what happened

    def chat_prompts(self) -> list[list[dict[str, Any]]]:
        """The messages of every chat request the LLM received (summarization excluded)."""
        return [r.messages for r in self.llm.chat_requests if not is_summary_request(r.json)]

    def last_prompt(self) -> list[dict[str, Any]]:
        """The messages of the latest chat request: system prompt first, the user's text last."""
        prompts = self.chat_prompts()
        assert prompts, "the LLM has not received any chat request"
        return prompts[-1]

    def last_system_prompt(self) -> str:
        """The system prompt of the latest chat request."""
        return str(self.last_prompt()[0]["content"])


async def memory_state(
    bot: Bot, *, user: str = "alice", platform: str = "test", character: str | None = None
) -> dict[str, Any]:
    """Everything memory holds for one conversation (``honeychat_export_memory``), or ``{}``."""
    conversation = ConversationKey(platform, user, character or bot.characters.default.id)
    data = await bot.plugins.first("honeychat_export_memory", conversation=conversation, bot=bot)
    return data or {}


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    """A fake OpenAI-compatible LLM server on 127.0.0.1."""
    async with FakeLLM() as llm:
        yield llm


@pytest.fixture
async def bot_factory(tmp_path: Path, fake_llm: FakeLLM) -> AsyncIterator[BotFactory]:
    """``await bot_factory(**settings)`` gives a started :class:`Bot` with real embedded stores."""
    factory = BotFactory(tmp_path / "honeychat-data", fake_llm)
    yield factory
    await factory.close()


async def send(
    bot: Bot,
    text: str,
    *,
    user: str = "alice",
    platform: str = "test",
    channel: RecordingChannel | None = None,
    **message_fields: Any,
) -> RecordingChannel:
    """Send ``text`` to ``bot`` as ``user`` in a direct chat; returns the channel with the replies."""
    channel = channel or RecordingChannel()
    fields: dict[str, Any] = {"is_direct": True, "chat_id": user, **message_fields}
    message = IncomingMessage(platform=platform, user_id=user, text=text, **fields)
    await bot.handle_message(message, channel)
    return channel
