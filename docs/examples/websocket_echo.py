"""Example adapter plugin ``websocket_echo``: talk to the bot over a WebSocket.

The smallest complete adapter, to show the ``honeychat_register_adapters``
contract (:class:`honeychat.core.adapter.Adapter`): the plugin returns an
object with a ``name`` and ``async start()`` / ``async stop()``; for every
incoming message the adapter builds an
:class:`~honeychat.core.types.IncomingMessage` and a
:class:`~honeychat.core.types.Channel`, and calls ``bot.handle_message``.
The core does the rest (commands, memory, the LLM, streaming).

Wire protocol, JSON text frames on ``ws://HOST:PORT/ws``:

- client to server: ``{"user": "alice", "text": "hello"}``
- server to client: ``{"type": "typing"}``, ``{"type": "message", "id": "1", "text": ...}``,
  ``{"type": "edit", "id": "1", "text": ...}`` while a reply streams, then
  ``{"type": "done"}`` when the turn is over, or ``{"type": "error", "text": ...}``
  for a frame it cannot read.

Copy this file into your ``PLUGINS_DIR`` and set
``PLUGIN_CONFIG='{"websocket_echo": {"port": 8765}}'``; ``honeychat run``
starts it. Without a port the plugin offers no adapter.
"""

from __future__ import annotations

import itertools
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel, Field

from honeychat import IncomingMessage, Reply, hookimpl
from honeychat.core.types import ChannelLimits, SentMessage

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

NAME = "websocket_echo"
log = logging.getLogger(__name__)


class Config(BaseModel):
    """Where the WebSocket server listens. No port: no adapter."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=0, le=65535)
    """0 picks a free port (see :attr:`WebSocketAdapter.port` once started)."""


config_model = Config


class WebSocketChannel:
    """Delivers one turn's reply as JSON frames on the client's socket."""

    limits = ChannelLimits(max_text_length=4000, edit_interval=0.2, typing_interval=0)

    def __init__(self, ws: web.WebSocketResponse, chat_id: str) -> None:
        self.ws = ws
        self.chat_id = chat_id
        self._ids = itertools.count(1)

    async def typing(self) -> None:
        await self.ws.send_json({"type": "typing"})

    async def send(self, reply: Reply) -> SentMessage:
        message_id = str(next(self._ids))
        await self.ws.send_json({"type": "message", "id": message_id, "text": reply.text})
        return SentMessage(message_id, self.chat_id)

    async def edit(self, message: SentMessage, text: str) -> None:
        await self.ws.send_json({"type": "edit", "id": message.message_id, "text": text})


class WebSocketAdapter:
    """Serves ``/ws`` with aiohttp; every text frame is one user message."""

    name = "websocket"

    def __init__(self, bot: Bot, host: str, port: int) -> None:
        self.bot = bot
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the real port when 0 was asked for
        log.info("websocket adapter listening on ws://%s:%s/ws", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # closes sockets after in-flight handlers end
            self._runner = None

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            message = self._parse(frame.data)
            if message is None:
                await ws.send_json(
                    {"type": "error", "text": 'send {"user": "...", "text": "..."} as JSON'}
                )
                continue
            await self.bot.handle_message(message, WebSocketChannel(ws, message.chat_id))
            await ws.send_json({"type": "done"})
        return ws

    @staticmethod
    def _parse(data: str) -> IncomingMessage | None:
        try:
            body: Any = json.loads(data)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        user, text = body.get("user"), body.get("text")
        if not isinstance(user, str) or not user or not isinstance(text, str):
            return None
        return IncomingMessage(
            platform="websocket", user_id=user, chat_id=user, text=text, is_direct=True
        )


@hookimpl
def honeychat_register_adapters(bot: Bot) -> list[WebSocketAdapter]:
    """Offer the adapter only when a port is configured."""
    config: Config = bot.plugins.config(NAME)
    if config.port is None:
        return []
    return [WebSocketAdapter(bot, config.host, config.port)]
