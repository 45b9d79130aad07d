"""The Telegram adapter's settings (``TELEGRAM_*``), its plugin's ``config_model``."""

from __future__ import annotations

from pydantic import Field

from honeychat.core.env_settings import EnvironmentSettings


class TelegramSettings(EnvironmentSettings):
    """What the Telegram adapter reads; each field is the variable of its name, upper-cased."""

    telegram_bot_token: str | None = None
    """The token from @BotFather; the adapter starts only when it is set."""
    telegram_api_base: str | None = None
    """A self-hosted Bot API server (default ``https://api.telegram.org``)."""
    telegram_webhook_url: str | None = None
    """The public HTTPS URL Telegram posts updates to; set it for webhook mode (else long polling)."""
    telegram_webhook_secret: str | None = None
    """Sent by Telegram with every webhook request (A-Z, a-z, 0-9, _ and -); random per run if unset."""
    telegram_webhook_host: str = "0.0.0.0"
    telegram_webhook_port: int = Field(default=8080, ge=0, le=65535)
