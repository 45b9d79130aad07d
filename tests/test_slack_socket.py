"""The Slack adapter over Socket Mode: slack-sdk's real Socket Mode client connects to the
fake Slack's WebSocket (found through apps.connections.open) and acknowledges envelopes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from honeychat.adapters.slack.adapter import SlackAdapter
from honeychat.testing.fake_slack import FakeSlack, event_callback

WAIT = 15.0


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def adapter(bot_factory: Any, slack: FakeSlack) -> AsyncIterator[SlackAdapter]:
    bot = await bot_factory(
        plugin_config={
            "slack": {
                "slack_bot_token": "xoxb-test",
                "slack_app_token": "xapp-test",
                "slack_api_url": slack.base_url,
            }
        },
    )
    adapter = SlackAdapter(bot)
    await adapter.start()
    yield adapter
    await adapter.stop()


async def test_socket_mode_event_end_to_end(
    adapter: SlackAdapter, slack: FakeSlack, bot_factory: Any
) -> None:
    assert adapter.socket_mode
    await slack.wait_until(lambda: slack.socket_connected, within=WAIT)
    (opened,) = [c for c in slack.calls if c.method == "apps.connections.open"]
    assert opened.token == "xapp-test"

    bot_factory.llm.script(["Hello over the socket."])
    event = {
        "type": "message",
        "channel": "D1",
        "channel_type": "im",
        "user": "U456",
        "text": "hi via socket",
        "ts": "1690000000.000500",
        "team": "T123",
    }
    envelope = await slack.send_envelope("events_api", event_callback(event, event_id="EvSock"))
    await slack.wait_until(
        lambda: any(a["envelope_id"] == envelope for a in slack.acks), within=WAIT
    )
    await slack.wait_until(
        lambda: any(m.text == "Hello over the socket." for m in slack.bot_messages("D1")),
        within=WAIT,
    )
    # A redelivery of the same event (Slack retries unacked envelopes) is acked, not answered.
    again = await slack.send_envelope(
        "events_api", event_callback(event, event_id="EvSock"), retry_attempt=1
    )
    await slack.wait_until(lambda: any(a["envelope_id"] == again for a in slack.acks), within=WAIT)
    assert not await adapter.drain(WAIT)
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert len(bot_factory.llm.prompts_containing("hi via socket")) == 1


async def test_socket_mode_slash_command_is_acked_and_answered(
    adapter: SlackAdapter, slack: FakeSlack
) -> None:
    await slack.wait_until(lambda: slack.socket_connected, within=WAIT)
    payload = {
        "team_id": "T123",
        "channel_id": "D1",
        "channel_name": "directmessage",
        "user_id": "U456",
        "user_name": "ann",
        "command": "/honeychat",
        "text": "help",
        "response_url": slack.response_url("sock-help"),
        "trigger_id": "1.2.3",
    }
    envelope = await slack.send_envelope("slash_commands", payload)
    await slack.wait_until(
        lambda: any(a["envelope_id"] == envelope for a in slack.acks), within=WAIT
    )
    await slack.wait_until(
        lambda: any(r["name"] == "sock-help" for r in slack.responses), within=WAIT
    )
    (response,) = slack.responses
    assert response["response_type"] == "ephemeral" and response["text"].strip()
