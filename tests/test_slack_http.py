"""The Slack adapter over the Events API: signed HTTP requests into slack-bolt's real async app,
answers through slack-sdk's real AsyncWebClient to the fake Slack API on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from honeychat.adapters.slack.adapter import EVENTS_PATH, SlackAdapter
from honeychat.core.types import ConversationKey
from honeychat.testing.fake_slack import Delivery, FakeSlack, deliver, event_callback

SECRET = "test-signing-secret"
WAIT = 15.0


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


async def start_adapter(bot_factory: Any, slack: FakeSlack, **settings: Any) -> SlackAdapter:
    """A started adapter in HTTP mode on a fresh bot talking to ``slack``."""
    bot = await bot_factory(
        plugin_config=slack.http_mode_config(SECRET),
        **settings,
    )
    adapter = SlackAdapter(bot)
    await adapter.start()
    return adapter


@pytest.fixture
async def adapter(bot_factory: Any, slack: FakeSlack) -> AsyncIterator[SlackAdapter]:
    adapter = await start_adapter(bot_factory, slack)
    yield adapter
    await adapter.stop()


def url(adapter: SlackAdapter) -> str:
    return f"http://127.0.0.1:{adapter.port}{EVENTS_PATH}"


def dm(
    text: str, *, user: str = "U456", ts: str = "1690000000.000100", **extra: Any
) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": "D1",
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": ts,
        "team": "T123",
        **extra,
    }


async def send_event(
    adapter: SlackAdapter, event: dict[str, Any], event_id: str, **kw: Any
) -> Delivery:
    body = json.dumps(event_callback(event, event_id=event_id))
    return await deliver(url(adapter), SECRET, body, **kw)


async def answered(slack: FakeSlack, count: int) -> None:
    """Wait until the bot has posted ``count`` messages."""
    await slack.wait_until(lambda: len(slack.calls_to("chat.postMessage")) >= count, within=WAIT)


async def settle(
    adapter: SlackAdapter, slack: FakeSlack, sentinel: Callable[[], Awaitable[Any]]
) -> None:
    """Send a later, valid event and wait for all work in flight, so that anything the
    earlier requests would have caused has happened by the time we assert."""
    before = len(slack.calls_to("chat.postMessage"))
    await sentinel()
    await answered(slack, before + 1)
    assert not await adapter.drain(WAIT)


async def test_url_verification_answers_the_challenge(adapter: SlackAdapter) -> None:
    body = json.dumps(
        {"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9", "type": "url_verification"}
    )
    delivery = await deliver(url(adapter), SECRET, body)
    assert delivery.status == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9" in delivery.body


async def test_dm_turn_end_to_end(
    adapter: SlackAdapter, slack: FakeSlack, bot_factory: Any
) -> None:
    bot_factory.llm.script(["Hi **friend**, I remember you."])
    delivery = await send_event(adapter, dm("hello there"), "Ev1")
    assert delivery.status == 200
    await slack.wait_until(
        lambda: any(m.text == "Hi *friend*, I remember you." for m in slack.bot_messages("D1")),
        within=WAIT,
    )
    (post,) = slack.calls_to("chat.postMessage")
    assert post["channel"] == "D1" and "thread_ts" not in post
    assert bot_factory.llm.prompts_containing("hello there")
    # The conversation belongs to the workspace-qualified user id.
    assert not await adapter.drain(WAIT)
    assert adapter.bot.memory is not None
    stored = await adapter.bot.memory.export(ConversationKey("slack", "T123:U456", "luna"))
    assert [m["text"] for m in stored["recent"]] == [
        "hello there",
        "Hi **friend**, I remember you.",
    ]


async def test_app_mention_is_answered_in_its_thread(
    adapter: SlackAdapter, slack: FakeSlack, bot_factory: Any
) -> None:
    bot_factory.llm.script(["Right here!"])
    event = {
        "type": "app_mention",
        "channel": "C1",
        "user": "U456",
        "text": "<@UBOT> are you there?",
        "ts": "1690000000.000200",
        "team": "T123",
    }
    assert (await send_event(adapter, event, "Ev2")).status == 200
    await answered(slack, 1)
    (post,) = slack.calls_to("chat.postMessage")
    assert post["channel"] == "C1"
    assert post["thread_ts"] == "1690000000.000200"
    await slack.wait_until(lambda: slack.bot_messages("C1")[0].text == "Right here!", within=WAIT)
    assert bot_factory.llm.prompts_containing("are you there?")
    assert not bot_factory.llm.prompts_containing("<@UBOT>")


async def test_retries_and_duplicate_events_are_answered_once(
    adapter: SlackAdapter, slack: FakeSlack
) -> None:
    first = await send_event(adapter, dm("only once please"), "EvDup")
    retry = await send_event(adapter, dm("only once please"), "EvDup", retry_num=1)
    again = await send_event(adapter, dm("only once please"), "EvDup", retry_num=2)
    assert (first.status, retry.status, again.status) == (200, 200, 200)
    await settle(
        adapter, slack, lambda: send_event(adapter, dm("next", ts="1690000001.000100"), "EvNext")
    )
    assert len(slack.calls_to("chat.postMessage")) == 2


async def test_bad_and_stale_signatures_get_401_and_nothing_runs(
    adapter: SlackAdapter, slack: FakeSlack, bot_factory: Any
) -> None:
    body = json.dumps(event_callback(dm("forged"), event_id="EvBad"))
    forged = await deliver(url(adapter), SECRET, body, signature="v0=" + "0" * 64)
    wrong_secret = await deliver(url(adapter), "not-the-secret", body)
    stale = await deliver(url(adapter), SECRET, body, timestamp=int(time.time()) - 6 * 60)
    assert (forged.status, wrong_secret.status, stale.status) == (401, 401, 401)
    await settle(adapter, slack, lambda: send_event(adapter, dm("genuine"), "EvGood"))
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert len(bot_factory.llm.chat_requests) == 1
    assert not bot_factory.llm.prompts_containing("forged")


async def test_bots_edits_deletions_and_own_messages_are_ignored(
    adapter: SlackAdapter, slack: FakeSlack, bot_factory: Any
) -> None:
    ignored = [
        dm("from a bot", subtype="bot_message", bot_id="B9"),
        dm("from another app", bot_id="B9"),
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": "D1",
            "channel_type": "im",
            "message": {"user": "U456", "text": "edited"},
            "ts": "1690000000.000300",
        },
        {
            "type": "message",
            "subtype": "message_deleted",
            "channel": "D1",
            "channel_type": "im",
            "deleted_ts": "1690000000.000100",
            "ts": "1690000000.000301",
        },
        dm("my own words", user="UBOT"),
        {
            "type": "message",
            "channel": "C1",
            "channel_type": "channel",
            "user": "U456",
            "text": "channel chatter",
            "ts": "1690000000.000302",
        },
        # A mention inside a DM: its message.im twin is the turn, not this.
        {
            "type": "app_mention",
            "channel": "D1",
            "user": "U456",
            "text": "<@UBOT> dm mention",
            "ts": "1690000000.000303",
            "team": "T123",
        },
        {
            "type": "app_mention",
            "channel": "C1",
            "user": "U9",
            "bot_id": "B9",
            "text": "<@UBOT> from a bot",
            "ts": "1690000000.000304",
            "team": "T123",
        },
    ]
    for index, event in enumerate(ignored):
        assert (await send_event(adapter, event, f"EvIgn{index}")).status == 200
    await settle(adapter, slack, lambda: send_event(adapter, dm("a real message"), "EvReal"))
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert len(bot_factory.llm.chat_requests) == 1


async def test_a_file_outside_slack_is_never_fetched_with_the_token(
    adapter: SlackAdapter, slack: FakeSlack, bot_factory: Any
) -> None:
    # Only Slack's own hosts get the bearer token: this file is not downloaded at all.
    event = dm(
        "",
        subtype="file_share",
        files=[
            {
                "id": "F1",
                "name": "cat.png",
                "mimetype": "image/png",
                "size": 1234,
                "url_private": "https://files.example.com/cat.png",
            }
        ],
    )
    assert (await send_event(adapter, event, "EvFile")).status == 200
    await answered(slack, 1)
    assert not await adapter.drain(WAIT)
    (message,) = slack.bot_messages("D1")
    assert "can't open photo" in message.text
    assert bot_factory.llm.chat_requests == []


async def test_streaming_updates_are_throttled_and_final_text_exact(
    adapter: SlackAdapter, slack: FakeSlack, bot_factory: Any
) -> None:
    reply = " ".join(f"word{i}" for i in range(120))
    bot_factory.llm.script([reply])
    bot_factory.llm.chunk_delay = 0.02  # 120 chunks over ~2.4 s: many more chunks than edits
    await send_event(adapter, dm("tell me a long story"), "EvStream")
    await answered(slack, 1)
    await slack.wait_until(lambda: slack.bot_messages("D1")[0].text == reply, within=WAIT)
    assert not await adapter.drain(WAIT)
    assert len(slack.calls_to("chat.postMessage")) == 1
    (first,) = slack.calls_to("chat.postMessage")
    assert first["text"].endswith("▌") and first["text"] != reply  # a preview, then updates
    updates = slack.calls_to("chat.update")
    assert 1 <= len(updates) < 10
    assert updates[-1]["text"] == reply


async def test_rate_limited_post_is_retried_after_retry_after(
    adapter: SlackAdapter, slack: FakeSlack, bot_factory: Any
) -> None:
    bot_factory.llm.script(["Patience pays."])
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    await send_event(adapter, dm("hi"), "Ev429")
    await slack.wait_until(
        lambda: any(m.text == "Patience pays." for m in slack.bot_messages()), within=WAIT
    )
    assert len(slack.calls_to("chat.postMessage")) == 2


async def test_llm_output_cannot_ping_the_channel(
    adapter: SlackAdapter, slack: FakeSlack, bot_factory: Any
) -> None:
    bot_factory.llm.script(["Hey <!channel> and <!here>, @everyone look: <@U999> & <b>"])
    await send_event(adapter, dm("say something loud"), "EvPing")
    await answered(slack, 1)
    assert not await adapter.drain(WAIT)
    (message,) = slack.bot_messages("D1")
    assert "<" not in message.text and ">" not in message.text
    assert "&lt;!channel&gt;" in message.text and "&lt;!here&gt;" in message.text
    assert "@everyone" not in message.text
    for call in slack.calls_to("chat.postMessage") + slack.calls_to("chat.update"):
        assert "<!" not in call["text"] and "<@" not in call["text"]


# Slash command and interactivity


def slash(text: str, response: str, slack: FakeSlack) -> str:
    return urlencode(
        {
            "token": "t",
            "team_id": "T123",
            "team_domain": "fake",
            "channel_id": "C1",
            "channel_name": "general",
            "user_id": "U456",
            "user_name": "ann",
            "command": "/honeychat",
            "text": text,
            "api_app_id": "A123",
            "response_url": slack.response_url(response),
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        }
    )


async def run_slash(
    adapter: SlackAdapter, slack: FakeSlack, text: str, name: str
) -> dict[str, Any]:
    delivery = await deliver(
        url(adapter),
        SECRET,
        slash(text, name, slack),
        content_type="application/x-www-form-urlencoded",
    )
    assert delivery.status == 200
    await slack.wait_until(lambda: any(r["name"] == name for r in slack.responses), within=WAIT)
    response = next(r for r in slack.responses if r["name"] == name)
    assert response["response_type"] == "ephemeral"
    assert response["text"].strip() and "Traceback" not in response["text"]
    return response


async def pick(
    adapter: SlackAdapter, slack: FakeSlack, option: dict[str, Any], name: str
) -> dict[str, Any]:
    """Pick ``option`` in the select menu, as Slack posts a block_actions payload."""
    payload = {
        "type": "block_actions",
        "team": {"id": "T123", "domain": "fake"},
        "user": {"id": "U456", "username": "ann", "team_id": "T123"},
        "api_app_id": "A123",
        "token": "t",
        "trigger_id": "1.2.3",
        "container": {
            "type": "message",
            "message_ts": "1690000000.000400",
            "channel_id": "C1",
            "is_ephemeral": True,
        },
        "channel": {"id": "C1", "name": "general"},
        "response_url": slack.response_url(name),
        "actions": [
            {
                "type": "static_select",
                "action_id": "honeychat_choice",
                "block_id": "honeychat_choices",
                "selected_option": option,
                "action_ts": "1690000001.000001",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)})
    delivery = await deliver(
        url(adapter), SECRET, body, content_type="application/x-www-form-urlencoded"
    )
    assert delivery.status == 200
    await slack.wait_until(lambda: any(r["name"] == name for r in slack.responses), within=WAIT)
    response = next(r for r in slack.responses if r["name"] == name)
    assert response["replace_original"] is True
    return response


def menu_options(response: dict[str, Any]) -> list[dict[str, Any]]:
    select = response["blocks"][1]["elements"][0]
    assert select["type"] == "static_select" and select["action_id"] == "honeychat_choice"
    return list(select["options"])


async def test_help_lists_slack_subcommands(adapter: SlackAdapter, slack: FakeSlack) -> None:
    for text, name in (("help", "r-help"), ("", "r-empty"), ("dance", "r-unknown")):
        response = await run_slash(adapter, slack, text, name)
        for command in ("character", "forget", "memory", "help"):
            assert f"/honeychat {command}" in response["text"], (text, response["text"])
    assert slack.calls_to("chat.postMessage") == []


async def test_character_by_name_switches_for_the_workspace_user(
    adapter: SlackAdapter, slack: FakeSlack
) -> None:
    response = await run_slash(adapter, slack, "character marcus", "r-marcus")
    assert "You're now talking with Marcus" in response["text"]
    assert (await adapter.bot.current_character("slack", "T123:U456")).id == "marcus"
    assert (await adapter.bot.current_character("slack", "U456")).id == "luna"


async def test_character_menu_pick_then_dm_talks_to_the_picked_character(
    adapter: SlackAdapter, slack: FakeSlack, bot_factory: Any
) -> None:
    menu = await run_slash(adapter, slack, "character", "r-menu")
    option = next(o for o in menu_options(menu) if o["value"] == "character:pixel")
    picked = await pick(adapter, slack, option, "r-pick")
    assert "You're now talking with Pixel" in picked["text"]

    await send_event(adapter, dm("who are you?"), "EvAfterPick")
    await answered(slack, 1)
    assert not await adapter.drain(WAIT)
    assert adapter.bot.memory is not None
    stored = await adapter.bot.memory.export(ConversationKey("slack", "T123:U456", "pixel"))
    assert stored["recent"][0]["text"] == "who are you?"


async def test_memory_then_forget_with_confirmation(
    adapter: SlackAdapter, slack: FakeSlack, bot_factory: Any
) -> None:
    bot_factory.llm.script(["Noted: you love tea."])
    await send_event(adapter, dm("I love green tea"), "EvTea")
    await slack.wait_until(
        lambda: any(m.text == "Noted: you love tea." for m in slack.bot_messages()), within=WAIT
    )
    assert not await adapter.drain(WAIT)
    memory = await run_slash(adapter, slack, "memory", "r-memory")
    assert "last 2 messages" in memory["text"]

    ask = await run_slash(adapter, slack, "forget", "r-forget")
    yes = next(o for o in menu_options(ask) if o["text"]["text"].startswith("Yes"))
    done = await pick(adapter, slack, yes, "r-forget-yes")
    assert "forgotten" in done["text"]
    assert adapter.bot.memory is not None
    stored = await adapter.bot.memory.export(ConversationKey("slack", "T123:U456", "luna"))
    assert stored["recent"] == []
