"""The gateway connection: startup errors, drops, resumes and URL redirection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from discord_kit import discord_rig, discord_settings

from honeychat.adapters.discord import DiscordAdapter, DiscordStartupError
from honeychat.adapters.discord.transport import UrlRewriter
from honeychat.core.runner import run_adapters
from honeychat.testing.fake_discord import FakeDiscord

pytestmark = pytest.mark.slow


async def test_identify_uses_minimal_intents_and_resume_after_drop(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        assert rig.fake.identifies == 1
        guilds, guild_messages, dm_messages, message_content = 1 << 0, 1 << 9, 1 << 12, 1 << 15
        intents = rig.fake.identify_payloads[0]["intents"]
        assert intents == guilds | guild_messages | dm_messages | message_content
        alice = rig.fake.user("alice")
        rig.llm.script(["first answer", "second answer"])
        first = await rig.fake.send_message(alice, "one", dm=True)
        channel = first["channel_id"]
        await rig.until(lambda: rig.fake.texts_in(channel) == ["first answer"])

        # The network drops; Discord replays the already-delivered message on resume
        # and delivers one sent while the client was away.
        await rig.fake.drop_connection(replay_delivered=1)
        await rig.fake.send_message(alice, "two", dm=True, channel_id=channel)
        await rig.until(lambda: rig.fake.texts_in(channel) == ["first answer", "second answer"])
        assert rig.fake.resumes == 1
        assert rig.fake.identifies == 1  # resumed, not re-identified
        assert [r.messages[-1]["content"] for r in rig.llm.chat_requests] == ["one", "two"]


async def test_unresumable_session_identifies_again_at_the_configured_gateway(
    bot_factory: Any,
) -> None:
    async with discord_rig(bot_factory) as rig:
        rig.fake.forget_sessions()
        await rig.fake.drop_connection()
        # discord.py falls back to its default gateway URL after INVALID_SESSION;
        # the redirect must still bring it back here.
        await rig.until(lambda: rig.fake.identifies == 2)
        await rig.fake.wait_ready()
        rig.llm.script(["still here"])
        msg = await rig.fake.send_message(rig.fake.user("pat"), "hello again", dm=True)
        await rig.until(lambda: rig.fake.texts_in(msg["channel_id"]) == ["still here"])


async def test_missing_message_content_intent_is_one_clear_error(bot_factory: Any) -> None:
    async with FakeDiscord(message_content_allowed=False) as fake:
        bot = await bot_factory(
            plugin_config={"discord": discord_settings(fake)},
        )
        adapter = DiscordAdapter(bot)
        with pytest.raises(DiscordStartupError, match="Message Content intent is not enabled"):
            await adapter.start()
        await adapter.stop()


async def test_bad_token_is_one_clear_error(bot_factory: Any) -> None:
    async with FakeDiscord() as fake:
        fake.fail("GET", r"/users/@me", 401)
        bot = await bot_factory(
            plugin_config={"discord": discord_settings(fake, discord_bot_token="wrong")},
        )
        adapter = DiscordAdapter(bot)
        with pytest.raises(DiscordStartupError, match="DISCORD_BOT_TOKEN"):
            await adapter.start()
        await adapter.stop()


def test_url_rewriter() -> None:
    rewriter = UrlRewriter("http://127.0.0.1:9/api/v10/", "ws://127.0.0.1:9/gateway")
    assert (
        rewriter.rest("https://discord.com/api/v10/users/@me")
        == "http://127.0.0.1:9/api/v10/users/@me"
    )
    assert rewriter.rest("https://cdn.discordapp.com/x.png") == "https://cdn.discordapp.com/x.png"
    assert (
        rewriter.gateway_url("wss://gateway.discord.gg/?v=10&encoding=json")
        == "ws://127.0.0.1:9/gateway?v=10&encoding=json"
    )
    resume = "wss://gateway-us-east1-b.discord.gg/?v=10&encoding=json"
    assert rewriter.gateway_url(resume) == "ws://127.0.0.1:9/gateway?v=10&encoding=json"
    assert rewriter.gateway_url("ws://127.0.0.1:9/gateway?v=10") == "ws://127.0.0.1:9/gateway?v=10"
    untouched = UrlRewriter(None, None)
    assert untouched.rest("https://discord.com/api/v10/x") == "https://discord.com/api/v10/x"
    assert untouched.gateway_url("wss://gateway.discord.gg/") == "wss://gateway.discord.gg/"


async def test_honeychat_run_serves_discord(bot_factory: Any) -> None:
    """`DISCORD_BOT_TOKEN=... honeychat run`: the entry-point plugin registers the adapter."""
    async with FakeDiscord() as fake:
        settings = bot_factory.settings(
            plugin_config={"discord": discord_settings(fake)},
        )
        stop = asyncio.Event()
        runner = asyncio.create_task(run_adapters(settings, stop_event=stop))
        try:
            await asyncio.wait_for(fake.wait_ready(), 15)
            bot_factory.llm.script(["Served by honeychat run."])
            msg = await fake.send_message(fake.user("ola"), "hello", dm=True)
            await fake.wait_for(
                lambda: fake.texts_in(msg["channel_id"]) == ["Served by honeychat run."], 15
            )
        finally:
            stop.set()
            assert await asyncio.wait_for(runner, 30) == 0


async def test_a_process_runs_only_its_shards(bot_factory: Any) -> None:
    """DISCORD_SHARD_COUNT=4 DISCORD_SHARD_IDS=1,3: one IDENTIFY per own shard, [id, count]."""
    async with discord_rig(bot_factory, discord_shard_count=4, discord_shard_ids=[1, 3]) as rig:
        await rig.until(lambda: len(rig.fake.identify_payloads) == 2)
        assert sorted(p["shard"] for p in rig.fake.identify_payloads) == [[1, 4], [3, 4]]
        assert sorted(rig.adapter.client.shards) == [1, 3]
        # The fake delivers on the latest connection (real Discord: on the guild's shard).
        me = rig.fake.bot_user
        rig.llm.script(["Answered by this process's shards."])
        await rig.fake.send_message(
            rig.fake.user("ida"), f"<@{me['id']}> hi", channel_id=rig.fake.channel_id, mentions=[me]
        )
        await rig.until(
            lambda: rig.fake.texts_in(rig.fake.channel_id) == ["Answered by this process's shards."]
        )


def test_shard_settings_are_checked_in_one_line() -> None:
    from pydantic import ValidationError

    from honeychat.adapters.discord.settings import DiscordSettings
    from honeychat.core.config_errors import describe

    with pytest.raises(ValidationError) as no_count:
        DiscordSettings(discord_shard_ids="0,1")
    assert describe(no_count.value) == (
        "invalid setting DISCORD_SHARD_IDS: needs DISCORD_SHARD_COUNT "
        "(the number of shards over all processes)"
    )
    with pytest.raises(ValidationError) as outside:
        DiscordSettings(discord_shard_ids="1,4", discord_shard_count=4)
    assert describe(outside.value) == (
        "invalid setting DISCORD_SHARD_IDS: [4] not below DISCORD_SHARD_COUNT (4); "
        "shard ids count from 0"
    )
    ids = DiscordSettings(discord_shard_ids="0, 2", discord_shard_count=3).discord_shard_ids
    assert ids == [0, 2]
