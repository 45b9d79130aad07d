"""Shared setup for the Telegram end-to-end tests: adapters on fresh bots, talking to a FakeTelegram."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from honeychat.adapters.telegram.adapter import TelegramAdapter
from honeychat.adapters.telegram.retry import RetryMiddleware
from honeychat.core.bot import Bot
from honeychat.testing.fake_telegram import FakeTelegram
from honeychat.testing.pytest_plugin import BotFactory

StartAdapter = Callable[..., Awaitable[TelegramAdapter]]
"""``await start(**settings)``: a started adapter on a fresh bot (or on ``bot=``)."""


@asynccontextmanager
async def adapter_starter(
    tg: FakeTelegram, bot_factory: BotFactory, *, max_retries: int = 3
) -> AsyncIterator[StartAdapter]:
    """Yield a :data:`StartAdapter`; every adapter it started is stopped on exit."""
    adapters: list[TelegramAdapter] = []

    async def start(bot: Bot | None = None, **overrides: Any) -> TelegramAdapter:
        if bot is None:
            # telegram_* settings go to the Telegram plugin's section, the others to the core.
            telegram = {
                "telegram_bot_token": tg.token,
                "telegram_api_base": tg.base_url,
                "telegram_webhook_host": "127.0.0.1",
                **{k: overrides.pop(k) for k in list(overrides) if k.startswith("telegram_")},
            }
            bot = await bot_factory(plugin_config={"telegram": telegram}, **overrides)
        adapter = TelegramAdapter(
            bot,
            poll_timeout=1,
            retry=RetryMiddleware(backoff_base=0.01, max_retries=max_retries),
            shutdown_timeout=15,
            webhook_port=0,
        )
        await adapter.start()
        adapters.append(adapter)
        return adapter

    yield start
    for adapter in adapters:
        if adapter.tg.session._session is not None and not adapter.tg.session._session.closed:
            await adapter.stop()
