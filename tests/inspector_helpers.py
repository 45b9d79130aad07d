"""Run the inspector app on a real loopback port inside the test's event loop, and seed memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from honeychat.core.bot import Bot
from honeychat.core.inspector import create_app
from honeychat.core.inspector.server import make_server
from honeychat.core.types import ConversationKey, Role
from honeychat.testing.pytest_plugin import send
from honeychat.testing.responders import keeping_user_lines

TOKEN = "test-token-0123456789abcdef"
summarizing_responder = keeping_user_lines(lambda r: f"Noted: {r['messages'][-1]['content'][:40]}")


@asynccontextmanager
async def running_inspector(bot: Bot, *, token: str | None = TOKEN) -> AsyncIterator[str]:
    """Serve ``create_app(bot)`` with uvicorn on 127.0.0.1 and a free port; yields the base URL."""
    server = make_server(create_app(bot), "127.0.0.1", 0, own_signals=False)
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # at most ~5 s to start
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        task.cancel()
        raise RuntimeError("the inspector did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def client(base_url: str, token: str | None = TOKEN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)


async def seed(bot: Bot, user: str = "alice", turns: int = 5) -> ConversationKey:
    """``turns`` chat turns through the real pipeline, summaries written (window of 2 turns)."""
    facts = [
        "My sister Priya lives in Lisbon and teaches violin.",
        "I adopted a grey cat called Miso last spring.",
        "I work night shifts as a nurse at the city hospital.",
        "My favourite food is mushroom risotto.",
        "Next month I am flying to Tokyo for a conference.",
        "I am learning to play the cello on weekends.",
    ]
    for i in range(turns):
        await send(bot, facts[i % len(facts)], user=user)
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(60)
    return ConversationKey("test", user, bot.characters.default.id)


def path(key: ConversationKey) -> str:
    from urllib.parse import quote

    return "/api/conversations/" + "/".join(
        quote(part, safe="") for part in (key.platform, key.user_id, key.character_id)
    )


__all__ = ["TOKEN", "Role", "client", "path", "running_inspector", "seed", "summarizing_responder"]
