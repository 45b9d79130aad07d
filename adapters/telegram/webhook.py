"""Webhook mode: an aiohttp server receiving updates, built on aiogram's aiohttp integration.

Every request must carry the secret set with ``setWebhook`` in
``X-Telegram-Bot-Api-Secret-Token``: a wrong or missing one gets 401 and is
not processed. A body that is not a valid update gets 400 and is logged.
A valid update is recorded in Redis (the core's ``EventIntake``) and then
acknowledged (200); it is handled in the background by whichever replica
reads it, so Telegram never waits on the LLM and a replica dying mid-turn
does not lose it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot as AiogramBot
from aiogram import Dispatcher
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError

from honeychat.adapters.telegram.polling import ALLOWED_UPDATES

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_PATH = "/telegram/webhook"


class CheckedRequestHandler(SimpleRequestHandler):
    """aiogram's request handler, with the secret always required and bad bodies refused."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        tg: AiogramBot,
        *,
        secret_token: str,
        accept: Callable[[Update, dict[str, Any]], Awaitable[None]],
    ) -> None:
        super().__init__(dispatcher, tg, handle_in_background=True, secret_token=secret_token)
        self.accept = accept

    async def handle(self, request: web.Request) -> web.Response:
        """Check the secret, read the update, record it (``accept``), then acknowledge."""
        if not self.verify_secret(request.headers.get(SECRET_HEADER, ""), self.bot):
            log.warning(
                "telegram webhook: request without the right secret from %s", request.remote
            )
            return web.Response(status=401, text="Unauthorized")
        try:
            data = await request.json()
            update = Update.model_validate(data, context={"bot": self.bot})
        except (ValueError, ValidationError) as exc:
            log.warning("telegram webhook: malformed update refused: %.300s", exc)
            return web.Response(status=400, text="Bad Request: not a Telegram update")
        await self.accept(update, data)
        return web.json_response({})


class WebhookServer:
    """Serves the webhook path on ``host:port`` and registers the URL with Telegram."""

    def __init__(
        self,
        tg: AiogramBot,
        dispatcher: Dispatcher,
        accept: Callable[[Update, dict[str, Any]], Awaitable[None]],
        *,
        url: str,
        secret: str,
        host: str,
        port: int,
    ) -> None:
        self.tg = tg
        self.url = url
        self.secret = secret
        self.host = host
        self.port = port
        self.path = urlsplit(url).path or DEFAULT_PATH
        self.handler = CheckedRequestHandler(dispatcher, tg, secret_token=secret, accept=accept)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen, then point Telegram at :attr:`url` with the secret."""
        app = web.Application()
        app.router.add_post(self.path, self.handler.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        await self.tg.set_webhook(
            self.url,
            secret_token=self.secret,
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )
        log.info(
            "telegram webhook listening on %s:%s%s for %s",
            self.host,
            self.port,
            self.path,
            self.url,
        )

    async def stop(self) -> None:
        """Stop accepting requests; the webhook stays set so Telegram keeps updates meanwhile."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def is_valid_secret(secret: str) -> bool:
    """Telegram's rule for secret tokens: 1-256 of ``A-Z a-z 0-9 _ -``."""
    return 0 < len(secret) <= 256 and all(
        c.isascii() and (c.isalnum() or c in "_-") for c in secret
    )
