"""``honeychat serve``: run the inspector with uvicorn, refusing unsafe binds."""

from __future__ import annotations

import ipaddress
import logging

from honeychat.core.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_refusal(settings: Settings, host: str) -> str | None:
    """Why the inspector must not bind to ``host`` (``None`` when it may)."""
    if settings.inspector_token is None and not is_loopback(host):
        return (
            f"refusing to serve the inspector on {host} without a token: anyone who can reach it "
            "could read and erase every conversation. Set INSPECTOR_TOKEN (a long random "
            "string), or bind to 127.0.0.1."
        )
    if settings.inspector_token is not None and len(settings.inspector_token.get_secret_value()) < 16:
        return "INSPECTOR_TOKEN is too short: use at least 16 random characters."
    return None


async def serve(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
    """Start a bot (stores, no adapters), serve the inspector until interrupted, stop the bot."""
    import uvicorn

    from honeychat.core.bot import Bot
    from honeychat.core.inspector.app import create_app

    async with Bot(settings) as bot:
        config = uvicorn.Config(
            create_app(bot),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
        )
        server = uvicorn.Server(config)
        log.info("inspector on http://%s:%d/", host, port)
        await server.serve()
        return 0 if server.started else 1
