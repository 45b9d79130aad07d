"""Replicas sharing Redis: ordering per conversation, and accepted events survive a crash.

Two bots (each standing for one replica: its own plugins, locks and process
id) share one Redis server and serve Slack's Events API on two ports, as
behind a load balancer. One user's quick messages, spread over both while
earlier turns still run, must be answered one turn at a time and stored in
the order the user sent them: never User, User, Luna, Luna, never reversed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from honeychat.adapters.slack.adapter import EVENTS_PATH, SlackAdapter
from honeychat.core.bot import Bot
from honeychat.testing import BotFactory, memory_state
from honeychat.testing.fake_slack import FakeSlack, deliver, event_callback

SECRET = "ordering-secret"
USERS = 8


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


async def replica(bot_factory: BotFactory, slack: FakeSlack, **overrides: Any) -> SlackAdapter:
    bot = await bot_factory(
        key_prefix="ordering",
        plugin_config=slack.http_mode_config(SECRET),
        llm_streaming=False,
        **overrides,
    )
    adapter = SlackAdapter(bot)
    await adapter.start()
    return adapter


async def post(adapter: SlackAdapter, user: str, text: str, ts: str, event_id: str) -> None:
    event = {
        "type": "message",
        "channel": f"D{user}",
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": ts,
        "team": "T1",
    }
    body = json.dumps(event_callback(event, event_id=event_id, team_id="T1"))
    delivery = await deliver(f"http://127.0.0.1:{adapter.port}{EVENTS_PATH}", SECRET, body)
    assert delivery.status == 200


async def history(bot: Bot, user: str) -> list[str]:
    state = await memory_state(bot, user=f"T1:{user}", platform="slack")
    return [m["text"] for m in state.get("recent", [])]


async def test_one_users_messages_sent_at_once_to_two_replicas_never_interleave_or_reverse(
    bot_factory: BotFactory, slack: FakeSlack
) -> None:
    a = await replica(bot_factory, slack)
    b = await replica(bot_factory, slack)
    bot_factory.llm.delay = 0.3  # every message arrives while earlier turns still run
    expected: dict[str, list[str]] = {}

    async def burst(n: int) -> None:
        # One user's three quick messages (30 ms apart, as typed): m0 -> A, m1 -> B,
        # m2 -> A. A's second message waits behind its first; B's must not overtake it.
        user = f"U{n}"
        texts = [f"{user} message {i}" for i in range(3)]
        expected[user] = [line for text in texts for line in (text, f"I hear you: {text}")]
        for i, target in enumerate((a, b, a)):
            await post(target, user, texts[i], f"1700000000.{n:03d}{i:03d}", f"Ev{n}-{i}")
            await asyncio.sleep(0.03)

    sends = [burst(n) for n in range(USERS)]
    try:
        await asyncio.gather(*sends)
        await slack.wait_until(
            lambda: len(slack.calls_to("chat.postMessage")) >= 3 * USERS, within=30
        )
        for user, lines in expected.items():
            for _ in range(100):  # the last reply is stored just after it is sent
                if len(await history(a.bot, user)) >= len(lines):
                    break
                await asyncio.sleep(0.05)
            assert await history(a.bot, user) == lines, user
    finally:
        await a.stop()
        await b.stop()


async def test_a_process_that_lost_its_lease_does_not_write(
    bot_factory: BotFactory, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    a = await replica(bot_factory, slack)
    redis = a.bot.redis
    assert redis is not None
    bot_factory.llm.delay = 1.0
    try:
        await post(a, "U9", "hello there", "1700000001.000100", "EvLost")
        lease_keys: list[Any] = []
        for _ in range(100):
            lease_keys = [k async for k in redis.scan_iter(match="ordering:order:lease:*")]
            if lease_keys:
                break
            await asyncio.sleep(0.02)
        assert lease_keys, "the turn holds a lease while the LLM answers"
        # Another process takes the conversation over (as after this one froze past its lease).
        await redis.set(lease_keys[0], "another-process", px=60_000)
        await slack.wait_until(lambda: len(slack.calls_to("chat.postMessage")) >= 1, within=20)
        await asyncio.sleep(0.2)
        assert await history(a.bot, "U9") == ["hello there"], "the reply was not stored"
        assert any("taken over by another process" in r.getMessage() for r in caplog.records)
    finally:
        await a.stop()


async def test_an_event_accepted_by_a_replica_that_died_is_answered_by_another(
    bot_factory: BotFactory, slack: FakeSlack
) -> None:
    a = await replica(bot_factory, slack, conversation_lease_seconds=1.0)
    bot_factory.llm.delay = 30.0  # A accepts (acknowledges) the event, then dies mid-turn
    await post(a, "U7", "remember the blue door", "1700000002.000100", "EvCrash")
    for _ in range(200):
        if bot_factory.llm.chat_requests:
            break
        await asyncio.sleep(0.02)
    assert bot_factory.llm.chat_requests, "A started the turn"
    await a.intake.stop()
    assert await a.drain(0) == 1, "A's turn was cut off before it answered"
    await a.stop()
    assert slack.calls_to("chat.postMessage") == []

    bot_factory.llm.delay = 0.0
    b = await replica(bot_factory, slack, conversation_lease_seconds=1.0)
    try:
        await slack.wait_until(lambda: len(slack.calls_to("chat.postMessage")) >= 1, within=20)
        assert slack.calls_to("chat.postMessage")[0]["text"] == "I hear you: remember the blue door"
        redis = b.bot.redis
        assert redis is not None
        for _ in range(100):
            if await redis.xlen(b.intake.stream) == 0:
                break
            await asyncio.sleep(0.05)
        assert await redis.xlen(b.intake.stream) == 0, "the handled event is removed"
    finally:
        await b.stop()
