"""Privacy by construction in shared spaces, end to end on Telegram, Discord and Slack.

The same scenario (tests/spaces_kit.py) runs through each adapter and its
fake platform: private/space x opted-in/not x same/other space, with a token
planted per user and per space, checked in every prompt the LLM received.
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import urlencode

from discord_kit import discord_rig
from slack_kit import SECRET, events_url, start_adapter
from spaces_kit import SPACE_SETTINGS, WAIT, run_privacy_matrix
from telegram_kit import adapter_starter

from honeychat.adapters.slack.adapter import SlackAdapter
from honeychat.core.bot import Bot
from honeychat.testing.fake_discord import FakeDiscord
from honeychat.testing.fake_slack import FakeSlack, deliver, event_callback
from honeychat.testing.fake_telegram import FakeTelegram
from honeychat.testing.pytest_plugin import BotFactory

# Telegram


class TelegramDriver:
    platform = "telegram"
    users = {"A": (42, "Ann"), "B": (43, "Ben")}
    spaces = {"S1": -1001, "S2": -1002}

    def __init__(self, tg: FakeTelegram, bot: Bot) -> None:
        self.tg, self.bot = tg, bot

    def space_id(self, space: str) -> str:
        return str(self.spaces[space])

    async def _send(self, user: str, chat: int, text: str, chat_type: str, answer: bool) -> None:
        uid, name = self.users[user]
        before = len(self.tg.chat(chat).texts)
        message = self.tg.message(
            text,
            user_id=uid,
            chat_id=chat,
            chat_type=chat_type,
            **{"from": self.tg.user(uid, name)},
        )
        self.tg.push_update({"message": message})
        if answer:
            await self.tg.wait_until(lambda: len(self.tg.chat(chat).texts) > before, within=WAIT)

    async def dm(self, user: str, text: str) -> None:
        await self._send(user, self.users[user][0], text, "private", True)

    async def say(self, user: str, space: str, text: str, *, mention: bool) -> None:
        text = f"@honey_test_bot {text}" if mention else text
        await self._send(user, self.spaces[space], text, "supergroup", mention)

    async def share(self, user: str) -> None:
        await self.dm(user, "/memory share on")


async def test_privacy_matrix_on_telegram(bot_factory: BotFactory) -> None:
    async with FakeTelegram() as tg, adapter_starter(tg, bot_factory) as start:
        adapter = await start(**SPACE_SETTINGS)
        await run_privacy_matrix(TelegramDriver(tg, adapter.bot), bot_factory.llm)


# Discord


class DiscordDriver:
    platform = "discord"

    def __init__(self, fake: FakeDiscord, bot: Bot) -> None:
        self.fake, self.bot = fake, bot
        self.users = {"A": fake.user("ann"), "B": fake.user("ben")}
        self.spaces = {"S1": fake.channel_id, "S2": fake.other_channel_id}

    def space_id(self, space: str) -> str:
        return self.spaces[space]

    async def _send(self, user: str, text: str, channel: str, dm: bool, answer: bool) -> None:
        author = self.users[user]
        before = len(self.fake.texts_in(channel))
        me = self.fake.bot_user
        mentions = [me] if answer and not dm else None
        if mentions:
            text = f"<@{me['id']}> {text}"
        await self.fake.send_message(author, text, channel_id=channel, dm=dm, mentions=mentions)
        if answer:
            await self.fake.wait_for(lambda: len(self.fake.texts_in(channel)) > before, WAIT)

    async def dm(self, user: str, text: str) -> None:
        channel = self.fake.dm_channel_id(self.users[user])
        await self._send(user, text, channel, True, True)

    async def say(self, user: str, space: str, text: str, *, mention: bool) -> None:
        await self._send(user, text, self.spaces[space], False, mention)

    async def share(self, user: str) -> None:
        sent = await self.fake.send_interaction(
            self.users[user], command="memory", options={"share": "on"}, dm=True
        )
        await self.fake.wait_for(lambda: self.fake.interaction_response(sent["id"]), WAIT)


async def test_privacy_matrix_on_discord(bot_factory: BotFactory) -> None:
    async with discord_rig(bot_factory, **SPACE_SETTINGS) as rig:
        await run_privacy_matrix(DiscordDriver(rig.fake, rig.bot), rig.llm)


# Slack


class SlackDriver:
    platform = "slack"
    users = {"A": ("U1", "Ann"), "B": ("U2", "Ben")}
    spaces = {"S1": "C1", "S2": "C2"}

    def __init__(self, slack: FakeSlack, adapter: SlackAdapter) -> None:
        self.slack, self.adapter, self.bot = slack, adapter, adapter.bot
        self._ids = itertools.count(1)
        for uid, name in self.users.values():
            slack.add_user(uid, name)

    def space_id(self, space: str) -> str:
        return f"{self.slack.team_id}:{self.spaces[space]}"

    @property
    def url(self) -> str:
        return events_url(self.adapter)

    async def _event(self, event: dict[str, Any], channel: str, answer: bool) -> None:
        n = next(self._ids)
        event = {"ts": f"1700000100.{n:06d}", "team": self.slack.team_id, **event}
        before = len(self.slack.bot_messages(channel))
        body = json.dumps(event_callback(event, event_id=f"EvSpace{n}"))
        assert (await deliver(self.url, SECRET, body)).status == 200
        if answer:
            await self.slack.wait_until(
                lambda: len(self.slack.bot_messages(channel)) > before, within=WAIT
            )

    async def dm(self, user: str, text: str) -> None:
        uid, _ = self.users[user]
        channel = f"D{uid}"
        event = {"type": "message", "channel": channel, "channel_type": "im", "user": uid}
        await self._event({**event, "text": text}, channel, True)

    async def say(self, user: str, space: str, text: str, *, mention: bool) -> None:
        uid, _ = self.users[user]
        channel = self.spaces[space]
        if mention:
            event = {"type": "app_mention", "text": f"<@{self.slack.bot_user_id}> {text}"}
        else:
            event = {"type": "message", "channel_type": "channel", "text": text}
        await self._event({**event, "channel": channel, "user": uid}, channel, mention)

    async def share(self, user: str) -> None:
        uid, name = self.users[user]
        response = f"share-{uid}"
        form = {
            "team_id": self.slack.team_id,
            "channel_id": f"D{uid}",
            "channel_name": "directmessage",
            "user_id": uid,
            "user_name": name.lower(),
            "command": "/honeychat",
            "text": "memory share on",
            "response_url": self.slack.response_url(response),
        }
        delivery = await deliver(
            self.url, SECRET, urlencode(form), content_type="application/x-www-form-urlencoded"
        )
        assert delivery.status == 200
        await self.slack.wait_until(
            lambda: any(r["name"] == response for r in self.slack.responses), within=WAIT
        )


async def test_privacy_matrix_on_slack(bot_factory: BotFactory) -> None:
    async with FakeSlack() as slack:
        adapter = await start_adapter(bot_factory, slack, **SPACE_SETTINGS)
        try:
            await run_privacy_matrix(SlackDriver(slack, adapter), bot_factory.llm)
        finally:
            await adapter.stop()
