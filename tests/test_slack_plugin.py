"""The Slack plugin registers the adapter through the entry point, only when configured."""

from __future__ import annotations

from typing import Any

from honeychat.adapters.slack.adapter import SlackAdapter
from honeychat.core.runner import collect_adapters


def slack(**settings: Any) -> dict[str, Any]:
    """A ``PLUGIN_CONFIG`` with the Slack plugin's section: a bot token and ``settings``."""
    return {"slack": {"slack_bot_token": "xoxb-1", **settings}}


async def test_adapter_registered_for_http_and_socket_mode(bot_factory: Any) -> None:
    http_bot = await bot_factory(plugin_config=slack(slack_signing_secret="s"))
    (http,) = [a for a in await collect_adapters(http_bot) if a.name == "slack"]
    assert isinstance(http, SlackAdapter) and not http.socket_mode

    socket_bot = await bot_factory(plugin_config=slack(slack_app_token="xapp-1"))
    (socket,) = [a for a in await collect_adapters(socket_bot) if a.name == "slack"]
    assert isinstance(socket, SlackAdapter) and socket.socket_mode


async def test_no_adapter_without_credentials(bot_factory: Any) -> None:
    bare = await bot_factory(plugin_config={"slack": {"slack_bot_token": None}})
    assert not [a for a in await collect_adapters(bare) if a.name == "slack"]
    token_only = await bot_factory(plugin_config=slack(slack_signing_secret=None))
    assert not [a for a in await collect_adapters(token_only) if a.name == "slack"]
