"""An aiogram request middleware that rides out flood control and Telegram's bad moments.

* 429 Too Many Requests: wait the ``retry_after`` Telegram asks for, then retry.
* 5xx and network errors: retry with exponential backoff.

Anything else (400, 403...) is raised at once: retrying would not help.
``getUpdates`` is left to the polling loop, which has its own backoff.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot as AiogramBot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import GetUpdates, Response, TelegramMethod

log = logging.getLogger(__name__)


class RetryMiddleware(BaseRequestMiddleware):
    """Retry a Bot API call on 429 (after ``retry_after``) and on 5xx/network errors (backoff).

    ``max_retries`` bounds the attempts after the first; ``max_retry_after``
    bounds a single flood-control wait (a longer one is raised to the caller).
    """

    def __init__(
        self,
        *,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        max_retry_after: float = 60.0,
    ) -> None:
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: AiogramBot,
        method: TelegramMethod[Any],
    ) -> Response[Any]:
        if isinstance(method, GetUpdates):
            return await make_request(bot, method)
        attempt = 0
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt >= self.max_retries or exc.retry_after > self.max_retry_after:
                    raise
                delay = float(exc.retry_after)
                log.warning(
                    "telegram flood control on %s: waiting %ss as asked (retry %d/%d)",
                    method.__api_method__,
                    exc.retry_after,
                    attempt + 1,
                    self.max_retries,
                )
            except (TelegramServerError, TelegramNetworkError) as exc:
                if attempt >= self.max_retries:
                    raise
                delay = min(self.backoff_max, self.backoff_base * 2**attempt)
                log.warning(
                    "telegram %s failed (%s); retrying in %.1fs (retry %d/%d)",
                    method.__api_method__,
                    exc.message,
                    delay,
                    attempt + 1,
                    self.max_retries,
                )
            attempt += 1
            await asyncio.sleep(delay)
