"""Durable background jobs on Redis: run now or at a given time, once, across processes.

Work that must outlive the process that asked for it (a window's summary; later,
reminders and scheduled messages) is a *job* kept in Redis. Any process running a
worker (``honeychat run``, ``chat``, ``serve`` and ``worker``) may run it::

    bot.jobs.register("remind", remind)          # in honeychat_startup
    await bot.jobs.enqueue("remind", {"user": "42"}, key="42:tea", at=when)

    async def remind(job: JobContext, payload: dict[str, Any]) -> None: ...

The queue is `saq <https://github.com/tobymao/saq>`_'s Redis queue and worker
(docs/architecture.md says why). On top of it this module adds:

* **Keys.** While a job with a key waits, enqueueing the key again does nothing;
  while it runs, it runs once more afterwards (so no trigger is lost).
* **A claim per key.** A running job holds a Redis lock named after its key and
  renews it with its heartbeat, every ``heartbeat_seconds / 3``; a second delivery
  of the same key (saq's sweeper may deliver twice) waits until the claim is free.
  Two workers never run one key at once.
* **Crash recovery.** A job whose worker died stops beating; the next sweep (every
  ``sweep_seconds``, by any worker) hands it to another worker. Bound:
  ``heartbeat_seconds + sweep_seconds + ABORT_WAIT`` plus one poll.
* **Delays.** A job enqueued for later is due within :data:`SCHEDULE_SECONDS`
  of its time.
* **Deadlines.** Every blocking read waits at most ``poll_seconds`` (below the
  Redis client's socket timeout, whose expiry trips the circuit of
  :mod:`honeychat.core.memory.redis_circuit`); saq's pub/sub wait is replaced by
  polling with a deadline; a job runs at most its ``timeout``.
* **Retries.** A handler raises :class:`RetryLater` to run again later (not a
  failure); any other exception is retried ``retries`` times with exponential
  backoff, then logged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis
import redis.asyncio
from redis.asyncio.lock import Lock
from redis.exceptions import LockError
from saq import CronJob, Job, Queue, Status, Worker
from saq.job import ABORT_ID_PREFIX
from saq.queue.redis import RedisQueue
from saq.types import ListenCallback, PartialTimersDict
from saq.utils import now

log = logging.getLogger(__name__)

ABORT_WAIT = 1.0
"""Seconds a sweep waits for the worker of a stuck job to answer before handing it on."""

SCHEDULE_SECONDS = 0.25
"""Delayed jobs and retries are due within about this long (or ``poll_seconds`` if shorter)."""

FINISHED_TTL = -1
"""A finished job's record is deleted at once (saq: -1): its key names a conversation, so a
kept record would outlive an erasure of that user."""


class RetryLater(Exception):
    """Raised by a handler: run this job again in ``seconds`` (not counted as a failure)."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        self.seconds = max(0.0, float(seconds))
        super().__init__(reason or f"run again in {self.seconds:g} s")


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler knows about the run it is in."""

    name: str
    key: str
    attempts: int
    """Runs of this job so far, this one included (a :class:`RetryLater` counts)."""


Handler = Callable[[JobContext, dict[str, Any]], Awaitable[None]]
"""A job's work: ``await handler(context, payload)``; ``payload`` is the enqueued JSON object."""


@dataclass(frozen=True, slots=True)
class _Kind:
    handler: Handler
    timeout: float
    retries: int
    retry_seconds: float
    every: float | None = None


@dataclass(frozen=True, slots=True)
class JobCounts:
    """Jobs in Redis right now."""

    queued: int
    """Due and waiting for a worker."""
    active: int
    """Running (or held by a worker that died, until the next sweep)."""
    scheduled: int
    """Waiting for their time (delayed jobs and retries)."""


class _DropRetryLater(logging.Filter):
    """saq logs every exception of a job with its traceback; a RetryLater is not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], RetryLater))


logging.getLogger("saq").addFilter(_DropRetryLater())

# Moves due jobs to the queue; as saq's own schedule script, with a lock in milliseconds so that
# delayed jobs and retries are due within ``poll_seconds`` rather than a whole second.
_SCHEDULE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], 1, 'PX', ARGV[1])
  local jobs = redis.call('ZRANGEBYSCORE', KEYS[2], 1, ARGV[2])
  for _, v in ipairs(jobs) do
    redis.call('ZADD', KEYS[2], 0, v)
    redis.call('RPUSH', KEYS[3], v)
  end
  return jobs
end
return {}
"""


class _Queue(RedisQueue):
    """saq's Redis queue with every wait bounded and dequeues that stop can interrupt."""

    def __init__(
        self, client: redis.asyncio.Redis, name: str, poll_seconds: float, stranded_after: float
    ) -> None:
        super().__init__(client, name=name)
        self.poll_seconds = poll_seconds
        self.stranded_after = stranded_after
        self.waiting: set[asyncio.Task[Any]] = set()
        self._move_due = client.register_script(_SCHEDULE)

    async def schedule(self, lock: int = 1) -> list[str]:
        moved = await self._move_due(
            keys=[
                self.namespace("schedule"),
                self.namespace("incomplete"),
                self.namespace("queued"),
            ],
            args=[max(1, round(min(self.poll_seconds, SCHEDULE_SECONDS) * 1000)), time.time()],
        )
        return [m.decode() if isinstance(m, bytes) else str(m) for m in moved or []]

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        # saq's sweep takes every job in the active list whose status is not "active" for
        # stuck, including one a worker has just dequeued and not marked active yet (saq
        # issue #277): it would be run twice. Sweep only when some job is stuck for real.
        if not await self._anything_stuck():
            return []
        return await super().sweep(lock, abort=ABORT_WAIT)

    async def _anything_stuck(self) -> bool:
        ids = await self.redis.lrange(self.namespace("active"), 0, -1)
        if not ids:
            return False
        for raw in await self.redis.mget(ids):
            job = self.deserialize(raw)
            if job is None:
                return True  # its record is gone: saq's sweep drops the entry
            if job.status is Status.QUEUED:
                # Dequeued by a worker that died (or was stopped) before marking it active.
                last = max(job.touched, job.queued, round(job.scheduled * 1000))
                if now() - last > self.stranded_after * 1000:
                    return True
            elif job.status not in (Status.ACTIVE, Status.ABORTING) or job.stuck:
                return True
        return False

    async def listen(
        self,
        job_keys: Iterable[str],
        callback: ListenCallback,
        timeout: float | None = 10,
        poll_interval: float = 0.5,
    ) -> None:
        # saq's Redis queue subscribes and blocks without a deadline; poll instead, bounded.
        await Queue.listen(self, job_keys, callback, timeout or ABORT_WAIT, poll_interval=0.1)

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        task = asyncio.current_task()
        if task is not None:
            self.waiting.add(task)
        try:
            return await super().dequeue(self.poll_seconds, poll_interval)
        finally:
            if task is not None:
                self.waiting.discard(task)


class _Worker(Worker):
    SIGNALS: list[signal.Signals] = []  # the command's own handlers stop it (core/shutdown.py)


def _cron(seconds: float) -> str:
    """A cron expression (seconds field last) firing about every ``seconds``."""
    whole = max(1, round(seconds))
    if whole < 60:
        return f"* * * * * */{whole}"
    minutes = max(1, round(whole / 60))
    return f"*/{minutes} * * * *" if minutes < 60 else "0 * * * *"


class Jobs:
    """The job queue of one deployment (one ``KEY_PREFIX``) on one Redis server.

    ``client`` is the process's Redis client; the queue opens its own connection pool to the same
    server (saq reads bytes). Handlers are registered before :meth:`start_worker`; any process may
    :meth:`enqueue` a registered job.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str,
        heartbeat_seconds: float = 10.0,
        sweep_seconds: int = 5,
        poll_seconds: float = 1.0,
    ) -> None:
        if heartbeat_seconds <= 0 or sweep_seconds < 1 or poll_seconds <= 0:
            raise ValueError("heartbeat and poll must be positive, sweep at least 1 s")
        pool = client.connection_pool
        own_pool = redis.asyncio.ConnectionPool(
            connection_class=pool.connection_class,
            **{**pool.connection_kwargs, "decode_responses": False},
        )
        self.client: redis.asyncio.Redis = redis.asyncio.Redis.from_pool(own_pool)
        self.prefix = prefix
        self.heartbeat_seconds = heartbeat_seconds
        self.sweep_seconds = sweep_seconds
        self.poll_seconds = poll_seconds
        self.queue = _Queue(self.client, f"{prefix}:jobs", poll_seconds, heartbeat_seconds)
        self._kinds: dict[str, _Kind] = {}
        self._worker: _Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None

    @property
    def schedule_seconds(self) -> float:
        """How often due jobs (delayed ones, retries) are moved to the queue."""
        return min(self.poll_seconds, SCHEDULE_SECONDS)

    @property
    def recovery_seconds(self) -> float:
        """The longest a job of a worker that died waits before another worker runs it."""
        return self.heartbeat_seconds + self.sweep_seconds + ABORT_WAIT + 2 * self.poll_seconds

    # Registering and enqueueing

    def register(
        self,
        name: str,
        handler: Handler,
        *,
        timeout: float = 600.0,
        retries: int = 3,
        retry_seconds: float = 10.0,
    ) -> None:
        """Make ``name`` runnable: ``handler`` runs each job of that name, for at most ``timeout``
        seconds. An exception other than :class:`RetryLater` is retried ``retries`` times, after
        ``retry_seconds`` and then twice as long each time."""
        if name in self._kinds:
            raise ValueError(f"job '{name}' is registered twice")
        self._kinds[name] = _Kind(handler, timeout, max(1, retries), retry_seconds)

    def every(self, name: str, seconds: float, handler: Handler, *, timeout: float = 60.0) -> None:
        """Run ``handler`` about every ``seconds`` (whole seconds, at least 1), in one worker at a
        time across all processes."""
        self._kinds[name] = _Kind(handler, timeout, 1, seconds, every=seconds)

    def _key(self, name: str, key: str | None) -> str:
        return f"{self.prefix}:{name}:{key if key is not None else uuid.uuid4().hex}"

    async def enqueue(
        self,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        at: float | None = None,
        delay: float | None = None,
    ) -> bool:
        """Add a job: due now, at unix time ``at``, or in ``delay`` seconds.

        With a ``key``: while a job with that key waits, nothing changes (it keeps its time and
        payload; returns ``False``); while it runs, it runs once more after it finishes, with its
        payload (returns ``True``). Raises ``redis.RedisError`` or ``OSError`` when Redis cannot
        be reached.
        """
        kind = self._kinds.get(name)
        if kind is None:
            raise KeyError(f"no job '{name}' is registered")
        full_key = self._key(name, key)
        scheduled = at if at is not None else (time.time() + delay if delay else 0)
        if await self._enqueue(name, kind, full_key, payload or {}, scheduled):
            return True
        if key is not None and await self._rerun_after(
            name, kind, full_key, payload or {}, scheduled
        ):
            return True
        return False

    async def _enqueue(
        self, name: str, kind: _Kind, key: str, payload: dict[str, Any], scheduled: float
    ) -> bool:
        job = await self.queue.enqueue(
            name,
            key=key,
            kwargs={"payload": payload},
            scheduled=scheduled,
            timeout=math.ceil(kind.timeout),
            heartbeat=self.heartbeat_seconds,
            retries=1,  # each run sets what a failure or a crash gets: see _runner
            ttl=FINISHED_TTL,
        )
        return job is not None

    async def _rerun_after(
        self, name: str, kind: _Kind, key: str, payload: dict[str, Any], scheduled: float
    ) -> bool:
        """``key`` was refused: if its job runs, flag it to run once more after it finishes.

        The flag is checked after the job has finished (:meth:`_after`); enqueueing once more
        after setting it covers a job that finished in between, so no trigger is lost.
        """
        job = await self.queue.job(key)
        if job is not None and job.status is Status.ABORTING:
            return True  # a sweep is handing it to another worker: it runs again
        if job is not None and job.status is Status.ACTIVE:
            await self.client.set(self._again_key(key), 1, ex=max(60, math.ceil(kind.timeout) * 2))
            await self._enqueue(name, kind, key, payload, 0)
            return True
        if await self.client.zscore(self.queue.namespace("incomplete"), self.queue.job_id(key)):
            return False  # it waits
        # Refused though nothing waits or runs: saq keeps the abort marker of a swept job for
        # a few seconds and refuses its key meanwhile. That job is over; drop the marker.
        await self.client.delete(f"{ABORT_ID_PREFIX}{key}")
        return await self._enqueue(name, kind, key, payload, scheduled)

    def _again_key(self, key: str) -> str:
        return f"{self.prefix}:jobs:again:{key}"

    def _claim_key(self, key: str) -> str:
        return f"{self.prefix}:jobs:claim:{key}"

    # Reading the queue

    async def counts(self) -> JobCounts:
        """How many jobs are queued, running and scheduled for later."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.llen(self.queue.namespace("queued"))
            pipe.llen(self.queue.namespace("active"))
            pipe.zcard(self.queue.namespace("incomplete"))
            queued, active, incomplete = await pipe.execute()
        return JobCounts(int(queued), int(active), max(0, int(incomplete) - queued - active))

    async def due(self) -> int:
        """Jobs due by now that have not finished: queued, running, or due and not moved yet."""
        return int(
            await self.client.zcount(self.queue.namespace("incomplete"), "-inf", time.time())
        )

    async def wait_idle(self, timeout: float) -> None:
        """Wait until no job is due or running (jobs scheduled for later are not waited for).

        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while await self.due():
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs still due or running after {timeout:g}s")
            await asyncio.sleep(0.02)

    # The worker

    @property
    def worker_running(self) -> bool:
        return self._worker_task is not None and not self._worker_task.done()

    async def start_worker(self, *, concurrency: int = 4, grace_seconds: float = 1.0) -> None:
        """Run jobs in this process (in the background) until :meth:`stop_worker`."""
        if self.worker_running:
            return
        functions: list[tuple[str, Callable[..., Awaitable[Any]]]] = []
        cron_jobs: list[CronJob[Any]] = []
        for name, kind in self._kinds.items():
            functions.append((name, self._runner(name, kind)))  # enqueue(name) runs it now
            if kind.every is None:
                continue
            run = self._runner(name, kind)
            # saq names a periodic job after its function and keys it "cron:<name>".
            run.__qualname__ = f"{self.prefix}:{name}"
            cron_jobs.append(
                CronJob(
                    run,
                    cron=_cron(kind.every),
                    timeout=math.ceil(kind.timeout),
                    heartbeat=math.ceil(self.heartbeat_seconds),
                    ttl=FINISHED_TTL,
                )
            )
        self._worker = _Worker(
            self.queue,
            functions,
            cron_jobs=cron_jobs,
            concurrency=concurrency,
            # saq types its timers as whole seconds; its poll loop sleeps any float.
            timers=cast(
                PartialTimersDict,
                {"schedule": self.schedule_seconds, "sweep": self.sweep_seconds, "abort": 1},
            ),
            dequeue_timeout=self.poll_seconds,
            shutdown_grace_period_s=max(1, math.ceil(grace_seconds)),
            after_process=self._after,
        )
        await self.queue.connect()
        self._worker_task = asyncio.create_task(self._worker.start(), name="honeychat jobs worker")

    async def stop_worker(self, *, drain_seconds: float = 0.0) -> None:
        """Stop taking jobs, after up to ``drain_seconds`` spent running the jobs due now (in
        any process); a job still running then gets one more second, then goes back to the
        queue for another worker."""
        if drain_seconds > 0 and self.worker_running:
            try:
                await self.wait_idle(drain_seconds)
            except (TimeoutError, redis.RedisError, OSError) as exc:
                log.warning("stopping with jobs pending (they wait in Redis): %s", exc)
        worker, task = self._worker, self._worker_task
        self._worker = self._worker_task = None
        if worker is None or task is None:
            return
        worker.event.set()
        for waiting in list(self.queue.waiting):
            waiting.cancel()  # idle dequeues: a job they were about to take is swept back
        for upkeep in list(worker.tasks):
            if upkeep.get_name() != "process":
                upkeep.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await worker.stop()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 2.0)

    async def close(self) -> None:
        """Stop the worker and close the queue's connections."""
        await self.stop_worker()
        with contextlib.suppress(redis.RedisError, OSError):
            await self.client.aclose()

    # Running one job

    def _runner(self, name: str, kind: _Kind) -> Callable[..., Awaitable[None]]:
        async def run(ctx: dict[str, Any], *, payload: dict[str, Any] | None = None) -> None:
            job: Job = ctx["job"]
            # A worker that dies is never the job's last attempt, and its job is retried at once.
            job.retries, job.retry_delay, job.retry_backoff = job.attempts + 1, 0.0, False
            claim = Lock(
                self.client,
                self._claim_key(job.key),
                timeout=self.heartbeat_seconds,
                thread_local=False,
            )
            if not await claim.acquire(blocking=False):
                raise self._later(job, self.heartbeat_seconds, "claimed by another worker")
            work = asyncio.current_task()
            lost = asyncio.Event()
            beat = asyncio.create_task(self._beat(job, claim, work, lost))
            try:
                await job.update()  # the first heartbeat, and the retries above kept
                await kind.handler(JobContext(name, job.key, job.attempts), payload or {})
            except RetryLater as exc:
                raise self._later(job, exc.seconds, str(exc)) from None
            except asyncio.CancelledError:
                if lost.is_set():  # another worker holds the claim now: let it finish
                    raise self._later(job, self.heartbeat_seconds, "claim lost") from None
                raise
            except Exception:
                self._failed(job, kind)
                raise
            finally:
                beat.cancel()
                with contextlib.suppress(LockError, redis.RedisError, OSError):
                    await claim.release()

        return run

    def _later(self, job: Job, seconds: float, reason: str) -> RetryLater:
        """Make saq's retry of ``job`` happen in ``seconds``, not counted as a failure."""
        job.retry_delay, job.retry_backoff = seconds, False
        job.meta.pop("failures", None)
        return RetryLater(seconds, reason)

    def _failed(self, job: Job, kind: _Kind) -> None:
        """Count a failure: retried after a doubling delay, or given up after ``retries``."""
        failures = int(job.meta.get("failures", 0)) + 1
        job.meta["failures"] = failures
        if failures > kind.retries:
            job.retries = job.attempts  # saq marks it failed
            return
        delay = kind.retry_seconds * 2 ** (failures - 1)
        job.retry_delay, job.retry_backoff = min(delay, 900.0), False

    async def _beat(
        self, job: Job, claim: Lock, work: asyncio.Task[Any] | None, lost: asyncio.Event
    ) -> None:
        """Renew the job's heartbeat and claim while it runs; cancel it if the claim is lost."""
        while True:
            await asyncio.sleep(self.heartbeat_seconds / 3)
            try:
                await claim.extend(self.heartbeat_seconds, replace_ttl=True)
                await job.update()
            except LockError:
                log.error("job %s lost its claim (this worker stalled?); stopping it", job.key)
                lost.set()
                if work is not None:
                    work.cancel()
                return
            except (redis.RedisError, OSError) as exc:
                log.warning("could not renew job %s: %s", job.key, exc)

    async def _after(self, ctx: dict[str, Any]) -> None:
        job: Job | None = ctx.get("job")
        if job is None or job.status not in (Status.COMPLETE, Status.FAILED):
            return
        try:
            again = await self.client.getdel(self._again_key(job.key))
            if again is None:
                return
            kind = self._kinds.get(job.function)
            if kind is not None:
                payload = (job.kwargs or {}).get("payload") or {}
                await self._enqueue(job.function, kind, job.key, payload, 0)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not run job %s again: %s", job.key, exc)
