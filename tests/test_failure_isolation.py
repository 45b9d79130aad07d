"""A layer that cannot be reached costs only that layer: the turn is still answered."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from honeychat.core.types import ConversationKey
from honeychat.testing.pytest_plugin import BotFactory, send
from honeychat.testing.responders import is_summary_request

CONVERSATION = ConversationKey("test", "alice", "luna")


def refused_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_redis_refusing_connections(
    bot_factory: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    bot = await bot_factory(redis_url=f"redis://127.0.0.1:{refused_port()}/0")
    bot_factory.llm.script(["Still here.", "And again."])
    assert (await send(bot, "hello?")).last_text == "Still here."
    assert (await send(bot, "anyone?")).last_text == "And again."
    hot_errors = [r for r in caplog.records if "hot memory layer unavailable" in r.getMessage()]
    assert len(hot_errors) == 1, "the cause is logged once, not on every turn"
    assert "Traceback" not in hot_errors[0].getMessage()
    # The cold layer keeps working while Redis is down.
    assert bot.memory is not None and bot.memory.cold is not None
    assert await bot.memory.cold.all(CONVERSATION.id) == []
    assert not bot.memory.cold_health.down


async def test_chroma_server_unreachable(
    bot_factory: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    bot = await bot_factory(chroma_url=f"http://127.0.0.1:{refused_port()}", summary_window=1)
    for text in ["My bike is blue.", "I live by the sea.", "I like plums."]:
        assert (await send(bot, text)).last_text
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(30)
    # The hot layer still holds everything, and nothing unsummarized was trimmed.
    assert bot.memory.hot is not None
    texts = [m.text for m in await bot.memory.hot.recent(CONVERSATION, 100)]
    assert texts[0::2] == ["My bike is blue.", "I live by the sea.", "I like plums."]
    assert await bot.memory.hot.watermark(CONVERSATION) == 0
    requests = bot_factory.llm.chat_requests
    assert not any(is_summary_request(r.json) for r in requests), (
        "no LLM call is spent on a summary that could not be stored"
    )
    history = [m["content"] for m in requests[-1].messages]
    assert "I live by the sea." in history
    cold_errors = [r for r in caplog.records if "cold memory layer unavailable" in r.getMessage()]
    assert len(cold_errors) == 1


async def test_unwritable_chroma_path(
    bot_factory: BotFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "chroma").write_text("a file where Chroma wants a directory")
    bot = await bot_factory(data_dir=data_dir)
    bot_factory.llm.script(["Hi!"])
    assert (await send(bot, "hello")).last_text == "Hi!"
    messages = [r.getMessage() for r in caplog.records if "cold memory" in r.getMessage()]
    assert messages and "cannot write the embedded Chroma directory" in messages[0]
    assert bot.memory is not None and bot.memory.hot is not None
    assert len(await bot.memory.hot.recent(CONVERSATION, 10)) == 2


async def test_other_conversations_keep_being_served(bot_factory: BotFactory) -> None:
    bot = await bot_factory(llm_max_retries=0)
    llm = bot_factory.llm
    llm.fail_next(500)
    failed = await send(bot, "first", user="carol")
    assert failed.last_text == bot.characters.default.error_message
    ok = await send(bot, "second", user="dave")
    assert ok.last_text.startswith("I hear you")


async def test_forget_with_chroma_down_changes_nothing_and_says_so(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(chroma_url=f"http://127.0.0.1:{refused_port()}")
    await send(bot, "My bike is blue.")
    reply = await send(bot, "/forget confirm")
    assert "nothing was erased" in reply.last_text
    assert bot.memory is not None and bot.memory.hot is not None
    texts = [m.text for m in await bot.memory.hot.recent(CONVERSATION, 100)]
    assert "My bike is blue." in texts, "the hot layer was not cleared behind the user's back"
