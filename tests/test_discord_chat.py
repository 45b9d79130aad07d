"""Chat turns on Discord, driven through discord.py's real client against a fake Discord.

Every test goes over the wire: the fake gateway dispatches MESSAGE_CREATE,
discord.py parses it and calls the adapter, the core asks the FakeLLM, and
the answer comes back to the fake's REST API, where it is recorded.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from discord_kit import discord_rig

from honeychat.adapters.discord.channel import PRIVATE_NOTE

pytestmark = pytest.mark.slow


async def test_dm_turn_end_to_end(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        alice = rig.fake.user("alice")
        rig.llm.script(["Hello Alice, lovely to meet you."])
        msg = await rig.fake.send_message(alice, "hi there", dm=True)
        channel = msg["channel_id"]
        await rig.until(lambda: rig.fake.texts_in(channel) == ["Hello Alice, lovely to meet you."])
        assert rig.llm.last_messages()[-1]["content"] == "hi there"
        assert rig.fake.requests_matching("POST", rf"/channels/{channel}/typing")
        first = rig.posts(channel)[0].json
        assert "message_reference" not in first  # a DM answer is not a reply-quote
        assert first["allowed_mentions"]["parse"] == []


async def test_guild_answers_mentions_only(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        bob = rig.fake.user("bob")
        me = rig.fake.bot_user
        rig.llm.script(["You called?"])
        await rig.fake.send_message(bob, "just chatting with friends")
        mention = await rig.fake.send_message(bob, f"<@{me['id']}> are you there?", mentions=[me])
        channel = rig.fake.channel_id
        await rig.until(lambda: rig.fake.texts_in(channel) == ["You called?"])
        chat = rig.llm.chat_requests
        assert len(chat) == 1
        # The mention is stripped; the speaker is named; the message before it, not for
        # the bot, was kept in the channel's memory without a reply.
        assert chat[0].messages[-1]["content"] == "[Bob] are you there?"
        assert chat[0].messages[-2]["content"] == "[Bob] just chatting with friends"
        post = rig.posts(channel)[0].json
        assert str(post["message_reference"]["message_id"]) == mention["id"]
        assert post["allowed_mentions"] == {"parse": [], "replied_user": False}


async def test_private_command_reply_in_a_server_goes_to_dms(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        me = rig.fake.bot_user
        mia = rig.fake.user("mia")
        await rig.fake.send_message(mia, f"<@{me['id']}> /help", mentions=[me])
        dm = rig.fake.dm_channel_id(mia)
        await rig.until(lambda: rig.fake.texts_in(dm) and rig.fake.texts_in(rig.fake.channel_id))
        assert "/forget" in rig.fake.texts_in(dm)[0]
        assert rig.fake.texts_in(rig.fake.channel_id) == [PRIVATE_NOTE]


async def test_reply_to_the_bot_counts_as_addressing_it(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        carol = rig.fake.user("carol")
        earlier = rig.fake.message_payload(
            rig.fake.channel_id, rig.fake.bot_user, "How was your day?"
        )
        rig.llm.script(["Glad to hear it!"])
        await rig.fake.send_message(carol, "pretty good", referenced=earlier)
        await rig.until(lambda: rig.fake.texts_in(rig.fake.channel_id) == ["Glad to hear it!"])


async def test_answers_inside_the_thread(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        dave = rig.fake.user("dave")
        me = rig.fake.bot_user
        rig.llm.script(["Replying in the thread."])
        await rig.fake.send_message(
            dave, f"<@{me['id']}> hello", channel_id=rig.fake.thread_id, mentions=[me]
        )
        await rig.until(
            lambda: rig.fake.texts_in(rig.fake.thread_id) == ["Replying in the thread."]
        )
        assert rig.posts(rig.fake.channel_id) == []


async def test_allowed_channels(bot_factory: Any) -> None:
    only_general = {"discord_allowed_channels": lambda fake: [fake.channel_id]}
    async with discord_rig(bot_factory, **only_general) as rig:
        erin = rig.fake.user("erin")
        me = rig.fake.bot_user
        rig.llm.script(["in the thread of an allowed channel"])
        await rig.fake.send_message(
            erin, f"<@{me['id']}> hi", channel_id=rig.fake.other_channel_id, mentions=[me]
        )
        await rig.fake.send_message(
            erin, f"<@{me['id']}> hi", channel_id=rig.fake.thread_id, mentions=[me]
        )
        await rig.until(lambda: rig.fake.texts_in(rig.fake.thread_id))
        assert rig.posts(rig.fake.other_channel_id) == []
        assert len(rig.llm.chat_requests) == 1


async def test_messages_from_bots_are_ignored(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        me = rig.fake.bot_user
        other_bot = rig.fake.user("otherbot", bot=True)
        human = rig.fake.user("frank")
        rig.llm.script(["only for frank"])
        await rig.fake.send_message(other_bot, f"<@{me['id']}> hey bot", mentions=[me])
        await rig.fake.send_message(me, "my own message", dm=True)
        await rig.fake.send_message(human, f"<@{me['id']}> hey", mentions=[me])
        await rig.until(lambda: rig.fake.texts_in(rig.fake.channel_id) == ["only for frank"])
        assert len(rig.llm.chat_requests) == 1


async def test_edits_and_deletes_are_ignored(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        me = rig.fake.bot_user
        ann = rig.fake.user("ann")
        edited = rig.fake.message_payload(
            rig.fake.channel_id, ann, f"<@{me['id']}> edited", mentions=[me]
        )
        await rig.fake.dispatch("MESSAGE_UPDATE", edited)
        await rig.fake.dispatch(
            "MESSAGE_DELETE",
            {"id": edited["id"], "channel_id": edited["channel_id"], "guild_id": rig.fake.guild_id},
        )
        rig.llm.script(["only the new message"])
        await rig.fake.send_message(ann, f"<@{me['id']}> new", mentions=[me])
        await rig.until(lambda: rig.fake.texts_in(rig.fake.channel_id) == ["only the new message"])
        assert [r.messages[-1]["content"] for r in rig.llm.chat_requests] == ["[Ann] new"]


async def test_everyone_in_llm_output_never_pings(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        text = "@everyone look! <@&123456789012345678> and @here too"
        rig.llm.script([text])
        msg = await rig.fake.send_message(rig.fake.user("gina"), "say it", dm=True)
        await rig.until(lambda: rig.fake.texts_in(msg["channel_id"]) == [text])
        writes = rig.posts(msg["channel_id"]) + rig.edits(msg["channel_id"])
        assert writes
        for request in writes:
            assert request.json["allowed_mentions"]["parse"] == []
            assert not request.json["allowed_mentions"].get("roles")
            assert not request.json["allowed_mentions"].get("users")


async def test_streaming_edits_are_throttled_and_final_text_exact(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        words = [f"word{i}" for i in range(30)]
        final = " ".join(words) + "."
        rig.llm.script([final])
        rig.llm.chunk_delay = 0.08  # about 2.4 s of streaming
        msg = await rig.fake.send_message(rig.fake.user("hank"), "stream please", dm=True)
        channel = msg["channel_id"]
        await rig.until(lambda: rig.fake.texts_in(channel) == [final])
        posts, edits = rig.posts(channel), rig.edits(channel)
        assert len(posts) == 1  # one message, edited in place
        # Unthrottled, every one of the 30 chunks would be an edit; at one edit per second
        # a ~2.4 s stream gives a handful.
        assert 1 <= len(edits) < len(words) // 2
        assert edits[-1].json["content"] == final
        assert "▌" in edits[0].json["content"]  # a streaming preview came before the final text


async def test_long_reply_is_split_without_breaking_code(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        para = "This is a sentence of the long answer. " * 20
        code = "```python\n" + "\n".join(f"print({i})" for i in range(120)) + "\n```"
        text = f"{para.strip()}\n\n{code}\n\n{para.strip()}\n\n{para.strip()}"
        rig.llm.script([text])
        msg = await rig.fake.send_message(rig.fake.user("ivy"), "long please", dm=True)
        channel = msg["channel_id"]

        def done() -> list[str]:
            texts = rig.fake.texts_in(channel)
            return texts if len(texts) >= 3 and texts[-1].endswith(para.strip()[-20:]) else []

        texts = await rig.until(done)
        assert all(len(t) <= 2000 for t in texts)
        assert all(t.count("```") % 2 == 0 for t in texts)
        assert "".join(texts).replace("```\n```python\n", "").replace(" ", "").replace(
            "\n", ""
        ) == (text.replace(" ", "").replace("\n", ""))


async def test_attachment_without_text_gets_a_graceful_answer(bot_factory: Any) -> None:
    # With images off nothing is downloaded (tests/test_media_discord.py: images on).
    async with discord_rig(bot_factory, image_mode="off") as rig:
        photo = {
            "id": "42",
            "filename": "cat.png",
            "size": 1234,
            "url": "http://127.0.0.1/cat.png",
            "proxy_url": "http://127.0.0.1/cat.png",
            "content_type": "image/png",
        }
        msg = await rig.fake.send_message(rig.fake.user("jo"), "", dm=True, attachments=[photo])
        texts = await rig.until(lambda: rig.fake.texts_in(msg["channel_id"]))
        assert "photo" in texts[0]
        assert rig.llm.chat_requests == []


async def test_rate_limit_is_retried_by_discord_py_and_logged(
    bot_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="discord.http")
    async with discord_rig(bot_factory, llm_streaming=False) as rig:
        rig.fake.fail("POST", r"/channels/\d+/messages", 429, retry_after=0.2)
        rig.llm.script(["after the rate limit"])
        msg = await rig.fake.send_message(rig.fake.user("kim"), "hello", dm=True)
        await rig.until(lambda: rig.fake.texts_in(msg["channel_id"]) == ["after the rate limit"])
        statuses = [r.status for r in rig.posts(msg["channel_id"])]
        assert statuses == [429, 200]
        assert any("rate limited" in r.getMessage() for r in caplog.records)


async def test_forbidden_channel_is_logged_once(
    bot_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="honeychat.adapters.discord")
    async with discord_rig(bot_factory) as rig:
        me = rig.fake.bot_user
        user = rig.fake.user("lee")
        channel = rig.fake.channel_id
        rig.fake.forbid_channel(channel)
        for attempt in (1, 2):
            await rig.fake.send_message(user, f"<@{me['id']}> hi {attempt}", mentions=[me])
            await rig.until(lambda n=attempt: len(rig.llm.chat_requests) >= n)
            await rig.until(
                lambda n=attempt: len([r for r in rig.posts(channel) if r.status == 403]) >= n
            )
        await rig.adapter.stop()  # waits for in-flight turns
        refusals = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 1
        assert channel in refusals[0].getMessage()
        # Each turn tried to post (not retried forever): 403s are not retried by discord.py.
        assert all(r.status == 403 for r in rig.posts(channel))
