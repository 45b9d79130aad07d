"""Shared setup for the Slack tests: an adapter in HTTP (Events API) mode on a fresh bot."""

from __future__ import annotations

from typing import Any

from honeychat.adapters.slack.adapter import EVENTS_PATH, SlackAdapter
from honeychat.testing.fake_slack import FakeSlack

SECRET = "test-signing-secret"
"""The signing secret the adapters share with the tests' signed requests."""


async def start_adapter(bot_factory: Any, slack: FakeSlack, **settings: Any) -> SlackAdapter:
    """A started adapter in HTTP mode on a fresh bot talking to ``slack`` (stop it after)."""
    bot = await bot_factory(
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url.rstrip("/"),
        slack_host="127.0.0.1",
        slack_port=0,
        **settings,
    )
    adapter = SlackAdapter(bot)
    await adapter.start()
    return adapter


def events_url(adapter: SlackAdapter) -> str:
    """Where the adapter's Events API endpoint listens."""
    return f"http://127.0.0.1:{adapter.port}{EVENTS_PATH}"
