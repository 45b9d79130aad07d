"""Built-in plugin ``mcp``: tools from the Model Context Protocol servers in ``MCP_SERVERS``.

At startup every configured server is started at once (each within
``MCP_START_TIMEOUT``) and its tools are added to the bot's tools as
``mcp__SERVER__TOOL``. A server that cannot start is logged once and
skipped; one that dies later is logged once and its tools are removed.
Characters opt in to these tools with their ``tools`` patterns (see
docs/tools.md).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from honeychat import hookimpl
from honeychat.core.mcp_servers import MCPConfigError, MCPServer, parse_servers, secrets_of
from honeychat.core.redact import register_secrets

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

log = logging.getLogger(__name__)


class MCPPlugin:
    """Starts the configured MCP servers and offers their tools."""

    def __init__(self) -> None:
        self.servers: dict[str, MCPServer] = {}

    @hookimpl
    async def honeychat_startup(self, bot: Bot) -> None:
        s = bot.settings
        try:
            configs = parse_servers(s.mcp_servers)
        except MCPConfigError as exc:
            log.error("%s; no MCP server started", exc)
            return
        register_secrets(secrets_of(configs))

        def down(server: MCPServer, reason: str) -> None:
            gone = bot.tools.remove_source(server.source)
            log.error(
                "MCP server %s stopped (%s); its tools are gone: %s",
                server.name,
                reason,
                ", ".join(gone) or "none",
            )

        for name, config in configs.items():
            self.servers[name] = MCPServer(
                name,
                config,
                log_dir=s.data_dir / "mcp",
                default_timeout=s.tool_timeout,
                on_down=down,
            )
        started = await asyncio.gather(
            *(server.start(s.mcp_start_timeout) for server in self.servers.values())
        )
        for server, ok in zip(self.servers.values(), started, strict=True):
            if not ok:
                log.error("MCP server %s skipped: %s", server.name, server.error)
                continue
            added = [t.name for t in server.tools if bot.tools.add(t)]
            log.info("MCP server %s: %d tools (%s)", server.name, len(added), ", ".join(added))

    @hookimpl
    async def honeychat_shutdown(self, bot: Bot) -> None:
        await asyncio.gather(*(server.stop() for server in self.servers.values()))
