"""Text UTF-8 cannot hold (invalid bytes, lone surrogates) becomes U+FFFD at the boundary,
so no single message can fail later turns or summaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from honeychat.core.sanitize import clean_text
from honeychat.core.types import ConversationKey
from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.pytest_plugin import BotFactory, memory_state, send
from honeychat.testing.responders import is_summary_request, keeping_user_lines


def test_clean_text_replaces_only_what_utf8_cannot_hold() -> None:
    assert clean_text("plain, émoji 🌸") == "plain, émoji 🌸"
    assert clean_text("a\ud800b\udfff") == "a\ufffdb\ufffd"
    assert clean_text("\ud83d\ude00") == "\U0001f600"  # a split pair is joined back


async def test_a_lone_surrogate_poisons_nothing(bot_factory: BotFactory) -> None:
    bot_factory.llm.responder = keeping_user_lines("Okay.")
    bot = await bot_factory(summary_window=1)
    await send(bot, "broken \ud800 text from a JSON escape")
    for i in range(4):
        channel = await send(bot, f"later message {i}")
        assert channel.texts[-1] == "Okay."
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(20)
    state = await memory_state(bot)
    assert state["summarized_through"] == 10, "every window was summarized"
    assert "broken \ufffd text" in state["summaries"][0]["text"]
    json.dumps(state, ensure_ascii=False).encode("utf-8")
    assert bot.memory.summarizer.failures == 0
    key = ConversationKey("test", "alice", bot.characters.default.id)
    context = await bot.memory.context(key, "broken", recent=10, k=3)
    assert all("\ud800" not in m.text for m in context.recent)


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM.start_in_thread()
    server.responder = keeping_user_lines("Heard you.")
    yield server
    server.stop()


@pytest.mark.slow
def test_invalid_bytes_through_honeychat_chat(tmp_path: Path, llm: FakeLLM) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "CHROMA_URL", "OPENROUTER_API_KEY", "HONEYCHAT_CONFIG"}
    }
    env.update(
        DATA_DIR=str(tmp_path),
        LLM_BASE_URL=llm.base_url,
        LLM_API_KEY="test",
        SUMMARY_WINDOW="1",
        HF_HUB_OFFLINE="1",
    )
    lines = [b"caf\xe9 and \xff\xfe bytes", b"truncated \xe2\x82", b"fine line"] + [
        f"more talk {i}".encode() for i in range(5)
    ]
    result = subprocess.run(
        [sys.executable, "-m", "honeychat.core.cli", "chat", "--user", "tester"],
        input=b"".join(line + b"\n" for line in lines),
        capture_output=True,
        env=env,
        timeout=240,
        check=False,
    )
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, stderr
    assert result.stdout.decode().count("Heard you.") == len(lines)
    assert "Traceback" not in stderr
    summaries = [r for r in llm.chat_requests if is_summary_request(r.json)]
    assert len(summaries) == len(lines), "one window per turn, all summarized"
    transcript = " ".join(str(r.messages[-1]["content"]) for r in summaries)
    assert "caf\ufffd and \ufffd\ufffd bytes" in transcript
