"""Deadlines for blocking store calls: a bounded thread pool and a circuit per layer.

A store that hangs (a partitioned server, a SIGSTOPped process) never answers
and never refuses. Each blocking call therefore runs in a :class:`LayerGate`:

* at most ``max_threads`` calls of the layer run at once, so threads
  blocked on a hung store cannot pile up without bound; a call waits for a
  free thread only within its own deadline (waiting coroutines are cheap);
* every call has a deadline; past it the caller gets :class:`GateTimeout`
  (its thread finishes, or stays blocked, on its own: it still counts
  against ``max_threads`` until it returns);
* after a timeout the circuit opens: for ``cooldown`` seconds every call
  fails at once, then calls go through again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")


class GateClosed(Exception):
    """The layer is marked down (circuit open or every thread busy): the call was not made."""


class GateTimeout(TimeoutError):
    """The call did not finish within its deadline."""


class LayerGate:
    """Bounded, deadline-limited execution of one layer's blocking calls."""

    def __init__(
        self,
        name: str,
        *,
        max_threads: int = 4,
        timeout: float = 5.0,
        cooldown: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.max_threads = max_threads
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._circuit = Circuit(cooldown, clock)
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    @property
    def in_flight(self) -> int:
        """Calls whose thread has not returned yet (including ones past their deadline)."""
        return self._in_flight

    @property
    def is_open(self) -> bool:
        """Whether the circuit is open (the layer is treated as down without trying)."""
        return not self._circuit.allows()

    def _semaphore(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(max(0, self.max_threads - self._in_flight)))
        return self._slots[1]

    def _finished(self, loop: asyncio.AbstractEventLoop, slots: asyncio.Semaphore) -> None:
        with self._lock:
            self._in_flight -= 1
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(slots.release)

    async def run(self, fn: Callable[[], _T], *, timeout: float | None = None) -> _T:
        """Run ``fn`` in one of the layer's threads, within ``timeout`` (default: the gate's).

        Waiting for a free thread counts against the deadline. Raises
        :class:`GateClosed` without calling ``fn`` when the layer is marked
        down or no thread frees up in time, :class:`GateTimeout` when ``fn``
        does not return in time, and whatever ``fn`` raises otherwise.
        """
        seconds = self.timeout if timeout is None else timeout
        if not self._circuit.allows():
            raise GateClosed(f"{self.name} timed out a moment ago; not trying again yet")
        loop = asyncio.get_running_loop()
        slots = self._semaphore(loop)
        started = loop.time()
        try:
            await asyncio.wait_for(slots.acquire(), seconds)
        except TimeoutError:
            raise GateClosed(
                f"{self.name}: all {self.max_threads} threads are waiting on the store"
            ) from None
        with self._lock:
            self._in_flight += 1
        try:
            future = self._executor.submit(fn)
        except BaseException:
            self._finished(loop, slots)
            raise
        future.add_done_callback(lambda _: self._finished(loop, slots))
        try:
            return await asyncio.wait_for(
                asyncio.wrap_future(future), max(0.0, seconds - (loop.time() - started))
            )
        except TimeoutError as exc:
            self._circuit.trip()
            raise GateTimeout(f"{self.name} did not answer within {seconds:g}s") from exc

    def shutdown(self) -> None:
        """Stop accepting calls; threads still blocked on a hung store are left to finish."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class Circuit:
    """Marks a layer down for ``cooldown`` seconds after it timed out, so turns skip it at once.

    While open, :meth:`allows` is false; afterwards calls go through again
    (the first that times out opens it again).
    """

    def __init__(self, cooldown: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = cooldown
        self._clock = clock
        self._open_until = 0.0

    def allows(self) -> bool:
        """Whether a call may be made now."""
        return self._clock() >= self._open_until

    def trip(self) -> None:
        """Open the circuit for ``cooldown`` seconds from now."""
        self._open_until = self._clock() + self.cooldown


class Budget:
    """A shared deadline: several awaits together may take at most ``seconds``."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.deadline = clock() + seconds

    def left(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.deadline - self._clock())


def caused_by_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception it was raised from is a timeout of any library.

    Redis, httpx and this module each have their own timeout types; not all
    derive from the built-in ``TimeoutError``, so names count too.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError) or "Timeout" in type(current).__name__:
            return True
        current = current.__cause__ or current.__context__
    return False
