"""The adapter kit in core, shared by every adapter: in-flight work, the choice codec."""

from __future__ import annotations

import asyncio

from honeychat.core.choices import ChoiceCodec
from honeychat.core.inflight import InflightTasks
from honeychat.core.types import Choice
from honeychat.testing import BotFactory


async def test_drain_waits_for_work_then_cancels_what_is_late() -> None:
    inflight = InflightTasks("test")
    finished: list[str] = []

    async def work(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        finished.append(name)

    inflight.spawn(work("quick", 0.01))
    slow = inflight.spawn(work("slow", 30))

    async def tracked() -> None:
        async with inflight.track():
            await asyncio.sleep(0.02)
            finished.append("tracked")

    handler = asyncio.create_task(tracked())
    await asyncio.sleep(0)
    assert len(inflight) == 3
    assert await inflight.drain(0.5) == 1
    assert sorted(finished) == ["quick", "tracked"]
    assert slow.cancelled()
    await handler
    assert len(inflight) == 0
    assert await inflight.drain(0.5) == 0


async def test_a_long_choice_survives_a_restart_and_works_on_another_replica(
    bot_factory: BotFactory,
) -> None:
    first = await bot_factory(key_prefix="choices")
    long = Choice("Pick me", "character", "a-character-id-far-too-long-for-a-button-" * 3)
    payload = ChoiceCodec(64, first).encode(long)
    assert payload.startswith("~") and len(payload.encode()) <= 64
    assert ChoiceCodec(64, first).encode(Choice("Luna", "character", "luna")) == "character:luna"
    # A new codec (a restarted process, or another replica sharing Redis) still reads it.
    other = await bot_factory(key_prefix="choices")
    for _ in range(50):  # the pair is written in the background when the button is built
        if await ChoiceCodec(64, other).decode(payload) is not None:
            break
        await asyncio.sleep(0.02)
    assert await ChoiceCodec(64, other).decode(payload) == ("character", long.value)
    assert await ChoiceCodec(64, other).decode("~" + "0" * 24) is None, "unknown: run it again"
