"""Images and voice on Discord end to end: attachments served by the fake's CDN route and
downloaded through discord.py's own HTTP session, the fake LLM transcribing and looking,
and spoken replies uploaded as audio attachments (multipart ``files[0]``)."""

from __future__ import annotations

from typing import Any

import pytest
from discord_kit import discord_rig

from honeychat.testing.media import png, voice_note
from honeychat.testing.pytest_plugin import memory_state

pytestmark = pytest.mark.slow


async def test_voice_message_is_transcribed_and_answered_by_voice(bot_factory: Any) -> None:
    async with discord_rig(bot_factory, tts_model="tts-1") as rig:
        alice = rig.fake.user("alice")
        note = rig.fake.attachment(
            voice_note("my sister is visiting on Friday"),
            "voice-message.ogg",
            "audio/ogg",
            voice=True,
        )
        msg = await rig.fake.send_message(alice, "", dm=True, attachments=[note])
        channel = msg["channel_id"]
        await rig.until(lambda: rig.fake.uploads)
        turn_text = "[voice message] my sister is visiting on Friday"
        assert rig.fake.texts_in(channel) == [
            "> my sister is visiting on Friday",
            f"I hear you: {turn_text}",
            "",  # the audio attachment's message
        ]
        assert rig.fake.cdn_downloads == [note["id"]]
        (stt,) = rig.llm.transcription_requests
        assert stt.multipart["files"]["file"][1] == "audio/ogg"  # type: ignore[index]
        assert rig.llm.last_messages()[-1]["content"] == turn_text
        (speech,) = rig.llm.speech_requests
        assert speech.json["response_format"] == "mp3"
        (upload,) = rig.fake.uploads
        assert upload["channel_id"] == channel
        assert upload["filename"].endswith(".mp3") and upload["data"].startswith(b"ID3")
        state = await memory_state(rig.bot, user=alice["id"], platform="discord")
        assert state["recent"][0]["text"] == turn_text


async def test_image_attachment_reaches_the_model_beside_the_caption(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        bob = rig.fake.user("bob")
        # The name says .txt: the declared type picks the download, the bytes decide.
        pic = rig.fake.attachment(png("two kittens in a basket"), "notes.txt", "image/png")
        msg = await rig.fake.send_message(bob, "guess what", dm=True, attachments=[pic])
        channel = msg["channel_id"]
        expected = ["I see: two kittens in a basket. [photo] guess what"]
        await rig.until(lambda: rig.fake.texts_in(channel) == expected)
        content = rig.llm.last_messages()[-1]["content"]
        assert content[0]["text"] == "[photo] guess what"
        assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_oversized_attachment_is_refused_without_downloading(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        cara = rig.fake.user("cara")
        big = rig.fake.attachment(png(), "big.png", "image/png", size=50_000_000)
        msg = await rig.fake.send_message(cara, "", dm=True, attachments=[big])
        channel = msg["channel_id"]
        await rig.until(lambda: rig.fake.texts_in(channel))
        assert "too big" in rig.fake.texts_in(channel)[0]
        assert not rig.fake.cdn_downloads and not rig.llm.chat_requests


async def test_missing_cdn_file_is_a_friendly_failed_download(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        dan = rig.fake.user("dan")
        gone = rig.fake.attachment(png(), "cat.png", "image/png")
        rig.fake.cdn.clear()
        msg = await rig.fake.send_message(dan, "my cat", dm=True, attachments=[gone])
        channel = msg["channel_id"]
        await rig.until(lambda: rig.fake.texts_in(channel))
        assert "couldn't download" in rig.fake.texts_in(channel)[0]
        assert not rig.llm.chat_requests


async def test_a_file_larger_than_declared_is_cut_off_at_the_cap(bot_factory: Any) -> None:
    # Discord said 1 kB; the CDN serves 24 MB. The download stops at the 200 kB cap.
    async with discord_rig(bot_factory, media_max_image_bytes=200_000) as rig:
        eve = rig.fake.user("eve")
        huge = png(padding=24_000_000)
        liar = rig.fake.attachment(huge, "small.png", "image/png", size=1_000)
        msg = await rig.fake.send_message(eve, "look", dm=True, attachments=[liar])
        channel = msg["channel_id"]
        await rig.until(lambda: rig.fake.texts_in(channel))
        assert "too big" in rig.fake.texts_in(channel)[0]
        assert not rig.llm.chat_requests
        await rig.until(lambda: liar["id"] in rig.fake.cdn_bytes_sent)
        # What the server managed to write before the bot hung up: the cap plus socket buffers.
        assert rig.fake.cdn_bytes_sent[liar["id"]] < len(huge) // 2
