"""The Slack adapter's settings (``SLACK_*``), its plugin's ``config_model``."""

from __future__ import annotations

from pydantic import Field

from honeychat.core.env_settings import EnvironmentSettings


class SlackSettings(EnvironmentSettings):
    """What the Slack adapter reads; each field is the variable of its name, upper-cased."""

    slack_bot_token: str | None = None
    """The bot token (``xoxb-``); the adapter starts only with it and a secret or app token."""
    slack_signing_secret: str | None = None
    """Verifies Events API requests: set it for HTTP mode."""
    slack_app_token: str | None = None
    """An app-level token (``xapp-``): set it for Socket Mode (no public URL)."""
    slack_api_url: str | None = None
    """Another Web API base than ``https://slack.com/api/`` (proxies, tests)."""
    slack_port: int = Field(default=3000, ge=0, le=65535)
    slack_host: str = "0.0.0.0"
    """Interface the Slack Events API endpoint (``/slack/events``) listens on in HTTP mode."""
