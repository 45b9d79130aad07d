"""A turn through the whole pipeline: real embedded stores, the fake LLM over loopback."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from honeychat.core.memory.retrieval import RetrievalOptions
from honeychat.core.memory.service import MemoryService
from honeychat.core.types import ChannelLimits, ConversationKey, IncomingMessage
from honeychat.testing.channel import RecordingChannel
from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.pytest_plugin import BotFactory, send
from honeychat.testing.responders import is_summary_request, keeping_user_lines

summarizing_responder = keeping_user_lines(lambda r: f"Noted: {r['messages'][-1]['content'][:40]}")


def chat_requests(llm: FakeLLM) -> list[Any]:
    return [r for r in llm.chat_requests if not is_summary_request(r.json)]


async def test_a_turn_streams_the_reply_and_sends_the_persona(bot_factory: BotFactory) -> None:
    bot = await bot_factory()
    bot_factory.llm.script(["Hello **there**, nice to meet you."])
    channel = await send(bot, "hi Luna")
    assert channel.last_text == "Hello **there**, nice to meet you."
    request = bot_factory.llm.chat_requests[-1]
    assert request.json["stream"] is True
    assert request.messages[0]["role"] == "system"
    assert "You are Luna" in request.messages[0]["content"]
    assert request.messages[-1] == {"role": "user", "content": "hi Luna"}


async def test_streaming_edits_one_message_and_ends_exact(bot_factory: BotFactory) -> None:
    bot = await bot_factory()
    llm = bot_factory.llm
    llm.chunk_delay = 0.02
    reply = " ".join(f"word{i}" for i in range(40))
    llm.script([reply])
    channel = RecordingChannel(limits=ChannelLimits(edit_interval=0.05, typing_interval=0.01))
    await send(bot, "tell me a story", channel=channel)
    sends = [e for e in channel.events if e[0] == "send"]
    edits = [e for e in channel.events if e[0] == "edit"]
    assert len(sends) == 1, "streaming must edit one message, not send many"
    assert edits, "a slow stream is shown progressively"
    assert channel.last_text == reply
    texts = [e[2] for e in edits]
    assert all(a != b for a, b in itertools.pairwise(texts)), "no edit repeats the text"
    assert ("typing",) in channel.events


async def test_history_and_user_message_survive_an_llm_failure(bot_factory: BotFactory) -> None:
    bot = await bot_factory(llm_max_retries=0)
    llm = bot_factory.llm
    llm.fail_next(500, times=5)
    channel = await send(bot, "My cat is called Miso")
    assert channel.last_text == bot.characters.get("luna").error_message  # type: ignore[union-attr]
    llm.clear_faults()
    llm.script(["Miso is a lovely name."])
    await send(bot, "what did I just say?")
    contents = [m["content"] for m in llm.chat_requests[-1].messages]
    assert "My cat is called Miso" in contents


async def test_messages_of_one_conversation_are_handled_in_order(bot_factory: BotFactory) -> None:
    bot = await bot_factory()
    llm = bot_factory.llm
    llm.chunk_delay = 0.01
    await asyncio.gather(*(send(bot, f"message {i}") for i in range(6)))
    seen = [r.messages[-1]["content"] for r in chat_requests(llm)]
    assert seen == [f"message {i}" for i in range(6)]
    assert bot.memory is not None and bot.memory.hot is not None
    stored = await bot.memory.hot.recent(ConversationKey("test", "alice", "luna"), 20)
    assert [m.text for m in stored if m.role.value == "user"] == seen


async def test_summaries_are_written_once_per_window(bot_factory: BotFactory) -> None:
    bot = await bot_factory(summary_window=2, hot_buffer_size=4)
    bot_factory.llm.responder = summarizing_responder
    for i in range(9):
        await send(bot, f"fact number {i}")
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(30)
    conversation = ConversationKey("test", "alice", "luna")
    assert bot.memory.cold is not None
    summaries = await bot.memory.cold.all(conversation.id)
    # 9 turns = 18 messages = 4 complete windows of 4 messages.
    assert [(s.first_seq, s.last_seq) for s in summaries] == [(1, 4), (5, 8), (9, 12), (13, 16)]
    assert "fact number 0" in summaries[0].text and "fact number 1" in summaries[0].text
    assert await bot.memory.hot.watermark(conversation) == 16  # type: ignore[union-attr]


async def test_old_facts_come_back_through_retrieval(bot_factory: BotFactory) -> None:
    bot = await bot_factory(summary_window=2, hot_buffer_size=4)
    llm = bot_factory.llm
    llm.responder = summarizing_responder
    await send(bot, "My sister Priya lives in Lisbon and teaches violin.")
    for i in range(12):
        await send(bot, f"Today I cooked recipe number {i} for dinner.")
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(30)
    await send(bot, "Where does my sister live?")
    system = chat_requests(llm)[-1].messages[0]["content"]
    assert "Priya lives in Lisbon" in system
    history = [m["content"] for m in chat_requests(llm)[-1].messages[1:]]
    assert not any("Priya" in text for text in history), "the fact left the buffer long ago"


async def test_nothing_is_injected_twice(bot_factory: BotFactory) -> None:
    bot = await bot_factory(summary_window=2, hot_buffer_size=4, retrieval_k=5)
    llm = bot_factory.llm
    llm.responder = summarizing_responder
    for i in range(10):
        await send(bot, f"I visited city number {i}.")
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(30)
    turn_channel = await send(bot, "Which cities did I visit?")
    assert turn_channel.last_text
    key = ConversationKey("test", "alice", "luna")
    # By default the latest summary's lines compete with the others (latest_share 0);
    # with a reserved share it is shown as such and never again among the relevant.
    reserved = MemoryService(
        bot.memory.hot, bot.memory.cold, None, options=RetrievalOptions(latest_share=0.25)
    )
    for service in (bot.memory, reserved):
        context = await service.context(key, "cities", recent=4, k=5)
        ids = [s.doc_id for s in context.relevant]
        assert ids, "old windows should come back as relevant memory"
        if service is reserved:
            assert context.latest_summary is not None
            assert context.latest_summary.doc_id not in ids
        else:
            assert context.latest_summary is None
        assert len(ids) == len(set(ids))
        oldest_recent = context.recent[0].seq
        assert all(s.first_seq < oldest_recent for s in context.relevant)


async def test_empty_whitespace_and_control_messages(bot_factory: BotFactory) -> None:
    bot = await bot_factory()
    llm = bot_factory.llm
    for text in ["", "   \n\t ", "\x00\x01\x02"]:
        channel = await send(bot, text)
        assert channel.texts == []
    assert chat_requests(llm) == []
    channel = await send(bot, "hi\x00 there\x07")
    assert chat_requests(llm)[-1].messages[-1]["content"] == "hi there"
    assert channel.last_text


async def test_huge_message_is_cut_with_a_note_and_kept(bot_factory: BotFactory) -> None:
    bot = await bot_factory(max_message_chars=8000)
    channel = await send(bot, "x" * 100_000)
    assert "only read the first 8000 characters" in channel.last_text
    sent = chat_requests(bot_factory.llm)[-1].messages[-1]["content"]
    assert len(sent) == 8000
    assert bot.memory is not None and bot.memory.hot is not None
    stored = await bot.memory.hot.recent(ConversationKey("test", "alice", "luna"), 2)
    assert len(stored[0].text) == 8000


async def test_attachment_without_text_gets_a_graceful_answer(bot_factory: BotFactory) -> None:
    from honeychat.core.types import Attachment

    bot = await bot_factory()
    channel = RecordingChannel()
    message = IncomingMessage(
        "test", "alice", "alice", "", is_direct=True, attachments=(Attachment("photo"),)
    )
    await bot.handle_message(message, channel)
    assert "photo" in channel.last_text
    assert chat_requests(bot_factory.llm) == []


async def test_group_message_not_addressing_the_bot_is_ignored(bot_factory: BotFactory) -> None:
    bot = await bot_factory()
    channel = await send(bot, "just chatting with friends", is_direct=False)
    assert channel.texts == []
    channel = await send(bot, "hey bot", is_direct=False, mentions_bot=True)
    assert channel.texts


async def test_commands(bot_factory: BotFactory) -> None:
    bot = await bot_factory()
    assert (await send(bot, "/start")).last_text.startswith("Hi, I'm Luna")
    assert "/forget" in (await send(bot, "/help@honeybot")).last_text
    picker = await send(bot, "/character")
    assert {c.value for c in picker.replies[-1].choices} >= {"luna", "marcus", "pixel"}
    switched = await send(bot, "/character marcus")
    assert "Marcus" in switched.last_text
    bot_factory.llm.script(["Pull up a chair."])
    await send(bot, "hello")
    assert "You are Marcus" in bot_factory.llm.chat_requests[-1].messages[0]["content"]
    assert "no character called" in (await send(bot, "/character nobody")).last_text
    assert "don't know the command" in (await send(bot, "/dance")).last_text


async def test_forget_needs_confirmation_and_clears_both_layers(bot_factory: BotFactory) -> None:
    bot = await bot_factory(summary_window=1, hot_buffer_size=2)
    bot_factory.llm.responder = summarizing_responder
    for i in range(3):
        await send(bot, f"secret {i}")
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(30)
    conversation = ConversationKey("test", "alice", "luna")
    assert await bot.memory.cold.all(conversation.id)  # type: ignore[union-attr]
    ask = await send(bot, "/forget")
    assert [c.value for c in ask.replies[-1].choices] == ["confirm", "cancel"]
    assert await bot.memory.cold.all(conversation.id)  # type: ignore[union-attr]
    message = IncomingMessage("test", "alice", "alice", "", is_direct=True)
    reply = await bot.run_command(message, "forget", "confirm", from_choice=True)
    assert "forgotten" in reply.text
    assert await bot.memory.cold.all(conversation.id) == []  # type: ignore[union-attr]
    assert await bot.memory.hot.recent(conversation, 10) == []  # type: ignore[union-attr]
    memory_reply = await send(bot, "/memory")
    assert "doesn't remember anything" in memory_reply.last_text


async def test_memory_counts_read_as_english(bot_factory: BotFactory) -> None:
    bot = await bot_factory(summary_window=1, hot_buffer_size=2)
    bot_factory.llm.responder = summarizing_responder
    await send(bot, "I collect stamps.")
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(30)
    text = (await send(bot, "/memory")).last_text
    assert "(1 memory of earlier chats, and the last 2 messages word for word.)" in text, text


async def test_dedupe_of_events(bot_factory: BotFactory) -> None:
    bot = await bot_factory()
    assert await bot.claim_event("telegram", "1001") is True
    assert await bot.claim_event("telegram", "1001") is False
    assert await bot.claim_event("slack", "1001") is True
    assert await bot.seen_before("slack", "1001") is True, "the old name still works"
    ran: list[str] = []

    async def work(name: str) -> None:
        ran.append(name)

    assert await bot.handle_event("discord", "42", work("first")) is True
    assert await bot.handle_event("discord", "42", work("replay")) is False
    assert await bot.handle_event("discord", None, work("no id")) is True
    assert ran == ["first", "no id"]
