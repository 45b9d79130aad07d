"""The contracts of the two memory layers.

The built-in memory plugin implements :class:`HotStore` on Redis and
:class:`ColdStore` on Chroma; a plugin can supply other implementations
through the ``honeychat_hot_store`` / ``honeychat_cold_store`` hooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from honeychat.core.types import ConversationKey, Role, StoredMessage, Summary


class StoreUnavailable(Exception):
    """A memory layer could not be reached. ``layer`` is ``"hot"`` or ``"cold"``."""

    def __init__(self, layer: str, cause: BaseException | str) -> None:
        self.layer = layer
        self.cause = cause
        super().__init__(f"{layer} memory unavailable: {cause}")


class StateMissing(Exception):
    """A conversation has no state in the hot store: it is new, or the store lost it.

    Raised by :meth:`HotStore.append` before anything is written; the memory
    service rebuilds the state from the cold store (:meth:`HotStore.restore_state`)
    and appends again.
    """

    def __init__(self, conversation: ConversationKey) -> None:
        self.conversation = conversation
        super().__init__(f"no state for conversation {conversation.id}")


@dataclass(frozen=True, slots=True)
class WindowFailure:
    """Failed attempts at summarizing one window, kept until the window is done."""

    first_seq: int
    attempts: int
    retry_at: float
    """Unix time before which the window is not tried again."""


@runtime_checkable
class HotStore(Protocol):
    """Recent verbatim messages per conversation, plus the bookkeeping of summarization.

    Every message gets a per-conversation sequence number (1, 2, 3...). The
    *watermark* is the last sequence number already summarized; messages
    after it are never trimmed. The *epoch* changes on every clear, so work
    started before a clear can tell that it must be discarded (it is also the
    *generation* in document ids). Sequence number, watermark and epoch are
    durable state: they never expire; the buffer and the summary cache may.
    Methods raise :class:`StoreUnavailable` when the store cannot be reached.
    """

    async def append(
        self,
        conversation: ConversationKey,
        role: Role,
        text: str,
        at: datetime,
        *,
        tools: Sequence[dict[str, Any]] = (),
        speaker: str | None = None,
        speaker_id: str | None = None,
        attachments: Sequence[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> StoredMessage:
        """Store one message in a single round trip; return it with its sequence number.

        ``tools`` (a reply's tool calls, see :attr:`StoredMessage.tools`),
        ``speaker``, ``speaker_id`` (a space member's id), ``attachments`` and
        ``extra`` are optional fields of the stored format (``docs/memory-format.md``),
        kept with the message.
        May raise :class:`StateMissing`, writing nothing, when the conversation
        has no state (see :meth:`restore_state`); the memory service then
        restores it and appends again.
        """

    async def restore_state(
        self, conversation: ConversationKey, last_summarized: int, generation: int
    ) -> bool:
        """Create missing state: sequence number and watermark ``last_summarized``,
        epoch at least ``generation``. Returns ``False`` if the state exists."""

    async def recent(self, conversation: ConversationKey, limit: int) -> list[StoredMessage]:
        """The newest ``limit`` messages, oldest first."""

    async def window(
        self, conversation: ConversationKey, first_seq: int, last_seq: int
    ) -> list[StoredMessage]:
        """The buffered messages whose sequence number is in ``first_seq..last_seq``."""

    async def last_seq(self, conversation: ConversationKey) -> int:
        """The sequence number of the newest message (0 when there is none)."""

    async def watermark(self, conversation: ConversationKey) -> int:
        """The last sequence number already summarized (0 when none)."""

    async def epoch(self, conversation: ConversationKey) -> int:
        """A number that changes every time the conversation is cleared."""

    async def advance_watermark(
        self, conversation: ConversationKey, expected: int, new: int, epoch: int
    ) -> bool:
        """Move the watermark from ``expected`` to ``new`` if nothing changed meanwhile.

        Returns ``False`` (and changes nothing) when the watermark is not
        ``expected`` or the epoch is not ``epoch`` any more.
        """

    async def cached_summary(self, conversation: ConversationKey) -> Summary | None:
        """The cached latest summary, or ``None`` on a miss."""

    async def cache_summary(
        self, conversation: ConversationKey, summary: Summary, epoch: int
    ) -> bool:
        """Cache ``summary`` as the latest unless the epoch changed; returns whether it did."""

    async def clear(self, conversation: ConversationKey) -> None:
        """Forget the buffer and the cached summary, set the watermark to the last sequence
        number and change the epoch. Sequence numbers keep counting up."""

    async def forget_speaker(
        self, conversation: ConversationKey, speaker_id: str
    ) -> tuple[int, set[int]]:
        """Drop a space member's buffered messages and the summary cache; return how many
        messages went and the sequence numbers of every message they wrote still on record."""

    async def forget_authored(self, conversation: ConversationKey, seqs: set[int]) -> None:
        """Drop the record of who wrote ``seqs`` (their summary lines are gone)."""

    async def window_failure(self, conversation: ConversationKey) -> WindowFailure | None:
        """The failed attempts at the conversation's next window, if any."""

    async def record_window_failure(
        self, conversation: ConversationKey, first_seq: int, retry_at: float
    ) -> int:
        """Count one more failed attempt at the window starting at ``first_seq``.

        Returns the attempts so far (a failure of another window starts again at 1).
        """

    async def forget_window_failure(self, conversation: ConversationKey) -> None:
        """Drop the failure record (the window was stored)."""

    async def mark_pending(self, conversation: ConversationKey, since: float) -> None:
        """Note that a complete window waits since ``since`` (unix time); an earlier note stays."""

    async def mark_done(self, conversation: ConversationKey) -> None:
        """Note that no complete window of the conversation waits any more."""

    async def backlog(self) -> tuple[int, float | None]:
        """How many conversations have a complete window waiting, and since when (oldest)."""

    async def conversations(self, cursor: int = 0, count: int = 100) -> tuple[int, list[str]]:
        """Page through the ids of conversations that have a buffer: ``(next_cursor, ids)``."""

    async def close(self) -> None:
        """Release connections."""


@runtime_checkable
class ColdStore(Protocol):
    """Long-term memory: one summary document per window, searchable by meaning."""

    async def add(self, summary: Summary) -> None:
        """Store a summary under its ``doc_id`` (writing the same window twice keeps one)."""

    async def latest(self, conversation_id: str) -> Summary | None:
        """The summary with the highest ``last_seq``, or ``None``."""

    async def search(self, conversation_id: str, query: str, k: int) -> list[Summary]:
        """The ``k`` summaries most relevant to ``query``, best first, with ``score`` set."""

    async def all(self, conversation_id: str) -> list[Summary]:
        """Every summary of a conversation, oldest window first."""

    async def delete(self, conversation_id: str, doc_ids: list[str] | None = None) -> None:
        """Delete the given documents, or every document of the conversation."""

    async def close(self) -> None:
        """Release resources."""
