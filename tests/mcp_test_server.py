"""A tiny MCP server for the tests, written with the SDK's FastMCP; run it as a script (stdio).

Tools: ``lookup`` (a fixed fact per word), ``fail`` (reports an error) and
``crash`` (the process exits mid-call, as a server that dies).
"""

from __future__ import annotations

import os

from mcp.server.fastmcp import FastMCP

server = FastMCP("facts")

FACTS = {"honey": "Honey never spoils: jars from ancient tombs were still edible."}


@server.tool()
def lookup(word: str) -> str:
    """Look up a fact about a word."""
    return FACTS.get(word.lower(), f"No fact about {word}.")


@server.tool()
def fail(reason: str = "because") -> str:
    """Always reports an error."""
    raise ValueError(f"refused {reason}")


@server.tool()
def crash() -> str:
    """Ends the server process mid-call."""
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
