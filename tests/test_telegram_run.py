"""``honeychat run`` with TELEGRAM_BOT_TOKEN: the entry-point plugin, the runner and the
adapter together, against the fake Bot API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from honeychat.core.runner import run_adapters
from honeychat.testing.fake_telegram import FakeTelegram
from honeychat.testing.pytest_plugin import BotFactory


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


async def test_run_serves_telegram_until_stopped(tg: FakeTelegram, bot_factory: BotFactory) -> None:
    settings = bot_factory.settings(
        plugin_config={
            "telegram": {"telegram_bot_token": tg.token, "telegram_api_base": tg.base_url}
        },
        adapters=["telegram"],
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(run_adapters(settings, stop_event=stop))
    try:
        last = tg.push_update({"message": tg.message("hi from honeychat run")})
        await tg.wait_until(
            lambda: tg.chat(42).texts == ["I hear you: hi from honeychat run"], within=30
        )
    finally:
        stop.set()
        code = await asyncio.wait_for(runner, 30)
    assert code == 0
    assert tg.confirmed_offset == last + 1
    assert [c["command"] for c in tg.commands][:2] == ["start", "help"]


async def test_run_explains_a_refused_token(
    tg: FakeTelegram, bot_factory: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    settings = bot_factory.settings(
        plugin_config={
            "telegram": {
                "telegram_bot_token": "999:not-the-token",
                "telegram_api_base": tg.base_url,
            }
        }
    )
    with caplog.at_level(logging.ERROR):
        code = await asyncio.wait_for(run_adapters(settings, stop_event=asyncio.Event()), 30)
    assert code == 1
    assert "Telegram refused TELEGRAM_BOT_TOKEN" in caplog.text
    assert "Traceback" not in caplog.text


async def test_no_token_no_adapter(bot_factory: BotFactory) -> None:
    bot = await bot_factory(plugin_config={"telegram": {"telegram_bot_token": None}})
    results = await bot.plugins.call("honeychat_register_adapters", bot=bot)
    assert not any(getattr(a, "name", None) == "telegram" for r in results for a in (r or []))
    with_token = await bot_factory(plugin_config={"telegram": {"telegram_bot_token": "1:x"}})
    results = await with_token.plugins.call("honeychat_register_adapters", bot=with_token)
    assert [a.name for r in results for a in (r or [])] == ["telegram"]
    for r in results:
        for adapter in r or []:
            await adapter.tg.session.close()
