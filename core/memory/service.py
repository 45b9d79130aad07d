"""The memory service: both layers together, as a turn and the tools see them.

Failure isolation lives here: when a layer cannot be reached the turn goes
on without it, the cause is logged once (and again when it recovers), and
the other layer keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError

from honeychat.core.deadlines import Budget, Circuit, caused_by_timeout
from honeychat.core.memory.contributions import without_sources
from honeychat.core.memory.retrieval import (
    RetrievalOptions,
    TokenCounter,
    newest_lines,
    select,
    split_lines,
)
from honeychat.core.memory.spool import Spool
from honeychat.core.memory.stores import ColdStore, HotStore, StateMissing, StoreUnavailable
from honeychat.core.memory.summarizer import Summarizer
from honeychat.core.metrics import METRICS
from honeychat.core.sanitize import clean_text
from honeychat.core.types import ConversationKey, MemoryContext, Role, StoredMessage, Summary

log = logging.getLogger(__name__)

_STRICT: ContextVar[bool] = ContextVar("honeychat_memory_strict", default=False)
_BUDGET: ContextVar[Budget | None] = ContextVar("honeychat_memory_budget", default=None)
_FAILED = object()
REPLAY_EVERY_SECONDS = 1.0
SPOOL_DRAIN_SECONDS = 5.0
"""At shutdown, how long spooled messages may take to reach a hot layer that is back."""
"""How often spooled messages are retried while Redis is unreachable."""


@contextlib.contextmanager
def strict_reads() -> Iterator[None]:
    """Inside this block, a layer that cannot be reached raises ``StoreUnavailable``.

    The chat path is fail-soft (a down layer reads as empty); tools that must
    tell "empty" from "unreachable", like the inspector, read through the same
    hooks inside this block. It applies to the current task and the tasks it
    starts (a context variable), never to concurrent chat turns.
    """
    token = _STRICT.set(True)
    try:
        yield
    finally:
        _STRICT.reset(token)


class LayerHealth:
    """Logs a layer's failure once, and its recovery once."""

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.down = False
        self.errors = 0

    def failed(self, exc: BaseException | str) -> None:
        self.errors += 1
        if not self.down:
            self.down = True
            log.error("%s memory layer unavailable, answering without it: %s", self.layer, exc)

    def ok(self) -> None:
        if self.down:
            self.down = False
            log.warning("%s memory layer is back", self.layer)


class MemoryService:
    """Reads and writes both layers for the pipeline, commands, CLI and inspector.

    ``budget_tokens`` caps the tokens (by ``count``) that summaries add to a
    turn's prompt (``None``: no cap, ``k`` whole summaries); ``options`` says
    how relevant memory is retrieved (see :mod:`honeychat.core.memory.retrieval`).
    """

    def __init__(
        self,
        hot: HotStore | None,
        cold: ColdStore | None,
        summarizer: Summarizer | None,
        *,
        budget_tokens: int | None = None,
        options: RetrievalOptions = RetrievalOptions(),
        count: TokenCounter | None = None,
        read_timeout: float = 2.0,
        spool_size: int = 10_000,
    ) -> None:
        self.hot = hot
        self.cold = cold
        self.summarizer = summarizer
        self.budget_tokens = budget_tokens
        self.options = options
        if count is None:
            from honeychat.core.memory.tokens import count_tokens

            count = count_tokens
        self.count = count
        self.hot_health = LayerHealth("hot")
        self.cold_health = LayerHealth("cold")
        self.read_timeout = read_timeout
        """Seconds a turn's memory reads may take together; a layer that has not answered
        by then counts as down for this turn and is skipped for a moment after."""
        self._circuits = {"hot": Circuit(), "cold": Circuit()}
        self.format_upgrade: asyncio.Task[Any] | None = None
        self.spool = Spool(spool_size)
        """Messages answered while the hot layer could not take them, replayed when it is back."""
        self._replayer: asyncio.Task[None] | None = None
        self.replay_every = REPLAY_EVERY_SECONDS
        """Seconds between background attempts at replaying the spool while Redis is down."""

    async def _guard(self, health: LayerHealth, coro: Any, default: Any) -> Any:
        circuit = self._circuits[health.layer]
        budget = _BUDGET.get()
        try:
            if not circuit.allows():
                coro.close()
                raise StoreUnavailable(health.layer, "timed out a moment ago; skipped")
            try:
                # Inside a turn's reads the budget applies; elsewhere the stores' own deadlines.
                result = await asyncio.wait_for(coro, budget.left() if budget else None)
            except TimeoutError as exc:
                raise StoreUnavailable(
                    health.layer, f"no answer within {self.read_timeout:g}s"
                ) from exc
        except StoreUnavailable as exc:
            if caused_by_timeout(exc):  # a hung layer: skip it for a moment, like a down one
                circuit.trip()
            health.failed(exc.cause)
            METRICS.store_errors.labels(health.layer).inc()
            if _STRICT.get():
                raise
            return default
        health.ok()
        return result

    async def persist(
        self,
        conversation: ConversationKey,
        role: Role,
        text: str,
        at: datetime,
        **fields: Any,
    ) -> StoredMessage | None:
        """Store one message (text made storable first, see :mod:`honeychat.core.sanitize`).

        ``fields`` are the optional fields of the stored format that
        :meth:`HotStore.append` takes (``tools``, ``speaker``, ``speaker_id``,
        ``attachments``, ``extra``).

        If the hot layer cannot take it, the message is spooled in this process
        (see :mod:`honeychat.core.memory.spool`) and ``None`` returned; spooled
        messages of the conversation are written, in order, before any later
        one, and in the background as soon as the layer is back.
        """
        if self.hot is None:
            return None
        text = clean_text(text)
        if not self.spool.holds(conversation):
            stored = await self._guard(
                self.hot_health, self._append(conversation, role, text, at, fields), _FAILED
            )
            if stored is not _FAILED:
                return stored
            if not self.spool.holds(conversation):
                self.spool.add(conversation, role, text, at, fields)
                self._start_replayer()
                return None
        async with self.spool.writing(conversation):
            if await self._replay(conversation):
                stored = await self._guard(
                    self.hot_health, self._append(conversation, role, text, at, fields), _FAILED
                )
                if stored is not _FAILED:
                    return stored
            self.spool.add(conversation, role, text, at, fields)
        self._start_replayer()
        return None

    async def _replay(self, conversation: ConversationKey) -> bool:
        """Write the conversation's spooled messages, oldest first; whether all went in.

        Hold ``self.spool.writing(conversation)``. A message whose write timed
        out may still have reached Redis (a hung server runs the command when
        it resumes), so messages already at the end of the buffer are skipped.
        """
        waiting = self.spool.pending(conversation)
        if not waiting:
            return True
        assert self.hot is not None
        tail = await self._guard(
            self.hot_health, self.hot.recent(conversation, len(waiting) + 2), _FAILED
        )
        if tail is _FAILED:
            return False
        present = {(m.role, m.text, m.at) for m in tail}
        for message in waiting:
            if (message.role, message.text, message.at) not in present:
                stored = await self._guard(
                    self.hot_health,
                    self._append(
                        conversation, message.role, message.text, message.at, message.fields
                    ),
                    _FAILED,
                )
                if stored is _FAILED:
                    return False
            self.spool.done(conversation, message)
        log.info("replayed %d spooled messages of %s", len(waiting), conversation.id)
        await self.schedule_summary(conversation)
        return True

    def _start_replayer(self) -> None:
        if self._replayer is None or self._replayer.done():
            self._replayer = asyncio.get_running_loop().create_task(
                self._replay_all(), name="honeychat-spool-replay"
            )

    async def _replay_all(self) -> None:
        """Until the spool is empty: wait, then replay every conversation that has one."""
        while len(self.spool):
            await asyncio.sleep(self.replay_every)
            try:
                await self.replay_spool()
            except Exception:  # never let the replayer die with messages waiting
                log.exception("replaying spooled messages failed; trying again")

    async def replay_spool(self) -> int:
        """One pass over the spool (the conversation waiting longest first); messages left."""
        for conversation in self.spool.conversations():
            async with self.spool.writing(conversation):
                if not await self._replay(conversation):
                    break  # still unreachable: try again on the next pass
        return len(self.spool)

    async def _append(
        self,
        conversation: ConversationKey,
        role: Role,
        text: str,
        at: datetime,
        fields: dict[str, Any],
    ) -> StoredMessage:
        assert self.hot is not None
        # Only what is set is passed, so a store without newer optional fields keeps working.
        fields = {name: value for name, value in fields.items() if value not in (None, (), [])}
        try:
            return await self.hot.append(conversation, role, text, at, **fields)
        except StateMissing:
            await self.restore_state(conversation)
            return await self.hot.append(conversation, role, text, at, **fields)

    async def restore_state(self, conversation: ConversationKey) -> None:
        """Give a conversation without hot state (new, or lost by Redis) its state back.

        The cold store knows what was summarized: numbering resumes after its
        newest window, in its generation, so no later window reuses an old
        document id and old summaries stay visible. When the cold store cannot
        be read, a fresh generation (the current time, above any count of
        clears) keeps new document ids apart from every old one.
        """
        assert self.hot is not None
        generation, last = 0, 0
        if self.cold is not None:
            # A conversation's first message waits here: bounded like a turn's reads.
            circuit = self._circuits["cold"]
            try:
                if not circuit.allows():
                    raise StoreUnavailable("cold", "timed out a moment ago; skipped")
                try:
                    latest = await asyncio.wait_for(
                        self.cold.latest(conversation.id), self.read_timeout
                    )
                except TimeoutError as exc:
                    circuit.trip()
                    raise StoreUnavailable(
                        "cold", f"no answer within {self.read_timeout:g}s"
                    ) from exc
            except StoreUnavailable as exc:
                self.cold_health.failed(exc.cause)
                generation = int(time.time())
            else:
                if latest is not None:
                    generation, last = latest.generation, latest.last_seq
        if await self.hot.restore_state(conversation, last, generation) and last:
            log.warning(
                "rebuilt the state of %s from the cold store: summarized through %d, generation %d",
                conversation.id,
                last,
                generation,
            )

    async def latest_summary(
        self, conversation: ConversationKey, *, fill_cache: bool = True
    ) -> Summary | None:
        """The newest summary: from the Redis cache, else by metadata from the cold layer."""
        epoch = None
        if self.hot is not None:
            cached = await self._guard(self.hot_health, self.hot.cached_summary(conversation), None)
            if cached is not None:
                return cached
            if fill_cache:
                epoch = await self._guard(self.hot_health, self.hot.epoch(conversation), None)
        if self.cold is None:
            return None
        latest: Summary | None = await self._guard(
            self.cold_health, self.cold.latest(conversation.id), None
        )
        if latest is not None:
            latest = latest.without_messages()  # the window's messages are for search only
        # Only a summary of the current generation may enter the cache: one read from
        # Chroma just before a clear (in this or another process) deleted it must not
        # come back through the cache after the clear.
        if (
            latest is not None
            and epoch is not None
            and latest.generation == epoch
            and self.hot is not None
        ):
            await self._guard(
                self.hot_health, self.hot.cache_summary(conversation, latest, epoch), None
            )
        return latest

    async def candidates(self, conversation: ConversationKey, query: str, n: int) -> list[Summary]:
        """The ``n`` summaries nearest to ``query`` by meaning, best first (the raw pool)."""
        if self.cold is None or n <= 0 or not query.strip():
            return []
        found: list[Summary] = await self._guard(
            self.cold_health, self.cold.search(conversation.id, query, n), []
        )
        METRICS.retrieval_searches.inc()
        METRICS.retrieval_hits.inc(len(found))
        return found

    async def search(self, conversation: ConversationKey, query: str, k: int) -> list[Summary]:
        """The ``k`` summaries most relevant to ``query``, whole, ranked as a turn ranks them.

        ``honeychat memory search`` and the inspector use this: the same
        candidates and the same hybrid ranking as :meth:`context`, without
        the token budget.
        """
        if k <= 0:
            return []
        found = await self.candidates(conversation, query, max(k, self.options.candidates))
        whole = select(found, query, None, self.count, self.options, max_documents=k)
        by_id = {s.doc_id: s for s in found}
        return [by_id[s.doc_id] for s in whole]

    async def context(
        self,
        conversation: ConversationKey,
        query: str,
        *,
        recent: int,
        k: int | None,
        budget: int | None = None,
    ) -> MemoryContext:
        """The three reads of a turn, run concurrently, with nothing injected twice.

        Relevant memory is at most ``k`` summaries (``None``: no limit) whose
        chosen lines, with the latest summary, fit in ``budget`` tokens
        (default: the service's ``budget_tokens``).
        """
        budget = self.budget_tokens if budget is None else budget
        recent_read = (
            self._guard(self.hot_health, self.hot.recent(conversation, recent), None)
            if self.hot is not None and recent > 0
            else _const([])
        )
        wanted = self.options.candidates if k is None else max(k + 2, self.options.candidates)
        if k is not None and k <= 0:
            wanted = 0
        token = _BUDGET.set(Budget(self.read_timeout))
        try:
            buffered, latest, found = await asyncio.gather(
                recent_read,
                self.latest_summary(conversation),
                self.candidates(conversation, query, wanted),
            )
        finally:
            _BUDGET.reset(token)
        unavailable = tuple(h.layer for h in (self.hot_health, self.cold_health) if h.down)
        messages: list[StoredMessage] = buffered or []
        oldest_buffered = messages[0].seq if messages else math.inf

        def shown(summary: Summary) -> bool:
            return summary.first_seq < oldest_buffered  # a window wholly in the buffer adds nothing

        latest_shown = latest if latest is not None and shown(latest) else None
        left = budget
        if latest_shown is not None and self.options.latest_share <= 0:
            latest_shown = None  # its lines compete with the other candidates instead
        elif latest_shown is not None and left is not None:
            latest_shown, used = newest_lines(
                latest_shown, int(left * self.options.latest_share), self.count
            )
            left -= used
            if not latest_shown.text:
                latest_shown = None
        pool = [
            s
            for s in found
            if shown(s) and (latest_shown is None or latest is None or s.doc_id != latest.doc_id)
        ]
        relevant = select(pool, query, left, self.count, self.options, max_documents=k)
        return MemoryContext(
            recent=tuple(messages),
            latest_summary=latest_shown,
            relevant=tuple(relevant),
            unavailable=unavailable,
        )

    async def shared(
        self, conversation: ConversationKey, query: str, *, k: int | None
    ) -> list[Summary]:
        """Summaries of ``conversation`` relevant to ``query``, for a turn in another conversation.

        A space's reply reads the speaker's private memory through this, only
        when :func:`honeychat.core.spaces.memory_scope` allows it. Bounded like
        a turn's reads; half the memory budget.
        """
        if k is not None and k <= 0:
            return []
        wanted = self.options.candidates if k is None else max(k, self.options.candidates)
        token = _BUDGET.set(Budget(self.read_timeout))
        try:
            found = await self.candidates(conversation, query, wanted)
        finally:
            _BUDGET.reset(token)
        budget = None if self.budget_tokens is None else self.budget_tokens // 2
        return select(found, query, budget, self.count, self.options, max_documents=k)

    async def schedule_summary(
        self, conversation: ConversationKey, last_seq: int | None = None
    ) -> None:
        """Enqueue the summary job when a window may be complete, unless a layer is down.

        While either layer is unreachable a summary could not be stored, so no
        LLM call is spent on it; the windows wait in Redis, and the first turn
        after the layer is back (its read marks it healthy) schedules them, as
        does the idle scan (the conversation's activity is still noted while
        only the cold layer is down). A Redis error here is logged, never raised.
        """
        if self.summarizer is None or self.hot_health.down:
            return
        try:
            await self.summarizer.schedule(
                conversation, last_seq, enqueue=not self.cold_health.down
            )
        except (StoreUnavailable, RedisError, OSError) as exc:
            log.warning("could not schedule the summary of %s: %s", conversation.id, exc)

    async def clear(self, conversation: ConversationKey) -> None:
        """Forget a conversation in both layers; a summary in progress is discarded.

        Both layers are probed first: if either cannot be reached, nothing is
        changed and ``StoreUnavailable`` is raised (so "nothing was erased" is
        true). A layer failing between the probe and its own clear still
        leaves a partial clear, reported the same way.
        """
        if self.hot is not None:
            await self.hot.epoch(conversation)
        if self.cold is not None:
            await self.cold.latest(conversation.id)
        # A summary job running now (in any process) finds the epoch changed and drops its
        # document itself; it is not cancelled, so nothing is left half-written behind it.
        async with self.spool.writing(conversation):  # after any replay in progress
            self.spool.discard(conversation)
        errors: list[str] = []
        if self.hot is not None:
            try:
                await self.hot.clear(conversation)
            except StoreUnavailable as exc:
                errors.append(str(exc))
        if self.cold is not None:
            try:
                await self.cold.delete(conversation.id)
            except StoreUnavailable as exc:
                errors.append(str(exc))
        if errors:
            raise StoreUnavailable(
                "hot" if self.hot and "hot" in errors[0] else "cold", "; ".join(errors)
            )

    async def forget_speaker(self, conversation: ConversationKey, speaker_id: str) -> int:
        """Forget one member's contributions to a space: their buffered messages and every
        summary line whose provenance includes one of their messages. Returns how many
        messages and lines went.

        A summary being written meanwhile drops their lines itself before its
        window is marked done (see ``Summarizer._without_forgotten``). Raises ``StoreUnavailable`` when a layer cannot be reached; what was done
        stays done and a retry finishes the rest (authorship is kept until then).
        """
        if self.hot is None:
            raise StoreUnavailable("hot", "not configured")
        removed, seqs = await self.hot.forget_speaker(conversation, speaker_id)
        lines = 0
        if self.cold is not None and seqs:
            changed: list[Summary] = []
            gone: list[str] = []
            for summary in await self.cold.all(conversation.id):
                kept = without_sources(summary, seqs)
                if kept is summary:
                    continue
                before = len(split_lines(summary.text))
                lines += before - (len(split_lines(kept.text)) if kept else 0)
                if kept is None:
                    gone.append(summary.doc_id)
                else:
                    changed.append(kept)
            if gone:
                await self.cold.delete(conversation.id, gone)
            for summary in changed:
                await self.cold.add(summary)
        await self.hot.forget_authored(conversation, seqs)
        await self.schedule_summary(conversation)
        return removed + lines

    async def export(self, conversation: ConversationKey) -> dict[str, Any]:
        """Everything both layers hold for a conversation, JSON-ready."""
        recent: Sequence[StoredMessage] = []
        watermark = last_seq = 0
        if self.hot is not None:
            recent = await self._guard(self.hot_health, self.hot.recent(conversation, 10_000), [])
            watermark = await self._guard(self.hot_health, self.hot.watermark(conversation), 0)
            last_seq = await self._guard(self.hot_health, self.hot.last_seq(conversation), 0)
        summaries: list[Summary] = []
        if self.cold is not None:
            summaries = await self._guard(self.cold_health, self.cold.all(conversation.id), [])
        return {
            "conversation": conversation.id,
            "platform": conversation.platform,
            "user_id": conversation.user_id,
            "character": conversation.character_id,
            "last_seq": last_seq,
            "summarized_through": watermark,
            "recent": [m.to_dict() for m in recent],
            "summaries": [summary_to_dict(s) for s in summaries],
            "unavailable": [h.layer for h in (self.hot_health, self.cold_health) if h.down],
        }

    def start_format_upgrade(self, client: Any, prefix: str) -> None:
        """Upgrade stored records to the current format in the background (once per deployment).

        ``format_upgrade`` is the task; see :mod:`honeychat.core.memory.migration`.
        """
        from honeychat.core.memory.migration import upgrade_in_background

        self.format_upgrade = asyncio.create_task(
            upgrade_in_background(self.hot, self.cold, client, prefix=prefix),
            name="memory format upgrade",
        )

    async def close(self) -> None:
        """Write spooled messages if the hot layer is back, then close both layers (pending
        summaries are jobs in Redis: they wait for a worker). Messages still spooled then are
        lost (logged with their count)."""
        if self.format_upgrade is not None and not self.format_upgrade.done():
            self.format_upgrade.cancel()  # safe at any point: the next start goes on
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.format_upgrade
        if self._replayer is not None:
            self._replayer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replayer
        if len(self.spool):
            try:
                await asyncio.wait_for(self.replay_spool(), SPOOL_DRAIN_SECONDS)
            except TimeoutError:
                pass
            if len(self.spool):
                log.error(
                    "hot memory still unreachable at shutdown: %d spooled messages are lost",
                    len(self.spool),
                )
        for store in (self.hot, self.cold):
            if store is not None:
                try:
                    await store.close()
                except Exception:
                    log.debug("closing a memory store failed", exc_info=True)


def summary_to_dict(summary: Summary) -> dict[str, Any]:
    """A summary as JSON-ready data."""
    return {"id": summary.doc_id, **summary.to_dict(), "score": summary.score}


async def _const(value: Any) -> Any:
    return value
