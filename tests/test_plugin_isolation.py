"""A plugin that raises inside a hook is isolated: logged with its name, the others still run.

Every hook goes on without the failing implementation, except those whose
documented contract is to stop (clearing memory: the user must learn that
nothing was erased).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from honeychat.testing import BotFactory, memory_state, send

SECTIONS = """
@hookimpl
def honeychat_prompt_sections(turn):
    return "The user's favourite colour is teal."
"""

FAILING = """
@hookimpl
def honeychat_startup(bot):
    raise RuntimeError("startup exploded")

@hookimpl
async def honeychat_ingest(turn):
    turn.text = "half-rewritten question"
    raise RuntimeError("ingest exploded")

@hookimpl
def honeychat_prompt_sections(turn):
    raise RuntimeError("sections exploded")

@hookimpl
def honeychat_transform_reply(turn):
    turn.reply_text = "half-rewritten"
    raise RuntimeError("transform exploded")

@hookimpl
def honeychat_clear_memory(conversation, bot):
    raise RuntimeError("clear exploded")
"""


def write_plugins(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir()
    for name, body in {"a_failing": FAILING, "b_sections": SECTIONS}.items():
        (directory / f"{name}.py").write_text("from honeychat import hookimpl\n" + body)
    return directory


async def test_a_raising_plugin_is_isolated_and_named(
    bot_factory: BotFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="honeychat.core.plugins")
    bot = await bot_factory(plugins_dir=write_plugins(tmp_path))
    assert bot.plugins.problems == []
    assert bot.memory is not None and bot.memory.hot is not None, "other startup hooks ran"
    bot_factory.llm.script(["Teal is lovely."])
    channel = await send(bot, "what's my favourite colour?")
    assert channel.last_text == "Teal is lovely."
    assert "favourite colour is teal" in bot_factory.last_system_prompt()
    assert bot_factory.last_prompt()[-1]["content"] == "what's my favourite colour?"
    failures = {r.getMessage() for r in caplog.records if "continuing without it" in r.getMessage()}
    assert failures == {
        f"plugin 'a_failing' failed in honeychat_{hook}; continuing without it"
        for hook in ("startup", "ingest", "prompt_sections", "transform_reply")
    }
    assert all(r.exc_info for r in caplog.records), "the traceback goes to the log"
    texts = [m["text"] for m in (await memory_state(bot))["recent"]]
    assert texts[-1] == "Teal is lovely.", "a failed plugin's half-done rewrite is undone"


async def test_clearing_memory_stops_and_says_so_when_a_plugin_fails(
    bot_factory: BotFactory, tmp_path: Path
) -> None:
    bot = await bot_factory(plugins_dir=write_plugins(tmp_path))
    await send(bot, "remember this")
    reply = await send(bot, "/forget confirm")
    assert "Something went wrong" in reply.last_text
    assert "Done" not in reply.last_text
    assert "Traceback" not in reply.last_text and "exploded" not in reply.last_text
