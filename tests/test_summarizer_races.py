"""The reference design's production bugs, each pinned by a test on real stores.

Two processes are modelled as two :class:`Summarizer` instances, each with its own job
queue client and worker on one Redis-protocol server, sharing one Chroma, as two bot
processes would. The bot itself runs no worker here, so only these summarize.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime

import pytest

from honeychat.core.bot import Bot
from honeychat.core.jobs import Jobs
from honeychat.core.memory.service import MemoryService
from honeychat.core.memory.summarizer import Summarizer
from honeychat.core.types import ConversationKey, Role, StoredMessage
from honeychat.testing.pytest_plugin import BotFactory

CONVERSATION = ConversationKey("test", "bob", "luna")
WINDOW = 4


class SlowSummaries:
    """A summarize function that takes a while and counts its calls."""

    def __init__(self, delay: float = 0.2, text: str | None = None) -> None:
        self.delay = delay
        self.text = text
        self.calls = 0
        self.started = asyncio.Event()

    async def __call__(self, messages: Sequence[StoredMessage], name: str) -> str:
        self.calls += 1
        self.started.set()
        await asyncio.sleep(self.delay)
        if self.text is not None:
            return self.text
        return " / ".join(m.text for m in messages)


async def stores(bot: Bot) -> MemoryService:
    assert bot.memory is not None and bot.memory.hot is not None and bot.memory.cold is not None
    return bot.memory


async def fill(memory: MemoryService, count: int) -> None:
    for i in range(count):
        role = Role.USER if i % 2 == 0 else Role.ASSISTANT
        await memory.persist(CONVERSATION, role, f"line {i}", datetime.now(UTC))


Workers = Callable[[Bot, SlowSummaries], Awaitable[Summarizer]]


@pytest.fixture
async def summarizer() -> AsyncIterator[Workers]:
    """``await summarizer(bot, summarize)``: a summarizer with a worker of its own (a process)."""
    started: list[Jobs] = []

    async def make(bot: Bot, summarize: SlowSummaries) -> Summarizer:
        memory = await stores(bot)
        assert memory.hot is not None and memory.cold is not None and bot.redis is not None
        jobs = Jobs(bot.redis, prefix=bot.settings.key_prefix, poll_seconds=0.2)
        worker = Summarizer(
            memory.hot, memory.cold, summarize, jobs=jobs, window=WINDOW, model="fake"
        )
        await jobs.start_worker(concurrency=2)
        started.append(jobs)
        return worker

    yield make
    for jobs in started:
        await jobs.close()


async def quiet_bot(bot_factory: BotFactory) -> Bot:
    return await bot_factory(jobs_worker=False)


async def test_repeated_triggers_never_resummarize(
    bot_factory: BotFactory, summarizer: Workers
) -> None:
    bot = await quiet_bot(bot_factory)
    memory = await stores(bot)
    slow = SlowSummaries(delay=0.01)
    worker = await summarizer(bot, slow)
    for _ in range(3):
        await fill(memory, 2)
        await worker.schedule(CONVERSATION)
        await worker.schedule(CONVERSATION)
    await worker.wait_idle(10)
    for _ in range(5):  # a full buffer must not trigger more summaries of the same turns
        await worker.schedule(CONVERSATION)
    await worker.wait_idle(10)
    assert memory.cold is not None
    docs = await memory.cold.all(CONVERSATION.id)
    assert [(d.first_seq, d.last_seq) for d in docs] == [(1, 4)]
    assert slow.calls == 1


async def test_two_processes_never_write_overlapping_summaries(
    bot_factory: BotFactory, summarizer: Workers
) -> None:
    bot = await quiet_bot(bot_factory)
    memory = await stores(bot)
    await fill(memory, 3 * WINDOW)
    first, second = SlowSummaries(), SlowSummaries()
    a, b = await summarizer(bot, first), await summarizer(bot, second)
    await a.schedule(CONVERSATION)
    await b.schedule(CONVERSATION)
    await asyncio.gather(a.wait_idle(20), b.wait_idle(20))
    assert memory.cold is not None
    docs = await memory.cold.all(CONVERSATION.id)
    assert [(d.first_seq, d.last_seq) for d in docs] == [(1, 4), (5, 8), (9, 12)]
    assert first.calls + second.calls == 3, "each window summarized exactly once"


async def test_a_clear_during_summarization_wins(
    bot_factory: BotFactory, summarizer: Workers
) -> None:
    bot = await quiet_bot(bot_factory)
    memory = await stores(bot)
    await fill(memory, WINDOW)
    slow = SlowSummaries(delay=0.5)
    other_process = await summarizer(bot, slow)
    await other_process.schedule(CONVERSATION)
    await asyncio.wait_for(slow.started.wait(), 10)
    await memory.clear(CONVERSATION)
    await other_process.wait_idle(10)
    assert memory.cold is not None and memory.hot is not None
    assert await memory.cold.all(CONVERSATION.id) == []
    assert await memory.hot.cached_summary(CONVERSATION) is None
    assert await memory.hot.watermark(CONVERSATION) == WINDOW


async def test_an_empty_summary_is_never_stored(
    bot_factory: BotFactory, summarizer: Workers
) -> None:
    bot = await quiet_bot(bot_factory)
    memory = await stores(bot)
    await fill(memory, WINDOW)
    worker = await summarizer(bot, SlowSummaries(delay=0, text="   "))
    await worker.schedule(CONVERSATION)
    await worker.wait_idle(10)
    assert memory.cold is not None and memory.hot is not None
    assert await memory.cold.all(CONVERSATION.id) == []
    assert await memory.hot.cached_summary(CONVERSATION) is None
    assert await memory.hot.watermark(CONVERSATION) == 0
    assert worker.failures == 1


async def test_a_failed_llm_summary_is_not_stored_and_retried_later(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(summary_window=2, llm_max_retries=0, summary_retry_seconds=0.3)
    memory = await stores(bot)
    bot_factory.llm.fail_next(500, times=1)
    await fill(memory, WINDOW)
    assert memory.summarizer is not None and memory.cold is not None
    await memory.schedule_summary(CONVERSATION)
    await memory.summarizer.wait_idle(10)
    assert await memory.cold.all(CONVERSATION.id) == []
    # Nobody writes again: the retry comes by itself after the backoff.
    for _ in range(100):
        if await memory.cold.all(CONVERSATION.id):
            break
        await asyncio.sleep(0.05)
    [stored] = await memory.cold.all(CONVERSATION.id)
    assert stored.kind == "summary" and (stored.first_seq, stored.last_seq) == (1, WINDOW)


async def test_no_documents_means_no_memories(bot_factory: BotFactory) -> None:
    memory = await stores(await bot_factory())
    context = await memory.context(CONVERSATION, "anything at all", recent=10, k=3)
    assert context.recent == () and context.latest_summary is None and context.relevant == ()
    assert context.unavailable == ()


async def test_latest_summary_is_cached_and_refilled_by_metadata(
    bot_factory: BotFactory, summarizer: Workers
) -> None:
    bot = await quiet_bot(bot_factory)
    memory = await stores(bot)
    await fill(memory, 3 * WINDOW)
    worker = await summarizer(bot, SlowSummaries(delay=0))
    await worker.schedule(CONVERSATION)
    await worker.wait_idle(10)
    assert memory.hot is not None
    cached = await memory.hot.cached_summary(CONVERSATION)
    assert cached is not None and cached.last_seq == 12
    # Drop the cache: the newest document by metadata comes back and is written back.
    from honeychat.core.memory.hot import RedisHotStore

    assert isinstance(memory.hot, RedisHotStore)
    await memory.hot.client.delete(memory.hot.key(CONVERSATION, "summary"))
    assert await memory.hot.cached_summary(CONVERSATION) is None
    latest = await memory.latest_summary(CONVERSATION)
    assert latest is not None and latest.last_seq == 12
    refilled = await memory.hot.cached_summary(CONVERSATION)
    assert refilled is not None and refilled.doc_id == latest.doc_id
