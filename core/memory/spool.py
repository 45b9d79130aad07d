"""Messages answered while the hot layer (Redis) was unreachable, kept until it is back.

When a message cannot be written to Redis the turn still gets its answer;
without a record, that exchange would exist nowhere. :class:`Spool` keeps
such messages in process memory, per conversation and in order, until the
memory service replays them (see
:meth:`~honeychat.core.memory.service.MemoryService.persist`). It is bounded:
beyond ``capacity`` messages the oldest one of the whole process is dropped,
counted (``honeychat_spooled_messages_dropped_total``) and logged. It is not
durable: a process that dies while messages are spooled loses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from honeychat.core.metrics import METRICS
from honeychat.core.types import ConversationKey, Role

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    """One message waiting to be written to the hot layer (``text`` already clean)."""

    number: int
    """Arrival order in this process (the oldest has the smallest)."""
    role: Role
    text: str
    at: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    """The optional fields of the stored format (speaker, tools...), written with it."""


@dataclass(slots=True)
class _Queue:
    messages: deque[SpooledMessage] = field(default_factory=deque)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Spool:
    """A bounded, per-conversation FIFO of messages not yet in the hot layer.

    ``capacity`` is the most messages kept over all conversations (0: none
    are kept, every message is dropped as before the spool existed).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"spool capacity must be 0 or more, got {capacity}")
        self.capacity = capacity
        self._queues: dict[ConversationKey, _Queue] = {}
        self._size = 0
        self._numbers = itertools.count(1)
        self.dropped = 0
        """Messages dropped because the spool was full, since the process started."""
        self._told = False

    def __len__(self) -> int:
        return self._size

    def holds(self, conversation: ConversationKey) -> bool:
        """Whether messages of ``conversation`` wait (new writes must queue behind them)."""
        queue = self._queues.get(conversation)
        return queue is not None and bool(queue.messages)

    def conversations(self) -> list[ConversationKey]:
        """Conversations with messages waiting, the one waiting longest first."""
        waiting = [(q.messages[0].number, c) for c, q in self._queues.items() if q.messages]
        return [c for _, c in sorted(waiting, key=lambda item: item[0])]

    @contextlib.asynccontextmanager
    async def writing(self, conversation: ConversationKey) -> AsyncIterator[None]:
        """Held by whoever replays or appends messages of ``conversation``, one at a time."""
        queue = self._queues.get(conversation)
        if queue is None:
            queue = self._queues[conversation] = _Queue()
        try:
            async with queue.lock:
                yield
        finally:
            self._tidy(conversation)

    def add(
        self,
        conversation: ConversationKey,
        role: Role,
        text: str,
        at: datetime,
        fields: dict[str, Any] | None = None,
    ) -> None:
        """Keep a message; if the spool is full, drop the oldest message (of any conversation)."""
        if self.capacity == 0:
            self._dropped(conversation, 1)
            return
        while self._size >= self.capacity:
            self._drop_oldest()
        queue = self._queues.get(conversation)
        if queue is None:
            queue = self._queues[conversation] = _Queue()
        if self._size == 0:
            log.warning(
                "hot memory unreachable: keeping messages in process memory until it is back "
                "(at most %d; lost if this process stops first)",
                self.capacity,
            )
        queue.messages.append(
            SpooledMessage(next(self._numbers), Role(role), text, at, dict(fields or {}))
        )
        self._size += 1
        METRICS.spooled_messages.inc()
        METRICS.spool_size.set(self._size)

    def pending(self, conversation: ConversationKey) -> list[SpooledMessage]:
        """The messages of ``conversation`` waiting, oldest first."""
        queue = self._queues.get(conversation)
        return list(queue.messages) if queue is not None else []

    def done(self, conversation: ConversationKey, message: SpooledMessage) -> None:
        """``message`` (the oldest of its conversation) is in the hot layer now."""
        queue = self._queues.get(conversation)
        if queue is None or not queue.messages or queue.messages[0] is not message:
            return  # dropped or discarded meanwhile
        queue.messages.popleft()
        self._size -= 1
        METRICS.spooled_replayed.inc()
        METRICS.spool_size.set(self._size)
        if self._size == 0:
            self._told = False
            log.warning("every spooled message is in the hot memory layer now")
        self._tidy(conversation)

    def discard(self, conversation: ConversationKey) -> int:
        """Forget every waiting message of ``conversation`` (it was cleared); how many."""
        queue = self._queues.get(conversation)
        if queue is None:
            return 0
        count = len(queue.messages)
        queue.messages.clear()
        self._size -= count
        METRICS.spool_size.set(self._size)
        self._tidy(conversation)
        return count

    def discard_user(self, platform: str | None, user_id: str) -> int:
        """Forget every waiting message of a user (on ``platform``, or on every platform)."""
        return sum(
            self.discard(c)
            for c in list(self._queues)
            if c.user_id == user_id and (platform is None or c.platform == platform)
        )

    def _tidy(self, conversation: ConversationKey) -> None:
        queue = self._queues.get(conversation)
        if queue is not None and not queue.messages and not queue.lock.locked():
            del self._queues[conversation]

    def _drop_oldest(self) -> None:
        oldest = min(
            (c for c, q in self._queues.items() if q.messages),
            key=lambda c: self._queues[c].messages[0].number,
        )
        self._queues[oldest].messages.popleft()
        self._size -= 1
        self._dropped(oldest, 1)
        self._tidy(oldest)

    def _dropped(self, conversation: ConversationKey, count: int) -> None:
        self.dropped += count
        METRICS.spooled_dropped.inc(count)
        METRICS.spool_size.set(self._size)
        if not self._told:  # once per outage; the metric counts every drop
            self._told = True
            log.error(
                "hot memory unreachable and the spool is full (%d messages): dropping the "
                "oldest waiting messages (first: one of %s); raise MEMORY_SPOOL_SIZE to keep more",
                self.capacity,
                conversation.id,
            )
