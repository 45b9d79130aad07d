"""SlackChannel through slack-sdk's real AsyncWebClient against the fake Slack API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from honeychat.adapters.slack.channel import MAX_MRKDWN_LENGTH, SlackChannel
from honeychat.core.types import Reply, SentMessage
from honeychat.testing.fake_slack import FakeSlack


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def client_for(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.base_url)


async def test_send_then_edit_posts_once_and_updates_in_thread(slack: FakeSlack) -> None:
    channel = SlackChannel(client_for(slack), "C1", thread_ts="1690000000.000001", user="U1")
    sent = await channel.send(Reply("Hello **there**"))
    await channel.edit(sent, "Hello **there**, friend <!channel>")
    (post,) = slack.calls_to("chat.postMessage")
    assert post["thread_ts"] == "1690000000.000001"
    assert post["text"] == "Hello *there*"
    (update,) = slack.calls_to("chat.update")
    assert update["ts"] == sent.message_id
    (message,) = slack.bot_messages("C1")
    assert message.text == "Hello *there*, friend &lt;!channel&gt;"


async def test_429_honours_retry_after_then_succeeds(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    slack.fail_next("chat.update", status=429, retry_after=0)
    channel = SlackChannel(client_for(slack), "D1")
    sent = await channel.send(Reply("first"))
    await channel.edit(sent, "second")
    assert len(slack.calls_to("chat.postMessage")) == 2
    assert len(slack.calls_to("chat.update")) == 2
    assert [m.text for m in slack.bot_messages()] == ["second"]


async def test_endless_rate_limit_gives_up_without_raising(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=0, times=10)
    sent = await SlackChannel(client_for(slack), "D1").send(Reply("hi"))
    assert sent == SentMessage(message_id="", chat_id="D1")
    assert len(slack.calls_to("chat.postMessage")) == 4  # one try and three retries
    slack.fail_next("chat.postMessage", status=429, retry_after=3600)
    assert (await SlackChannel(client_for(slack), "D1").send(Reply("hi"))).message_id == ""


async def test_api_errors_are_logged_not_raised(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", status=200, error="not_in_channel")
    channel = SlackChannel(client_for(slack), "C9")
    sent = await channel.send(Reply("hello"))
    assert sent.message_id == ""
    await channel.edit(sent, "nothing to edit")
    assert slack.calls_to("chat.update") == []


async def test_ephemeral_reply_goes_to_the_user_only(slack: FakeSlack) -> None:
    channel = SlackChannel(client_for(slack), "C1", user="U1")
    sent = await channel.send(Reply("just for you", ephemeral=True))
    (call,) = slack.calls_to("chat.postEphemeral")
    assert call["user"] == "U1" and call["channel"] == "C1"
    assert slack.calls_to("chat.postMessage") == []
    await channel.edit(sent, "cannot edit ephemerals")
    assert slack.calls_to("chat.update") == []


async def test_text_that_grows_past_the_limit_when_escaped_is_split(slack: FakeSlack) -> None:
    text = ("a & b < c. " * 300).strip()  # 3,299 Markdown chars, far longer once escaped
    channel = SlackChannel(client_for(slack), "D1")
    sent = await channel.send(Reply(text))
    posts = slack.calls_to("chat.postMessage")
    assert len(posts) >= 2
    assert all(len(p["text"]) <= MAX_MRKDWN_LENGTH for p in posts)
    assert sent.message_id == slack.bot_messages()[0].ts
    joined = " ".join(p["text"] for p in posts)
    assert joined.replace("&amp;", "&").replace("&lt;", "<").split() == text.split()
