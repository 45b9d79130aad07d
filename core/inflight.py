"""The work an adapter accepted and has not finished, so that shutdown can let it finish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

log = logging.getLogger(__name__)

CANCEL_WAIT_SECONDS = 5.0
"""After the grace period, how long cancelled work gets to unwind."""


class InflightTasks:
    """Tracks an adapter's in-flight work: spawned tasks and tasks it runs in (``track``).

    One policy for every adapter: :meth:`drain` waits up to a grace period,
    then cancels what is left and says so in the log.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(
        self, work: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        """Run ``work`` in a new task, tracked until it ends."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        """Count the current task as in flight while the block runs (for work a library
        already runs in its own task, such as discord.py's event handlers)."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)

    async def drain(self, grace: float) -> int:
        """Wait up to ``grace`` seconds for in-flight work; cancel the rest. Returns how many
        were cancelled. The task calling ``drain`` is never waited for."""
        pending = self._tasks - {asyncio.current_task()}
        if not pending:
            return 0
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            log.warning(
                "%s: %d piece(s) of work did not finish within %.0f s of shutdown; cancelled",
                self.name,
                len(late),
                grace,
            )
            await asyncio.wait(late, timeout=CANCEL_WAIT_SECONDS)
        return len(late)

    def __len__(self) -> int:
        return len(self._tasks)
