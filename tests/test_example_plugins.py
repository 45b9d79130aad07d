"""The example plugins of docs/examples, loaded from a PLUGINS_DIR as a user would load them.

Each runs through the real pipeline: embedded Redis and Chroma, the fake LLM
on loopback, and (for the adapter) a real WebSocket client.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp

from honeychat.core.bot import Bot
from honeychat.core.runner import collect_adapters
from honeychat.testing import BotFactory, memory_state, send
from honeychat.testing.channel import RecordingChannel
from honeychat.testing.responders import keeping_user_lines

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def plugins_dir(tmp_path: Path, *names: str) -> Path:
    """A PLUGINS_DIR holding copies of the named example files."""
    directory = tmp_path / "plugins"
    directory.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(EXAMPLES / f"{name}.py", directory / f"{name}.py")
    return directory


def stored(state: dict[str, Any]) -> list[str]:
    return [m["text"] for m in state.get("recent", [])]


# Moderation: refuses in character and records nothing.


async def moderated_bot(bot_factory: BotFactory, tmp_path: Path) -> Bot:
    bot = await bot_factory(
        plugins_dir=plugins_dir(tmp_path, "moderation"),
        plugin_config={"moderation": {"blocklist": ["secret code", "password"]}},
    )
    assert bot.plugins.info["moderation"].source == "file"
    return bot


async def test_blocked_input_is_refused_and_not_stored(
    bot_factory: BotFactory, tmp_path: Path
) -> None:
    bot = await moderated_bot(bot_factory, tmp_path)
    channel = await send(bot, "My PASSWORD is hunter2")
    assert channel.texts == ["I'd rather not talk about that. Could we talk about something else?"]
    assert bot_factory.llm.chat_requests == [], "the LLM never saw it"
    assert (await memory_state(bot)).get("last_seq") == 0, "nothing was stored"
    assert (await send(bot, "passwords are hard")).last_text == "I hear you: passwords are hard"


async def test_blocked_output_is_never_shown_or_stored(
    bot_factory: BotFactory, tmp_path: Path
) -> None:
    bot = await moderated_bot(bot_factory, tmp_path)
    bot_factory.llm.chunk_delay = 0.01
    bot_factory.llm.script(["Sure, the secret code is 1234, and here is a lot more text."])
    channel = RecordingChannel()
    channel.limits = channel.limits.__class__(edit_interval=0.001, typing_interval=0)
    await send(bot, "tell me something", channel=channel)
    shown = [event[2] for event in channel.events if event[0] in ("send", "edit")]
    assert shown == ["I'd rather not talk about that. Could we talk about something else?"]
    texts = stored(await memory_state(bot))
    assert texts == ["tell me something", shown[0]]


# Replacing long-term memory: summaries go to SQLite, and turns read them back.


async def test_sqlite_cold_store_replaces_chroma(bot_factory: BotFactory, tmp_path: Path) -> None:
    bot = await bot_factory(
        plugins_dir=plugins_dir(tmp_path, "sqlite_memory"), summary_window=2, hot_buffer_size=4
    )
    llm = bot_factory.llm

    llm.responder = keeping_user_lines("Okay.")
    await send(bot, "My sister Priya lives in Lisbon and teaches violin.")
    for i in range(8):
        await send(bot, f"Today I cooked recipe number {i}.")
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(30)
    assert type(bot.memory.cold).__name__ == "SQLiteColdStore"
    database = bot.settings.data_dir / "summaries.sqlite3"
    with sqlite3.connect(database) as db:
        texts = [row[0] for row in db.execute("SELECT text FROM summaries ORDER BY first_seq")]
    assert texts and "Priya lives in Lisbon" in texts[0]
    assert not (bot.settings.data_dir / "chroma").exists(), "Chroma was never opened"
    await send(bot, "Where does my sister Priya live?")
    assert "Priya lives in Lisbon" in bot_factory.last_system_prompt()
    history = [m["content"] for m in bot_factory.last_prompt()[1:]]
    assert not any("Lisbon" in text for text in history), "it came from SQLite, not the buffer"
    forget = await send(bot, "/forget confirm")
    assert "forgotten" in forget.last_text
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM summaries").fetchone() == (0,)


# An adapter: the WebSocket echo example, driven by a real WebSocket client.


async def receive_turn(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = await asyncio.wait_for(ws.receive_json(), timeout=10)
        frames.append(frame)
        if frame["type"] in ("done", "error"):
            return frames


async def test_websocket_adapter_serves_a_chat(bot_factory: BotFactory, tmp_path: Path) -> None:
    bot = await bot_factory(
        plugins_dir=plugins_dir(tmp_path, "websocket_echo"),
        plugin_config={"websocket_echo": {"port": 0}},
    )
    [adapter] = await collect_adapters(bot)
    assert adapter.name == "websocket"
    await adapter.start()
    try:
        port = adapter.port
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.send_json({"user": "alice", "text": "hello over the wire"})
                frames = await receive_turn(ws)
                messages = [f for f in frames if f["type"] in ("message", "edit")]
                assert messages[-1]["text"] == "I hear you: hello over the wire"
                await ws.send_str("not json")
                assert (await receive_turn(ws))[-1]["type"] == "error"
                await ws.send_json({"user": "alice", "text": "/help"})
                help_frames = await receive_turn(ws)
                assert "/forget" in help_frames[0]["text"]
    finally:
        await adapter.stop()
    state = await memory_state(bot, platform="websocket")
    assert stored(state) == ["hello over the wire", "I hear you: hello over the wire"]


async def test_websocket_adapter_needs_a_port(bot_factory: BotFactory, tmp_path: Path) -> None:
    bot = await bot_factory(plugins_dir=plugins_dir(tmp_path, "websocket_echo"))
    assert await collect_adapters(bot) == []
