"""Tools in whole turns: real stores, the fake LLM over HTTP, an MCP server over stdio."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from honeychat import hookimpl
from honeychat.core.bot import CUT_OFF_MARK
from honeychat.core.tools import UNTRUSTED_NOTE, Tool, ToolContext, tool
from honeychat.core.types import ConversationKey
from honeychat.testing.fake_llm import FakeLLM, ToolCalls
from honeychat.testing.pytest_plugin import BotFactory, send
from honeychat.testing.responders import is_summary_request, keeping_user_lines

MCP_SERVER = Path(__file__).with_name("mcp_test_server.py")


def character(directory: Path, cid: str, tools: list[str] | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f"id: {cid}",
        f"name: {cid.title()}",
        "persona: A calm librarian who answers in one sentence.",
        "greeting: Hello.",
    ]
    if tools is not None:
        lines.append(f"tools: {json.dumps(tools)}")
    (directory / f"{cid}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def chats(llm: FakeLLM) -> list[dict[str, Any]]:
    return [r.json for r in llm.chat_requests if not is_summary_request(r.json)]


def offered(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools") or []]


async def test_a_tool_call_is_stored_with_the_reply_replayed_traced_and_counted(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(plugin_config={"clock": {"default_timezone": "Asia/Tokyo"}})
    llm = bot_factory.llm
    llm.script([ToolCalls((("current_time", {}),)), "It is morning in Tokyo."])
    channel = await send(bot, "what time is it?")
    assert channel.last_text == "It is morning in Tokyo."
    first, second = chats(llm)
    assert offered(first) == ["current_time", "search_memory"]
    assert UNTRUSTED_NOTE in first["messages"][0]["content"]
    result = second["messages"][-1]
    assert result["role"] == "tool" and "(Asia/Tokyo, UTC+0900)" in result["content"]

    conversation = ConversationKey("test", "alice", "luna")
    assert bot.memory is not None and bot.memory.hot is not None
    reply = (await bot.memory.hot.recent(conversation, 1))[0]
    assert [r["name"] for r in reply.tools] == ["current_time"]
    assert "Asia/Tokyo" in reply.tools[0]["result"]

    llm.script(["You're welcome."])
    await send(bot, "thanks")
    replayed = [m for m in chats(llm)[-1]["messages"] if m["role"] in ("assistant", "tool")]
    assert replayed[0]["tool_calls"][0]["function"]["name"] == "current_time"
    assert replayed[1]["role"] == "tool" and "Asia/Tokyo" in replayed[1]["content"]
    assert replayed[2] == {"role": "assistant", "content": "It is morning in Tokyo."}

    assert bot.trails is not None
    trail = (await bot.trails.list(conversation, [reply.seq]))[0]
    assert [(t["name"], t["step"], t["error"]) for t in trail["tools"]] == [
        ("current_time", 1, False)
    ]
    assert trail["tokens"]["tools"] > 0

    quota = bot.plugins.pm.get_plugin("quota")
    day, _ = quota.local_day("test", "alice")
    assert bot.redis is not None
    spent = float(await bot.redis.get(quota.key(bot, "test", "alice", day) + ":tools"))
    assert 0.5 <= spent < 1.0  # one round of calls, and a little tool time


async def test_characters_and_tiers_choose_the_tools_offered(
    bot_factory: BotFactory, tmp_path: Path
) -> None:
    chars = tmp_path / "chars"
    character(chars, "plain")
    character(chars, "mute", [])
    character(chars, "clocky", ["current_*"])
    bot = await bot_factory(
        characters_dir=chars,
        default_character="plain",
        tiers={"free": {"tools": ["*"]}, "locked": {"tools": []}},
        user_tiers={"test:bob": "locked"},
    )
    llm = bot_factory.llm
    for cid in ("plain", "mute", "clocky"):
        await bot.set_character("test", "alice", cid)
        await send(bot, f"hello {cid}")
    await send(bot, "hello from a locked tier", user="bob")
    bodies = chats(llm)
    assert [offered(b) for b in bodies] == [
        ["current_time", "search_memory"],
        [],
        ["current_time"],
        [],
    ]
    assert "tools" not in bodies[1] and "tools" not in bodies[3]
    assert UNTRUSTED_NOTE not in bodies[1]["messages"][0]["content"]


async def test_the_total_deadline_covers_tool_time(bot_factory: BotFactory) -> None:
    @tool
    async def stall(ctx: ToolContext) -> str:
        """Takes its time."""
        await asyncio.sleep(30)
        return "late"

    class Stalling:
        @hookimpl
        def honeychat_register_tools(self, bot: Any) -> list[Tool]:
            return [stall]

    bot = await bot_factory(plugins=[("stalling", Stalling())], llm_total_timeout=0.5)
    bot_factory.llm.script([ToolCalls((("stall", {}),), text="One moment."), "never sent"])
    started = time.monotonic()
    channel = await send(bot, "go")
    assert time.monotonic() - started < 5
    assert channel.last_text == f"One moment. {CUT_OFF_MARK}"


async def test_memory_search_sees_only_the_callers_conversation(bot_factory: BotFactory) -> None:
    bot = await bot_factory(summary_window=1, hot_buffer_size=2)
    llm = bot_factory.llm
    llm.responder = keeping_user_lines("Noted.")
    await send(bot, "My locker code is 4711.", user="bob")
    await send(bot, "I like tea.", user="alice")
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(30)

    search = ToolCalls((("search_memory", {"query": "locker code", "k": 20}),))
    summarize = keeping_user_lines("Done.")

    def respond(body: dict[str, Any]) -> str | ToolCalls:
        # A responder, not a script: summaries of these turns run in the background meanwhile.
        asked = body["messages"][-1]
        if (
            not is_summary_request(body)
            and asked["role"] == "user"
            and "locker" in asked["content"]
        ):
            return search
        return summarize(body)

    llm.responder = respond
    results = {}
    for user in ("alice", "bob"):
        await send(bot, "what is my locker code?", user=user)
        results[user] = chats(llm)[-1]["messages"][-1]["content"]
    assert "4711" in results["bob"]
    assert "4711" not in results["alice"] and "tea" in results["alice"]


@pytest.mark.slow
async def test_an_mcp_server_tools_are_called_and_vanish_when_it_dies(
    bot_factory: BotFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="honeychat")
    chars = tmp_path / "chars"
    character(chars, "scholar", ["mcp__facts__*", "current_time"])
    servers = {
        "facts": {"command": sys.executable, "args": [str(MCP_SERVER)]},
        "ghost": {"command": str(tmp_path / "no-such-server")},
    }
    bot = await bot_factory(
        characters_dir=chars, default_character="scholar", mcp_servers=json.dumps(servers)
    )
    llm = bot_factory.llm
    skipped = [
        r.getMessage() for r in caplog.records if "MCP server ghost skipped" in r.getMessage()
    ]
    assert len(skipped) == 1 and "FileNotFoundError" in skipped[0]

    llm.script(
        [
            ToolCalls((("mcp__facts__lookup", {"word": "honey"}), ("mcp__facts__fail", {}))),
            "Honey keeps forever.",
        ]
    )
    assert (await send(bot, "tell me about honey")).last_text == "Honey keeps forever."
    first, second = chats(llm)
    assert offered(first) == [
        "current_time",
        "mcp__facts__lookup",
        "mcp__facts__fail",
        "mcp__facts__crash",
    ]
    lookup, fail = (m["content"] for m in second["messages"] if m["role"] == "tool")
    assert "Honey never spoils" in lookup
    assert "refused because" in fail and fail.count("Error") >= 1

    llm.script([ToolCalls((("mcp__facts__crash", {}),)), "Something broke."])
    await send(bot, "crash it")
    died = [
        r.getMessage()
        for r in caplog.records
        if r.name == "honeychat.plugins.mcp" and "MCP server facts stopped" in r.getMessage()
    ]
    assert len(died) == 1
    assert "stopped" in chats(llm)[-1]["messages"][-1]["content"]
    await send(bot, "still there?")
    assert offered(chats(llm)[-1]) == ["current_time"]
    assert [t.name for t in bot.tools.all() if t.source.startswith("mcp:")] == []
