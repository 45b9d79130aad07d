"""The shipped app manifest asks for what the adapter listens to, and nothing it cannot use."""

from __future__ import annotations

from pathlib import Path

import yaml

from honeychat.adapters.slack.commands import SLASH_COMMAND

MANIFEST = Path(__file__).resolve().parent.parent / "deploy" / "slack-manifest.yaml"


def test_manifest_matches_the_adapter() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {"app_mention", "message.im"}
    assert settings["interactivity"]["is_enabled"] is True
    assert isinstance(settings["socket_mode_enabled"], bool)
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [SLASH_COMMAND]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "commands", "im:history", "users:read"} <= scopes
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
