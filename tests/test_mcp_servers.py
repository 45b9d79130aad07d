"""MCP_SERVERS parsing, and a streamable-HTTP MCP server (FastMCP, in this process) through the client."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from honeychat.core.mcp_servers import (
    HttpServer,
    MCPConfigError,
    MCPServer,
    MCPToolError,
    StdioServer,
    parse_servers,
    tool_name,
)
from honeychat.testing.tools import tool_context


def test_servers_come_from_json_yaml_a_file_or_a_mapping(tmp_path: Path) -> None:
    yaml_text = "files:\n  command: mcp-files\n  args: [--root, /srv]\nweb:\n  url: http://127.0.0.1:9/mcp\n"
    path = tmp_path / "mcp.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    for value in (
        yaml_text,
        str(path),
        '{"files": {"command": "mcp-files", "args": ["--root", "/srv"]}, '
        '"web": {"url": "http://127.0.0.1:9/mcp"}}',
        {
            "files": {"command": "mcp-files", "args": ["--root", "/srv"]},
            "web": {"url": "http://127.0.0.1:9/mcp"},
        },
    ):
        servers = parse_servers(value)
        assert servers["files"] == StdioServer(command="mcp-files", args=["--root", "/srv"])
        assert isinstance(servers["web"], HttpServer)
    assert parse_servers(None) == {} and parse_servers("  ") == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/no/such/mcp.yaml", "MCP_SERVERS: cannot read /no/such/mcp.yaml"),
        ("[1, 2]", "must map server names"),
        ('{"a b": {"command": "x"}}', "MCP server name 'a b'"),
        ('{"x": {"command": "x", "colour": 1}}', "MCP server x: colour: Extra inputs"),
        ('{"x": {"url": "ftp://host"}}', "MCP server x: url: String should match"),
        ("x: [unclosed", "not valid JSON or YAML"),
    ],
)
def test_a_bad_setting_is_one_clear_line(value: str, message: str) -> None:
    with pytest.raises(MCPConfigError) as caught:
        parse_servers(value)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_tool_names_are_safe_for_every_provider() -> None:
    assert tool_name("docs", "search") == "mcp__docs__search"
    assert tool_name("docs", "read file/v2") == "mcp__docs__read_file_v2"
    assert len(tool_name("docs", "x" * 100)) == 64


@pytest.fixture
async def http_mcp() -> AsyncIterator[str]:
    from mcp.server.fastmcp import FastMCP

    server = FastMCP("notes", host="127.0.0.1")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    def refuse() -> str:
        """Always fails."""
        raise ValueError("not today")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(server.streamable_http_app(), log_level="warning", lifespan="on")
    web = uvicorn.Server(config)
    task = asyncio.create_task(web.serve(sockets=[sock]))
    while not web.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    web.should_exit = True
    await asyncio.wait_for(task, 10)


async def test_a_streamable_http_server_lists_and_runs_its_tools(http_mcp: str) -> None:
    downs: list[str] = []
    config = parse_servers({"notes": {"url": http_mcp, "tools": ["add", "refuse"]}})["notes"]
    server = MCPServer("notes", config, default_timeout=5, on_down=lambda s, r: downs.append(r))
    assert await server.start(10), server.error
    try:
        add, refuse = server.tools
        assert add.name == "mcp__notes__add" and add.source == "mcp:notes"
        assert add.parameters["required"] == ["a", "b"] and not add.default
        assert await add.function(tool_context(), a=2, b=3) == "5"
        with pytest.raises(MCPToolError, match="not today"):
            await refuse.function(tool_context())
    finally:
        await server.stop()
    assert server.state == "stopped" and downs == []


async def test_a_server_that_does_not_answer_is_skipped_in_time() -> None:
    quiet = socket.socket()
    quiet.bind(("127.0.0.1", 0))
    quiet.listen()  # accepts connections, never answers
    url = f"http://127.0.0.1:{quiet.getsockname()[1]}/mcp"
    server = MCPServer("quiet", HttpServer(url=url))
    try:
        assert not await server.start(0.3)
        assert server.error == "did not start within 0.3s" and server.tools == []
    finally:
        quiet.close()


async def test_doctor_reports_each_server_in_one_line(http_mcp: str, tmp_path: Path) -> None:
    from honeychat.core.doctor import check_mcp
    from honeychat.core.settings import Settings

    servers = {"notes": {"url": http_mcp}, "ghost": {"command": str(tmp_path / "missing")}}
    settings = Settings(data_dir=tmp_path, mcp_servers=servers, mcp_start_timeout=10)
    notes, ghost = await check_mcp(settings)
    assert notes.ok and str(notes) == "✓ mcp notes: 2 tools: mcp__notes__add, mcp__notes__refuse"
    assert not ghost.ok and "skipped: FileNotFoundError" in str(ghost)
    assert await check_mcp(Settings(data_dir=tmp_path, mcp_servers=None)) == []
