"""``honeychat serve``: run the inspector with uvicorn, refusing unsafe binds."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from honeychat.core.settings import Settings
from honeychat.core.shutdown import stop_on_signals, within

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
    if (
        settings.inspector_token is not None
        and len(settings.inspector_token.get_secret_value()) < 16
    ):
        return "INSPECTOR_TOKEN is too short: use at least 16 random characters."
    return None


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host (``honeychat run`` handles SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(app: FastAPI, host: str, port: int, *, own_signals: bool = True) -> uvicorn.Server:
    """A uvicorn server for ``app``; ``own_signals=False`` when another part handles signals."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    return uvicorn.Server(config) if own_signals else EmbeddedServer(config)


async def run_with_ops(settings: Settings, host: str, port: int) -> int:
    """``honeychat run`` plus ``/healthz``, ``/readyz`` and ``/metrics`` on ``host:port``.

    The metrics registry is per process, so ``/metrics`` here shows this
    process's turns. Readiness uses a second, adapter-less bot's connections
    to the same Redis and Chroma. Stops when the adapters stop (SIGTERM).
    """
    from honeychat.core.bot import Bot
    from honeychat.core.inspector.app import create_app
    from honeychat.core.runner import run_adapters

    # The probe runs no job worker: the adapters' bot has one.
    async with Bot(settings.model_copy(update={"jobs_worker": False})) as probe_bot:
        server = make_server(create_app(probe_bot, inspector=False), host, port, own_signals=False)
        ops = asyncio.create_task(server.serve())
        try:
            return await run_adapters(settings)
        finally:
            server.should_exit = True
            await asyncio.wait_for(ops, 10)


async def serve(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
    """Start a bot (stores, no adapters), serve the inspector until interrupted, stop the bot."""
    from honeychat.core.bot import Bot
    from honeychat.core.inspector.app import create_app

    async with Bot(settings) as bot:
        # Signals are ours, not uvicorn's: uvicorn re-raises SIGTERM once it has stopped,
        # which would kill the process before the bot (and an embedded valkey) stop.
        server = make_server(create_app(bot), host, port, own_signals=False)
        log.info("inspector on http://%s:%d/", host, port)
        with stop_on_signals(asyncio.Event()) as stop:
            serving = asyncio.create_task(server.serve())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            stopping.cancel()
            await within(serving, settings.shutdown_timeout, "the inspector's open requests")
        return 0 if server.started else 1
