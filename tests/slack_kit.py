"""Shared setup for the Slack tests: an adapter in HTTP (Events API) mode on a fresh bot."""

from __future__ import annotations

from typing import Any

from honeychat.adapters.slack.adapter import EVENTS_PATH, SlackAdapter
from honeychat.testing.fake_slack import FakeSlack

SECRET = "test-signing-secret"
"""The signing secret the adapters share with the tests' signed requests."""


async def start_adapter(bot_factory: Any, slack: FakeSlack, **settings: Any) -> SlackAdapter:
    """A started adapter in HTTP mode on a fresh bot talking to ``slack`` (stop it after)."""
    bot = await bot_factory(plugin_config=slack.http_mode_config(SECRET), **settings)
    adapter = SlackAdapter(bot)
    await adapter.start()
    return adapter


def events_url(adapter: SlackAdapter) -> str:
    """Where the adapter's Events API endpoint listens."""
    return f"http://127.0.0.1:{adapter.port}{EVENTS_PATH}"
