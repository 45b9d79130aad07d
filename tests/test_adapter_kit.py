"""The adapter kit in core: in-flight work tracking and drain, shared by every adapter."""

from __future__ import annotations

import asyncio

from honeychat.core.inflight import InflightTasks


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
