"""One conversation's turns run one at a time and in message order, across processes.

Several honeychat processes may share one Redis and receive messages of the
same user (a webhook behind a load balancer, Discord shards, replicas). Two
Redis primitives make ordering hold between them:

* **A queue of waiting messages per conversation** (a sorted set): every
  message that will become a turn is put in it when it arrives, ordered by the
  platform's own order (the time the platform stamped on it, then its message
  id). A turn may start only when no live message is ahead of it, whichever
  process received it. Each process keeps a heartbeat key alive; the entries
  of a process whose heartbeat expired (crashed, stopped) are dropped.
* **A lease per conversation**: redis-py's :class:`redis.asyncio.lock.Lock`,
  taken before the turn starts, with a TTL of ``CONVERSATION_LEASE_SECONDS``
  (longer than a turn may last), extended while the turn runs. Before every
  write the core confirms it still holds the lease (:meth:`ConversationOrder.confirm`):
  a process that was frozen past its lease (SIGSTOP, a long GC pause) finds
  another process took over and abandons its turn instead of interleaving.

While Redis is unreachable, ordering falls back to a process-local lock per
conversation: one process still answers a conversation's turns one at a
time, but two processes may interleave. The fallback is logged once per
outage.

The key is the typed :class:`~honeychat.core.types.ConversationKey`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from honeychat.core.keyed_lock import KeyedLock
from honeychat.core.types import ConversationKey, IncomingMessage

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 3.0
"""How often a process refreshes its heartbeat key."""
HEARTBEAT_TTL_SECONDS = 10.0
"""After this long without a heartbeat, a process's waiting messages no longer hold others back."""
POLL_SECONDS = 0.02
"""How often a waiting turn checks whether it may start."""
REGISTRATION_WAIT_SECONDS = 5.0
"""How long a message waits for the one that arrived before it in this process to queue."""

_STORE_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
_MAX_LEFTOVERS = 10_000

# KEYS[1] the conversation's queue. ARGV: 1 this message's entry, 2 this process's id,
# 3 the heartbeat key prefix, 4 the queue's TTL in ms.
# Adds the entry (idempotent) and returns 1 when no live entry is ahead of it.
_MAY_START = """
redis.call('ZADD', KEYS[1], 0, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if rank == 0 then return 1 end
local ahead = redis.call('ZRANGE', KEYS[1], 0, rank - 1)
local blocked = 0
for _, entry in ipairs(ahead) do
  local process = string.match(entry, '^[^|]*|[^|]*|([^|]*)|')
  if process == ARGV[2] or (process and redis.call('EXISTS', ARGV[3] .. process) == 1) then
    blocked = 1
  else
    redis.call('ZREM', KEYS[1], entry)
  end
end
return 1 - blocked
"""


class LeaseLost(RuntimeError):
    """Another process took over this conversation while this turn was running."""


@dataclass(slots=True)
class Ticket:
    """One arriving message's place in its conversation's queue."""

    entry: str
    registration: asyncio.Task[ConversationKey | None] | None = None
    conversation: ConversationKey | None = None
    lock: Lock | None = field(default=None, repr=False)


_current: contextvars.ContextVar[Ticket | None] = contextvars.ContextVar(
    "honeychat_order_ticket", default=None
)


class ConversationOrder:
    """Orders the turns of each conversation across the processes sharing the bot's Redis."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot
        self.process_id = uuid.uuid4().hex[:16]
        self._heartbeat: asyncio.Task[None] | None = None
        self._degraded = False
        self._script: Any = None
        self._local = KeyedLock()
        self._last_registration: asyncio.Task[ConversationKey | None] | None = None
        self._leftovers: dict[ConversationKey, list[Callable[[], Awaitable[Any]]]] = {}
        """Releases that failed while Redis was unreachable, retried before the next turn:
        a lease or queue entry left behind would hold the conversation's next turn back."""

    # Keys

    def _prefix(self) -> str:
        return f"{self._bot.settings.key_prefix}:order"

    def _queue_key(self, conversation: ConversationKey) -> str:
        return f"{self._prefix()}:queue:{conversation.id}"

    def _lease_key(self, conversation: ConversationKey) -> str:
        return f"{self._prefix()}:lease:{conversation.id}"

    def _heartbeat_prefix(self) -> str:
        return f"{self._prefix()}:process:"

    @property
    def lease_seconds(self) -> float:
        return self._bot.settings.conversation_lease_seconds

    # Arrival

    def arrive(self, message: IncomingMessage | None) -> Ticket | None:
        """Take a place in the queue for ``message`` (in the background); None without Redis.

        Called when the message arrives, before waiting for the process-local
        lock, so that other processes see it at once. ``None`` (a message that
        will not become a turn: a command, a message not for the bot) takes no
        place. The ticket is the current task's until the next call.
        """
        ticket = None
        if message is not None and self._bot.redis is not None:
            ticket = Ticket(_entry(message, self.process_id))
            earlier = self._last_registration
            ticket.registration = asyncio.create_task(self._register(ticket, message, earlier))
            self._last_registration = ticket.registration
        _current.set(ticket)
        return ticket

    async def _register(
        self,
        ticket: Ticket,
        message: IncomingMessage,
        earlier: asyncio.Task[ConversationKey | None] | None,
    ) -> ConversationKey | None:
        try:
            await self._ensure_heartbeat()
            conversation, _ = await self._bot.conversation_for(message)
            # Messages that arrived earlier in this process take their places first: finding
            # a conversation may await Redis (a space's character), so a later message could
            # otherwise queue ahead of an earlier one and take the lease. Bounded: each
            # registration is a few Redis calls, each within its own timeout.
            if earlier is not None and not earlier.done():
                await asyncio.wait({earlier}, timeout=REGISTRATION_WAIT_SECONDS)
            try:
                await self._may_start(conversation, ticket)
            except _STORE_ERRORS:  # the entry may still land, if Redis hung
                self._remove_later(conversation, ticket.entry)
                raise
        except _STORE_ERRORS as exc:
            self._fell_back(exc)
            return None
        ticket.conversation = conversation
        return conversation

    async def leave(self, ticket: Ticket | None) -> None:
        """Give up the ticket's place (its turn ended, or it never became a turn)."""
        if ticket is None:
            return
        if ticket.registration is not None:
            if not ticket.registration.done():
                with contextlib.suppress(asyncio.CancelledError, *_STORE_ERRORS):
                    await ticket.registration
        redis = self._bot.redis
        if ticket.conversation is None or redis is None:
            return
        try:
            await redis.zrem(self._queue_key(ticket.conversation), ticket.entry)
        except _STORE_ERRORS as exc:
            log.debug("could not leave the conversation queue: %s", exc)
            self._remove_later(ticket.conversation, ticket.entry)

    def _remove_later(self, conversation: ConversationKey, entry: str) -> None:
        redis, queue = self._bot.redis, self._queue_key(conversation)
        if redis is not None:
            self._leave_behind(conversation, lambda: redis.zrem(queue, entry))

    # The turn

    @contextlib.asynccontextmanager
    async def hold(self, conversation: ConversationKey) -> AsyncIterator[None]:
        """Wait until this message's turn may start in ``conversation``, and hold the lease.

        Uses the ticket taken by :meth:`arrive` in this task (a message that
        arrived before its user switched character takes a new place in the
        new conversation).
        """
        ticket = _current.get()
        redis = self._bot.redis
        if ticket is None or redis is None:
            yield  # the caller holds the process-local lock
            return
        try:
            if ticket.registration is not None:
                await ticket.registration
            if ticket.conversation != conversation:
                await self.leave(ticket)
                ticket.conversation = conversation
            await self._wait_for_turn(conversation, ticket)
        except _STORE_ERRORS as exc:
            self._fell_back(exc)
            ticket.lock = None
            try:
                async with self._local.hold(conversation.id):
                    yield
            finally:
                await self.leave(ticket)
            return
        self._recovered()
        keeper = asyncio.create_task(self._keep(ticket))
        try:
            yield
        finally:
            keeper.cancel()
            await self._release(ticket)

    async def confirm(self) -> None:
        """Before a write: raise :class:`LeaseLost` if another process holds this turn's lease."""
        ticket = _current.get()
        if ticket is None or ticket.lock is None:
            return
        try:
            owned = await ticket.lock.owned()
        except _STORE_ERRORS as exc:
            self._fell_back(exc)
            return
        if not owned:
            raise LeaseLost(
                f"conversation {ticket.conversation.id if ticket.conversation else '?'} was "
                "taken over by another process (this one held it past its lease); "
                "this turn is abandoned"
            )

    async def _may_start(self, conversation: ConversationKey, ticket: Ticket) -> bool:
        redis = self._bot.redis
        assert redis is not None
        if self._script is None:
            self._script = redis.register_script(_MAY_START)
        ttl_ms = int(max(self.lease_seconds * 2, 60) * 1000)
        result = await self._script(
            keys=[self._queue_key(conversation)],
            args=[ticket.entry, self.process_id, self._heartbeat_prefix(), ttl_ms],
        )
        return bool(int(result))

    async def _wait_for_turn(self, conversation: ConversationKey, ticket: Ticket) -> None:
        redis = self._bot.redis
        assert redis is not None
        lock = Lock(
            redis,
            self._lease_key(conversation),
            timeout=self.lease_seconds,
            sleep=POLL_SECONDS,
            thread_local=False,
        )
        await self._clean_up(conversation)
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.lease_seconds
        while True:
            if await self._may_start(conversation, ticket) and await self._acquire(
                conversation, lock
            ):
                ticket.lock = lock
                return
            if loop.time() > give_up_at:
                log.warning(
                    "conversation %s: waited %.0f s for earlier turns on other processes; "
                    "going ahead without the lease",
                    conversation.id,
                    self.lease_seconds,
                )
                return
            await asyncio.sleep(POLL_SECONDS)

    async def _acquire(self, conversation: ConversationKey, lock: Lock) -> bool:
        # A hung Redis may still run a SET that timed out here once it resumes: then a
        # lease nobody holds would keep the conversation's next turns waiting for its TTL.
        token = uuid.uuid4().hex.encode()
        try:
            return bool(await lock.acquire(blocking=False, token=token))
        except _STORE_ERRORS:
            self._leave_behind(conversation, lambda: lock.do_release(token))
            raise

    async def _keep(self, ticket: Ticket) -> None:
        """Extend the lease while the turn runs (every third of its length)."""
        lock = ticket.lock
        if lock is None:
            return
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await lock.extend(self.lease_seconds, replace_ttl=True)
            except LockError:
                log.error("conversation lease lost while its turn was running")
                return
            except _STORE_ERRORS as exc:
                log.debug("could not extend the conversation lease: %s", exc)

    async def _release(self, ticket: Ticket) -> None:
        lock, ticket.lock = ticket.lock, None
        if lock is not None:
            try:
                await lock.release()
            except LockError:
                log.warning("the conversation lease had already expired when its turn ended")
            except _STORE_ERRORS as exc:
                log.debug("could not release the conversation lease: %s", exc)
                if ticket.conversation is not None:
                    self._leave_behind(ticket.conversation, lock.release)
        await self.leave(ticket)

    def _leave_behind(
        self, conversation: ConversationKey, release: Callable[[], Awaitable[Any]]
    ) -> None:
        if len(self._leftovers) >= _MAX_LEFTOVERS:  # leases and queues expire by themselves
            del self._leftovers[next(iter(self._leftovers))]
        self._leftovers.setdefault(conversation, []).append(release)

    async def _clean_up(self, conversation: ConversationKey) -> None:
        """Retry this process's failed releases of ``conversation`` (Redis is back)."""
        pending = self._leftovers.pop(conversation, [])
        for index, release in enumerate(pending):
            try:
                await release()
            except LockError:
                pass  # the lease expired meanwhile: nothing to release
            except _STORE_ERRORS:
                self._leftovers.setdefault(conversation, []).extend(pending[index:])
                raise

    # Liveness

    async def _ensure_heartbeat(self) -> None:
        """Beat once (so no process takes our entries for dead ones), then keep beating."""
        if self._heartbeat is not None and not self._heartbeat.done():
            return
        await self._beat_once()
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._beat(), name="honeychat-order-heartbeat")

    async def _beat_once(self) -> None:
        redis = self._bot.redis
        if redis is not None:
            key = self._heartbeat_prefix() + self.process_id
            await redis.set(key, "1", px=int(HEARTBEAT_TTL_SECONDS * 1000))

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self._beat_once()
            except _STORE_ERRORS as exc:
                log.debug("ordering heartbeat failed: %s", exc)

    async def close(self) -> None:
        """Stop the heartbeat and drop it, so other processes need not wait for it to expire."""
        if self._heartbeat is None:
            return
        self._heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._heartbeat
        self._heartbeat = None
        if self._bot.redis is not None:
            with contextlib.suppress(*_STORE_ERRORS):
                await self._bot.redis.delete(self._heartbeat_prefix() + self.process_id)

    def _fell_back(self, exc: BaseException) -> None:
        if not self._degraded:
            self._degraded = True
            log.warning(
                "Redis unavailable for conversation ordering (%s); ordering is per process "
                "until it is back",
                exc,
            )

    def _recovered(self) -> None:
        if self._degraded:
            self._degraded = False
            log.warning("Redis is back: conversation ordering holds across processes again")


def _entry(message: IncomingMessage, process_id: str) -> str:
    """The message's queue entry: platform time, message id, process, a unique token.

    Entries sort by byte order (all scores are 0), so both numbers are zero-padded.
    """
    sent_us = int(message.sent_at.timestamp() * 1_000_000)
    message_id = (message.message_id or "").replace("|", "_")
    if message_id.isdigit():
        message_id = message_id.zfill(24)
    return f"{sent_us:017d}|{message_id}|{process_id}|{uuid.uuid4().hex[:12]}"
