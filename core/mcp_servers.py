"""Model Context Protocol servers as tool sources, through the official ``mcp`` SDK.

``MCP_SERVERS`` lists the servers, by name, as JSON or YAML text or the path
of such a file::

    weather:                       # stdio: honeychat starts the process
      command: python
      args: [-m, weather_server]
      env: {WEATHER_KEY: "..."}
    docs:                          # streamable HTTP
      url: https://mcp.example.com/mcp
      headers: {Authorization: "Bearer ..."}
      tools: [search]              # optional: only these of its tools
      timeout: 20                  # optional: per-call deadline (default TOOL_TIMEOUT)

Each server's tools are offered as ``mcp__SERVER__TOOL`` to characters whose
``tools`` patterns name them. A server runs in its own task holding its
``ClientSession``; one that fails to start within ``MCP_START_TIMEOUT``, or
dies later (a call finds the connection closed, or a ping goes unanswered),
is reported once in the log and its tools disappear. Every call has a
deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from honeychat.core.tools import Tool, ToolContext

log = logging.getLogger(__name__)

PING_SECONDS = 30.0
"""How often a running server is pinged to notice that it died between calls."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class StdioServer(BaseModel):
    """A server honeychat starts as a process and talks to over stdin/stdout.

    The process gets a minimal environment (``PATH``, ``HOME``...) plus
    ``env``: none of honeychat's own keys.
    """

    model_config = ConfigDict(extra="forbid")

    transport: Literal["stdio"] = "stdio"
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    tools: list[str] | None = None
    """Only these of the server's tools (default: all)."""
    timeout: float | None = Field(default=None, gt=0)
    """Per-call deadline in seconds (default ``TOOL_TIMEOUT``)."""


class HttpServer(BaseModel):
    """A server reached over streamable HTTP."""

    model_config = ConfigDict(extra="forbid")

    transport: Literal["http"] = "http"
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    tools: list[str] | None = None
    timeout: float | None = Field(default=None, gt=0)


ServerConfig = StdioServer | HttpServer


class MCPConfigError(ValueError):
    """``MCP_SERVERS`` cannot be read; the message is one line naming what is wrong."""


def parse_servers(value: str | dict[str, Any] | None) -> dict[str, ServerConfig]:
    """The servers of ``MCP_SERVERS``: a mapping, JSON/YAML text, or a file path."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    data: Any = value
    if isinstance(value, str):
        text = value
        one_line = "\n" not in value and not value.lstrip().startswith(("{", "["))
        if one_line and (": " not in value or Path(value.strip()).expanduser().exists()):
            path = Path(value.strip()).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise MCPConfigError(f"MCP_SERVERS: cannot read {path}: {exc.strerror}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MCPConfigError(f"MCP_SERVERS is not valid JSON or YAML: {_where(exc)}") from None
    if not isinstance(data, dict):
        raise MCPConfigError("MCP_SERVERS must map server names to their settings")
    servers: dict[str, ServerConfig] = {}
    for name, raw in data.items():
        name = str(name)
        if not _UNSAFE.sub("", name) == name or not name:
            raise MCPConfigError(f"MCP server name {name!r}: use A-Z, a-z, 0-9, '_' or '-'")
        if not isinstance(raw, dict):
            raise MCPConfigError(f"MCP server {name}: expected a mapping with command or url")
        model: type[StdioServer] | type[HttpServer] = HttpServer if "url" in raw else StdioServer
        try:
            servers[name] = model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise MCPConfigError(f"MCP server {name}: {where}: {first['msg']}") from None
    return servers


def _where(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def secrets_of(servers: dict[str, ServerConfig]) -> list[str]:
    """Values to mask in logs: environment values and headers of every server."""
    found: list[str] = []
    for config in servers.values():
        if isinstance(config, StdioServer):
            found += list((config.env or {}).values())
        else:
            found += list(config.headers.values())
    return found


def tool_name(server: str, tool: str) -> str:
    """The name a server's tool is offered under: ``mcp__SERVER__TOOL`` (64 characters at most)."""
    return f"mcp__{server}__{_UNSAFE.sub('_', tool)}"[:64]


def result_text(result: Any) -> str:
    """The text of a ``CallToolResult``: its text parts, else its structured content."""
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            resource = block.resource
            parts.append(getattr(resource, "text", None) or f"[resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[link {block.uri}]")
        else:
            parts.append(f"[{kind} content {getattr(block, 'mimeType', '')}]".replace(" ]", "]"))
    if not parts and result.structuredContent is not None:
        parts.append(json.dumps(result.structuredContent, ensure_ascii=False))
    return "\n".join(parts)


class MCPToolError(RuntimeError):
    """The server answered the call with ``isError``: the message is its text."""


class ServerGone(RuntimeError):
    """The server is not running (it failed to start or died)."""


class MCPServer:
    """One configured server: started in its own task, its tools, its calls.

    ``on_down`` is called once, with the server and the reason, when a
    running server is found dead (not when it is stopped).
    """

    def __init__(
        self,
        name: str,
        config: ServerConfig,
        *,
        log_dir: Path | None = None,
        default_timeout: float = 10.0,
        on_down: Callable[[MCPServer, str], None] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.log_dir = log_dir
        self.default_timeout = default_timeout
        self.on_down = on_down
        self.state: Literal["new", "starting", "up", "down", "stopped"] = "new"
        self.error: str | None = None
        self.tools: list[Tool] = []
        self._session: Any = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def source(self) -> str:
        """The ``source`` of this server's tools in the registry."""
        return f"mcp:{self.name}"

    async def start(self, timeout: float) -> bool:
        """Start the server and list its tools within ``timeout``; False (and ``error``) if not."""
        self.state = "starting"
        self._task = asyncio.create_task(self._run(), name=f"mcp-{self.name}")
        ready = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait(
            {ready, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        ready.cancel()
        if self.state == "up":
            return True
        if not done:
            self.error = f"did not start within {timeout:g}s"
            await self.stop()
        self.state = "down"
        return False

    async def stop(self) -> None:
        """Close the session and end the process (idempotent)."""
        starting = self.state in ("new", "starting")
        if self.state != "down":
            self.state = "stopped"
        self._stop.set()
        task, self._task = self._task, None
        if task is None:
            return
        if starting:
            task.cancel()  # still connecting: nothing to close politely
        try:
            await asyncio.wait_for(task, 5)
        except (TimeoutError, asyncio.CancelledError):
            pass
        except Exception as exc:  # already reported by _run
            log.debug("MCP server %s stopped with %s", self.name, exc)

    async def _run(self) -> None:
        from mcp import ClientSession

        try:
            async with contextlib.AsyncExitStack() as stack:
                # stdio yields (read, write); streamable HTTP adds a session-id getter.
                read, write, *_ = await stack.enter_async_context(self._transport(stack))
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                self.tools = await self._list_tools(session)
                self._session = session
                self.state = "up"
                self._ready.set()
                await self._watch(session)
        except Exception as exc:
            self._down(_describe(exc))
        finally:
            self._session = None

    def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        config = self.config
        if isinstance(config, HttpServer):
            import httpx
            from mcp.client.streamable_http import streamable_http_client

            client = httpx.AsyncClient(headers=config.headers, timeout=httpx.Timeout(30, read=300))
            stack.push_async_callback(client.aclose)
            return streamable_http_client(config.url, http_client=client)
        from mcp import StdioServerParameters, stdio_client

        params = StdioServerParameters(
            command=config.command, args=config.args, env=config.env, cwd=config.cwd
        )
        errlog = self._errlog(stack)
        return stdio_client(params, errlog=errlog) if errlog is not None else stdio_client(params)

    def _errlog(self, stack: contextlib.AsyncExitStack) -> Any:
        """The server's stderr goes to ``LOG_DIR/NAME.log`` (appended)."""
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return stack.enter_context((self.log_dir / f"{self.name}.log").open("a", encoding="utf-8"))

    async def _list_tools(self, session: Any) -> list[Tool]:
        listed = []
        cursor = None
        while True:
            page = await session.list_tools(cursor=cursor) if cursor else await session.list_tools()
            listed += page.tools
            cursor = page.nextCursor
            if not cursor:
                break
        wanted = self.config.tools
        return [self._tool(t) for t in listed if wanted is None or t.name in wanted]

    def _tool(self, spec: Any) -> Tool:
        remote = spec.name

        async def call(ctx: ToolContext, **arguments: Any) -> str:
            return await self.call(remote, arguments)

        schema = dict(spec.inputSchema or {})
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        return Tool(
            tool_name(self.name, remote),
            (spec.description or spec.title or remote).strip(),
            schema,
            call,
            default=False,
            timeout=self.config.timeout or self.default_timeout,
            source=self.source,
        )

    async def _watch(self, session: Any) -> None:
        """Wait for :meth:`stop`, pinging the server now and then to notice if it died."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), PING_SECONDS)
                return
            async with asyncio.timeout(self.default_timeout):
                await session.send_ping()

    async def call(self, remote: str, arguments: dict[str, Any]) -> str:
        """Call one of the server's tools; its text, or :class:`MCPToolError`."""
        session = self._session
        if session is None or self.state != "up":
            raise ServerGone(f"the MCP server {self.name} is not running")
        timeout = self.config.timeout or self.default_timeout
        try:
            result = await session.call_tool(
                remote, arguments, read_timeout_seconds=timedelta(seconds=timeout)
            )
        except Exception as exc:
            if _connection_lost(exc):
                self._down(_describe(exc))
                raise ServerGone(f"the MCP server {self.name} stopped") from None
            raise
        text = result_text(result)
        if result.isError:
            raise MCPToolError(text or "the tool reported an error")
        return text

    def _down(self, reason: str) -> None:
        """Report a server that failed or died, once, and stop offering its tools."""
        if self.state in ("down", "stopped"):
            return
        was_up = self.state == "up"
        self.state = "down"
        self.error = reason
        self._stop.set()
        if was_up and self.on_down is not None:
            self.on_down(self, reason)


def _connection_lost(exc: BaseException) -> bool:
    import anyio
    from mcp.shared.exceptions import McpError
    from mcp.types import CONNECTION_CLOSED

    if isinstance(exc, McpError):
        return exc.error.code == CONNECTION_CLOSED
    return isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError | EOFError)


def _describe(exc: BaseException) -> str:
    """One line about why a server failed (the first real error of an exception group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
