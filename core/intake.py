"""Accepted platform events, recorded in Redis before the platform is acknowledged.

Webhook platforms (Telegram in webhook mode, Slack's Events API over HTTP
or Socket Mode) do not redeliver an event once it was acknowledged. An
adapter therefore hands every accepted event to :meth:`EventIntake.submit`
*before* acknowledging it: the event is appended to a Redis Stream
(``<prefix>:intake:<platform>``) and handled by whichever process sharing
that Redis reads it first, through a consumer group. The entry is removed
once handled. If the process handling it dies mid-turn, the entry stays
pending; after ``CONVERSATION_LEASE_SECONDS`` (longer than a turn may last)
any process, or the same one after a restart, claims it (``XAUTOCLAIM``) and
handles it again. Delivery is at least once: a crash after the reply was sent
but before the entry was removed answers that event twice.

While Redis is unreachable, events are handled in the receiving process
directly (a crash then loses them), and this is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError, ResponseError

from honeychat.core.inflight import InflightTasks

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

log = logging.getLogger(__name__)

GROUP = "handlers"
READ_BLOCK_MS = 500
RECLAIM_EVERY_SECONDS = 5.0
MAX_LENGTH = 100_000
STOP_WAIT_SECONDS = 2.0
"""Approximate cap on a stream's length (handled entries are deleted; this bounds a backlog)."""

_STORE_ERRORS = (RedisError, OSError, asyncio.TimeoutError)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class EventIntake:
    """One platform's accepted events: recorded, then handled once by some process."""

    def __init__(self, bot: Bot, platform: str, handle: Handler, inflight: InflightTasks) -> None:
        self.bot = bot
        self.platform = platform
        self._handle = handle
        self._inflight = inflight
        self._consumer = bot.ordering.process_id
        self._reader: asyncio.Task[None] | None = None
        self._stopping = False
        self._group_ready = False

    @property
    def stream(self) -> str:
        return f"{self.bot.settings.key_prefix}:intake:{self.platform}"

    @property
    def reclaim_after_ms(self) -> int:
        return int(self.bot.settings.conversation_lease_seconds * 1000)

    async def start(self) -> None:
        """Start reading (and reclaiming abandoned events) in the background."""
        if self.bot.redis is not None and self._reader is None:
            self._reader = asyncio.create_task(self._read(), name=f"{self.platform}-intake")

    async def stop(self) -> None:
        """Stop reading new events; events being handled are the adapter's to drain."""
        if self._reader is not None:
            # The flag, not only the cancellation: on Python 3.11 a cancellation that meets
            # redis-py's read timeout can surface as a timeout error, which the loop retries.
            self._stopping = True
            self._reader.cancel()
            done, _ = await asyncio.wait({self._reader}, timeout=STOP_WAIT_SECONDS)
            if not done:
                log.warning(
                    "%s intake: the reader did not stop in time; left behind", self.platform
                )
            self._reader = None

    async def submit(self, payload: dict[str, Any]) -> None:
        """Record ``payload`` so that it is handled even if this process dies; call before the ack.

        Without Redis, the event is handled here, in the background.
        """
        redis = self.bot.redis
        if redis is not None and self._reader is not None:
            try:
                await self._ensure_group()
                await redis.xadd(
                    self.stream,
                    {"event": json.dumps(payload)},
                    maxlen=MAX_LENGTH,
                    approximate=True,
                )
                return
            except _STORE_ERRORS as exc:
                log.warning(
                    "%s: could not record an accepted event (%s); handling it in this process only",
                    self.platform,
                    exc,
                )
        self._inflight.spawn(self._run(None, payload))

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        redis = self.bot.redis
        assert redis is not None
        try:
            await redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        next_reclaim = 0.0
        while not self._stopping:
            redis = self.bot.redis
            try:
                if redis is None:
                    raise ConnectionError("no Redis connection")
                await self._ensure_group()
                if loop.time() >= next_reclaim:
                    next_reclaim = loop.time() + min(
                        RECLAIM_EVERY_SECONDS, self.reclaim_after_ms / 2000
                    )
                    claimed: Any = await redis.xautoclaim(
                        self.stream,
                        GROUP,
                        self._consumer,
                        min_idle_time=self.reclaim_after_ms,
                        start_id="0-0",
                        count=32,
                    )
                    for entry_id, fields in claimed[1]:
                        log.warning(
                            "%s: event %s was left unfinished by another process; handling it",
                            self.platform,
                            entry_id,
                        )
                        self._spawn_entry(entry_id, fields)
                found: Any = await redis.xreadgroup(
                    GROUP, self._consumer, {self.stream: ">"}, count=32, block=READ_BLOCK_MS
                )
                for _stream, entries in found or []:
                    for entry_id, fields in entries:
                        self._spawn_entry(entry_id, fields)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    return
                self._group_ready = False
                log.debug("%s intake: reading failed (%s); retrying", self.platform, exc)
                await asyncio.sleep(1.0)

    def _spawn_entry(self, entry_id: Any, fields: dict[Any, Any] | None) -> None:
        raw = (fields or {}).get("event") or (fields or {}).get(b"event")
        try:
            payload = json.loads(raw) if raw is not None else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            log.error("%s intake: entry %s is not an event; dropped", self.platform, entry_id)
            self._inflight.spawn(self._done(entry_id))
            return
        self._inflight.spawn(self._run(entry_id, payload))

    async def _run(self, entry_id: Any, payload: dict[str, Any]) -> None:
        try:
            await self._handle(payload)
        except Exception:
            log.exception("%s: an accepted event could not be handled", self.platform)
        if entry_id is not None:
            await self._done(entry_id)

    async def _done(self, entry_id: Any) -> None:
        redis = self.bot.redis
        if redis is None:
            return
        try:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.stream, GROUP, entry_id)
                pipe.xdel(self.stream, entry_id)
                await pipe.execute()
        except _STORE_ERRORS as exc:
            log.warning(
                "%s intake: could not mark event %s handled: %s", self.platform, entry_id, exc
            )
