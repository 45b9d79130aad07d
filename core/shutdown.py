"""Stopping long-running commands cleanly on SIGTERM and SIGINT, within a bound.

``honeychat run``, ``serve`` (and ``worker``) share these helpers: the first
signal asks the command to stop (in-flight turns and pending work get
``SHUTDOWN_TIMEOUT`` seconds to finish, then the stores are closed and an
embedded valkey server is stopped); a second signal stops waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Iterator
from typing import TypeVar

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_T = TypeVar("_T")


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[asyncio.Event]:
    """Inside this block, SIGINT and SIGTERM set ``stop`` instead of killing the process.

    A second signal while stopping raises ``KeyboardInterrupt`` in the loop,
    for a user who does not want to wait. Handlers are removed on exit.
    """
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("second %s: stopping without waiting", sig.name)
            for installed_sig in installed:
                loop.remove_signal_handler(installed_sig)
            signal.raise_signal(signal.SIGINT)
            return
        log.info("%s received: stopping", sig.name)
        stop.set()

    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    try:
        yield stop
    finally:
        for sig in installed:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


async def within(work: Awaitable[_T], seconds: float, what: str) -> _T | None:
    """Await ``work`` for at most ``seconds``; on timeout log what was abandoned, return ``None``."""
    try:
        return await asyncio.wait_for(work, seconds)
    except TimeoutError:
        log.warning("%s did not finish within %gs; stopping anyway", what, seconds)
        return None
