"""Long polling of ``getUpdates`` with Telegram's offset semantics.

Each update is handed to ``submit`` once and the offset moves past it; the
offset is sent back to Telegram on the next poll, and once more by
:meth:`Poller.commit` at shutdown, so a restart does not receive the same
updates again. A batch Telegram sends that aiogram cannot read (an unknown
shape) is salvaged update by update rather than blocking the queue forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiogram import Bot as AiogramBot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramConflictError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates
from aiogram.types import Update
from pydantic import ValidationError

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
"""What the bot asks Telegram for: edited messages and channel posts are not wanted."""


class Poller:
    """Runs the ``getUpdates`` loop in a task until :meth:`stop`."""

    def __init__(
        self,
        tg: AiogramBot,
        submit: Callable[[Update], None],
        *,
        timeout: int = 25,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.tg = tg
        self.submit = submit
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.offset: int | None = None
        """The id of the next update wanted: every lower id has been handed over."""
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Begin polling in the background."""
        self._task = asyncio.create_task(self._run(), name="telegram-polling")

    async def stop(self) -> None:
        """Stop polling. Updates already handed over keep running; none are lost."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def commit(self) -> None:
        """Tell Telegram every update handed over is done, so a restart does not see them again."""
        if self.offset is None:
            return
        try:
            await self.tg(GetUpdates(offset=self.offset, timeout=0, limit=1))
        except TelegramAPIError as exc:
            log.warning("telegram: could not confirm the polling offset (%s)", exc.message)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                updates = await self.tg(
                    GetUpdates(
                        offset=self.offset, timeout=self.timeout, allowed_updates=ALLOWED_UPDATES
                    ),
                    request_timeout=int(self.tg.session.timeout + self.timeout),
                )
            except TelegramUnauthorizedError:
                log.critical("telegram rejected the bot token (401): polling stopped")
                return
            except TelegramRetryAfter as exc:
                await asyncio.sleep(exc.retry_after)
                continue
            except (TelegramAPIError, OSError, TimeoutError, ClientDecodeError) as exc:
                if isinstance(exc, ClientDecodeError) and self._salvage(exc.data):
                    continue
                failures += 1
                delay = min(self.backoff_max, self.backoff_base * 2 ** min(failures, 10))
                if isinstance(exc, TelegramConflictError):
                    log.error(
                        "telegram getUpdates conflict (another instance polling, or a webhook is "
                        "set): %s; retrying in %.1fs",
                        exc.message,
                        delay,
                    )
                else:
                    log.warning("telegram getUpdates failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            for update in updates:
                self.offset = update.update_id + 1
                self.submit(update)

    def _salvage(self, data: Any) -> bool:
        """Hand over the readable updates of a batch aiogram could not read as a whole.

        False when the offset could not move past the batch (the caller backs off).
        """
        items = data.get("result") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            log.error("telegram getUpdates answered something unreadable: %.200r", data)
            return False
        before = self.offset
        for item in items:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if isinstance(update_id, int):
                self.offset = max(self.offset or 0, update_id + 1)
            try:
                update = Update.model_validate(item, context={"bot": self.tg})
            except ValidationError as exc:
                log.error("telegram update %s is malformed and was skipped: %s", update_id, exc)
                continue
            self.submit(update)
        return self.offset != before
