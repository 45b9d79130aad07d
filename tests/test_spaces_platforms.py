"""Each platform's part in shared spaces: who administers a space, and threads.

Telegram asks getChatMember (creator/administrator), Discord resolves Manage
Server/Manage Channels from roles, Slack asks users.info (is_admin/is_owner);
a thread or forum topic belongs to its channel's space and replies stay in it.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from discord_kit import discord_rig
from slack_kit import SECRET, events_url, start_adapter
from spaces_kit import WAIT
from telegram_kit import adapter_starter
from test_spaces_privacy import SlackDriver

from honeychat.core.types import ConversationKey
from honeychat.testing.fake_discord import MEMBER_PERMISSIONS
from honeychat.testing.fake_slack import FakeSlack, deliver, event_callback
from honeychat.testing.fake_telegram import FakeTelegram
from honeychat.testing.pytest_plugin import BotFactory

GROUP = -100555


async def test_telegram_admins_topics_and_threads(bot_factory: BotFactory) -> None:
    async with FakeTelegram() as tg, adapter_starter(tg, bot_factory) as start:
        adapter = await start(llm_streaming=False)
        tg.chat_admins[GROUP] = {42: "creator", 44: "administrator"}

        def group(text: str, user: int, **extra: object) -> None:
            message = tg.message(text, user_id=user, chat_id=GROUP, chat_type="supergroup", **extra)
            tg.push_update({"message": message})

        group("/character marcus", 43)
        await tg.wait_until(lambda: len(tg.chat(GROUP).texts) == 1, within=WAIT)
        assert "only this space's admins" in tg.chat(GROUP).texts[0]
        group("/character marcus", 44)
        await tg.wait_until(lambda: len(tg.chat(GROUP).texts) == 2, within=WAIT)
        assert "Marcus is now the character of this space" in tg.chat(GROUP).texts[1]
        asked = [c for c in tg.calls_of("getChatMember") if c["chat_id"] == GROUP]
        assert [c["user_id"] for c in asked] == [43, 44]

        # A forum topic is part of the group's space; the reply stays in the topic.
        group(
            "@honey_test_bot hello from the topic", 43, message_thread_id=7, is_topic_message=True
        )
        await tg.wait_until(lambda: len(tg.chat(GROUP).texts) == 3, within=WAIT)
        assert tg.calls_of("sendMessage")[-1]["message_thread_id"] == 7
        bot = adapter.bot
        key = ConversationKey.for_space("telegram", str(GROUP), "marcus")
        assert bot.memory is not None
        stored = (await bot.memory.export(key))["recent"]
        assert stored[0]["text"] == "hello from the topic"


async def test_discord_admins_by_permission_and_threads_in_their_channel(
    bot_factory: BotFactory,
) -> None:
    async with discord_rig(
        bot_factory, llm_streaming=False, everyone_permissions=MEMBER_PERMISSIONS
    ) as rig:
        fake = rig.fake
        member, moderator = fake.user("mia"), fake.user("mod")
        refused = await fake.send_interaction(
            member, command="character", options={"name": "marcus"}
        )
        body = await rig.until(lambda: rig.callback(refused))
        assert "only this space's admins" in body["data"]["content"]
        done = await fake.send_interaction(
            moderator,
            command="character",
            options={"name": "marcus"},
            roles=[fake.moderator_role_id],
        )
        body = await rig.until(lambda: rig.callback(done))
        assert "Marcus is now the character of this space" in body["data"]["content"]

        # A thread belongs to its parent channel's space; the answer goes to the thread.
        me = fake.bot_user
        await fake.send_message(member, "a note in the thread", channel_id=fake.thread_id)
        await fake.send_message(
            member, f"<@{me['id']}> hi", channel_id=fake.thread_id, mentions=[me]
        )
        await rig.until(lambda: fake.texts_in(fake.thread_id))
        key = ConversationKey.for_space("discord", fake.channel_id, "marcus")
        assert rig.bot.memory is not None
        stored = [m["text"] for m in (await rig.bot.memory.export(key))["recent"]]
        assert stored[:2] == ["a note in the thread", "hi"]
        assert "Marcus" in rig.llm.last_messages()[0]["content"]


async def test_slack_admins_from_users_info_and_threads(bot_factory: BotFactory) -> None:
    async with FakeSlack() as slack:
        adapter = await start_adapter(bot_factory, slack, llm_streaming=False)
        try:
            SlackDriver(slack, adapter)  # adds U1 (Ann) and U2 (Ben)
            slack.add_user("U9", "Olga", is_owner=True)
            for user, name in (("U1", "r-member"), ("U9", "r-owner")):
                form = {
                    "team_id": "T123",
                    "channel_id": "C1",
                    "channel_name": "general",
                    "user_id": user,
                    "command": "/honeychat",
                    "text": "character marcus",
                    "response_url": slack.response_url(name),
                }
                await deliver(
                    events_url(adapter),
                    SECRET,
                    urlencode(form),
                    content_type="application/x-www-form-urlencoded",
                )
            await slack.wait_until(lambda: len(slack.responses) == 2, within=WAIT)
            by_name = {r["name"]: r["text"] for r in slack.responses}
            assert "only this space's admins" in by_name["r-member"]
            assert "Marcus is now the character of this space" in by_name["r-owner"]

            # A reply to the bot in a thread: answered in that thread, kept in the channel's
            # space, attributed to the member's display name from users.info.
            root = slack.calls_to("chat.postMessage")
            event = {
                "type": "message",
                "channel": "C1",
                "channel_type": "channel",
                "user": "U2",
                "text": "thanks, and what next?",
                "ts": "1700000200.000001",
                "thread_ts": "1700000100.000001",
                "parent_user_id": slack.bot_user_id,
                "team": "T123",
            }
            body = json.dumps(event_callback(event, event_id="EvThread"))
            assert (await deliver(events_url(adapter), SECRET, body)).status == 200
            await slack.wait_until(
                lambda: len(slack.calls_to("chat.postMessage")) > len(root), within=WAIT
            )
            assert slack.calls_to("chat.postMessage")[-1]["thread_ts"] == "1700000100.000001"
            assert bot_factory.llm.last_messages()[-1]["content"] == "[Ben] thanks, and what next?"
            key = ConversationKey.for_space("slack", "T123:C1", "marcus")
            assert adapter.bot.memory is not None
            stored = (await adapter.bot.memory.export(key))["recent"]
            assert (stored[0]["speaker"], stored[0]["text"]) == ("Ben", "thanks, and what next?")
        finally:
            await adapter.stop()
