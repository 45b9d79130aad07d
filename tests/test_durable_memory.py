"""Memory outlives Redis: an idle expiry or a flush of every key never loses or overwrites
what the cold store holds, and old facts keep reaching the prompt.

Real embedded valkey and Chroma; the fake LLM's summaries keep the user's lines.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from honeychat.core.bot import Bot
from honeychat.core.memory.hot import RedisHotStore
from honeychat.core.types import ConversationKey, Summary
from honeychat.testing.pytest_plugin import BotFactory, send
from honeychat.testing.responders import keeping_user_lines

FACTS = [
    "My sister Agnieszka lives in Gdansk.",
    "My cat is called Pumpernickel.",
    "I am allergic to hazelnuts.",
    "My favourite composer is Janacek.",
    "I drive a green 1998 Volvo.",
    "My daughter was born on the ninth of March.",
]
WINDOW_TURNS = 2  # SUMMARY_WINDOW: four messages per document


async def durable_bot(bot_factory: BotFactory, **settings: object) -> Bot:
    bot_factory.llm.responder = keeping_user_lines("Noted.")
    return await bot_factory(summary_window=WINDOW_TURNS, **settings)


def conversation(bot: Bot) -> ConversationKey:
    return ConversationKey("test", "alice", bot.characters.default.id)


async def settle(bot: Bot) -> None:
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(30)


async def documents(bot: Bot) -> dict[str, Summary]:
    assert bot.memory is not None and bot.memory.cold is not None
    return {s.doc_id: s for s in await bot.memory.cold.all(conversation(bot).id)}


async def tell_facts(bot: Bot) -> dict[str, Summary]:
    for fact in FACTS:
        await send(bot, fact)
    await settle(bot)
    before = await documents(bot)
    assert len(before) == len(FACTS) // WINDOW_TURNS
    assert any("Pumpernickel" in s.text for s in before.values())
    return before


async def chat_on(bot: Bot, turns: int) -> None:
    for i in range(turns):
        await send(bot, f"Small talk number {i} about the weather and the trains.")
    await settle(bot)


async def assert_old_memory_intact(
    bot: Bot, bot_factory: BotFactory, before: dict[str, Summary]
) -> None:
    after = await documents(bot)
    for doc_id, old in before.items():
        assert doc_id in after, f"{doc_id} disappeared"
        assert after[doc_id].text == old.text, f"{doc_id} was overwritten"
    newest_old = max(s.last_seq for s in before.values())
    new = [s for doc_id, s in after.items() if doc_id not in before]
    assert new, "the conversation kept being summarized"
    assert min(s.first_seq for s in new) == newest_old + 1, "numbering resumed after the old"
    await send(bot, "What is the name of my cat?")
    system = bot_factory.last_system_prompt()
    assert "Pumpernickel" in system, "an old fact reached the prompt"


async def test_old_facts_survive_the_buffer_expiring(bot_factory: BotFactory) -> None:
    bot = await durable_bot(bot_factory, hot_buffer_ttl_days=1.0 / 86400)  # one second
    before = await tell_facts(bot)
    hot = bot.memory.hot if bot.memory else None
    assert isinstance(hot, RedisHotStore)
    buffer = hot.key(conversation(bot), "buf")
    for _ in range(100):
        if not await hot.client.exists(buffer):
            break
        await asyncio.sleep(0.05)
    assert not await hot.client.exists(buffer), "the idle buffer expired"
    assert await hot.last_seq(conversation(bot)) == 2 * len(FACTS), "state did not expire"

    await chat_on(bot, 25)
    await assert_old_memory_intact(bot, bot_factory, before)


async def test_old_facts_survive_a_flush_of_redis(bot_factory: BotFactory) -> None:
    bot = await durable_bot(bot_factory)
    before = await tell_facts(bot)
    assert bot.redis is not None
    await bot.redis.flushdb()

    await chat_on(bot, 25)
    await assert_old_memory_intact(bot, bot_factory, before)


async def test_a_new_process_after_a_flush_rebuilds_from_the_cold_store(
    bot_factory: BotFactory,
) -> None:
    first = await durable_bot(bot_factory)
    before = await tell_facts(first)
    assert first.redis is not None
    await first.redis.flushdb()
    await first.stop()

    # Same data directory and key prefix: a restarted process with an empty Redis.
    second = await bot_factory(summary_window=WINDOW_TURNS, key_prefix=first.settings.key_prefix)
    await chat_on(second, 6)
    await assert_old_memory_intact(second, bot_factory, before)


async def test_repeating_a_window_replaces_its_own_document(bot_factory: BotFactory) -> None:
    bot = await durable_bot(bot_factory)
    before = await tell_facts(bot)
    assert bot.memory is not None and bot.memory.cold is not None
    first = min(before.values(), key=lambda s: s.first_seq)
    await bot.memory.cold.add(replace(first, text="rewritten"))
    after = await documents(bot)
    assert len(after) == len(before)
    assert after[first.doc_id].text == "rewritten"


def test_document_ids_are_per_conversation_generation_and_window() -> None:
    base = Summary("test:alice:luna", "x", 1, 4)
    ids = {
        base.doc_id,
        replace(base, generation=1).doc_id,
        replace(base, first_seq=5, last_seq=8).doc_id,
        replace(base, conversation_id="test:bob:luna").doc_id,
    }
    assert len(ids) == 4
    assert base.doc_id == "test:alice:luna:000000001-000000004"  # the original form is kept


async def test_a_read_during_another_process_clear_cannot_refill_the_cache(
    bot_factory: BotFactory,
) -> None:
    """Race (b) of issue #11: the clearing process has bumped the generation in Redis but
    not yet deleted the documents when a turn elsewhere reads the latest summary."""
    bot = await durable_bot(bot_factory)
    await tell_facts(bot)
    memory = bot.memory
    assert memory is not None and memory.hot is not None and memory.cold is not None
    key = conversation(bot)
    await memory.hot.clear(key)  # the other process, step one
    await memory.latest_summary(key)  # a concurrent turn here reads Chroma (still there)
    await memory.cold.delete(key.id)  # the other process, step two: the clear is done
    assert await memory.hot.cached_summary(key) is None
    context = await memory.context(key, "What is the name of my cat?", recent=10, k=5)
    assert context.latest_summary is None and context.relevant == ()
