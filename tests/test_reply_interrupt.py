"""Stopping a reply while it streams (the terminal's Ctrl-C, through an InterruptibleChannel):
the turn ends as the LLM cut-off path does, and the next turn is unaffected. The keys on a
real pseudo-terminal are in test_terminal_pty.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from honeychat.core.bot import INTERRUPTED_MARK
from honeychat.core.types import ChannelLimits, Reply, SentMessage
from honeychat.testing.channel import RecordingChannel
from honeychat.testing.pytest_plugin import BotFactory, memory_state, send

STORY = " ".join(f"word{i}" for i in range(300))


@dataclass
class StoppingChannel(RecordingChannel):
    """Streams like a chat app, and its user stops the reply once the first words show."""

    limits: ChannelLimits = field(
        default_factory=lambda: ChannelLimits(edit_interval=0.001, typing_interval=0)
    )
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, reply: Reply) -> SentMessage:
        self.interrupt.set()
        return await super().send(reply)


async def stored(bot: object) -> list[str]:
    state = await memory_state(bot, user="alice", platform="test")  # type: ignore[arg-type]
    return [m["text"] for m in state.get("recent", [])]


async def test_a_stopped_reply_keeps_what_was_said_marked(bot_factory: BotFactory) -> None:
    bot = await bot_factory(llm_max_retries=0)
    bot_factory.llm.script([STORY])
    bot_factory.llm.chunk_delay = 0.01
    channel = StoppingChannel()
    await asyncio.wait_for(send(bot, "tell me a story", channel=channel), 10)
    (text,) = channel.texts
    assert text.startswith("word0") and text.endswith(f" {INTERRUPTED_MARK}")
    assert "word299" not in text, "the reply was stopped, not finished"
    bot_factory.llm.chunk_delay = 0
    assert await stored(bot) == ["tell me a story", text]
    # The next turn streams in full, and sees the stopped reply in its history.
    after = await send(bot, "go on")
    assert after.texts == ["I hear you: go on"]
    assert bot_factory.last_prompt()[-2] == {"role": "assistant", "content": text}


async def test_stopped_before_a_word_sends_and_keeps_no_reply(bot_factory: BotFactory) -> None:
    bot = await bot_factory()
    channel = StoppingChannel()
    channel.interrupt.set()  # Ctrl-C while memory was still being read
    await send(bot, "hello?", channel=channel)
    assert channel.texts == []
    assert await stored(bot) == ["hello?"]


async def test_the_embedding_model_is_ready_at_start_even_with_chroma_down(
    bot_factory: BotFactory,
) -> None:
    # Nothing listens on port 9: the cold store is down, the model is loaded all the same,
    # so the first turn after Chroma comes back does not wait for it.
    llm = bot_factory.llm
    bot = await bot_factory(
        chroma_url="http://127.0.0.1:9",
        chroma_timeout=1.0,
        embedding_backend="openai",
        embedding_base_url=llm.base_url,
        embedding_api_key="test",
    )
    assert [r.json["input"] for r in llm.requests if r.path.endswith("/embeddings")] == [
        ["warm up"]
    ]
    assert bot.memory is not None and bot.memory.cold_health.down
