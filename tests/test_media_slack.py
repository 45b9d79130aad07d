"""Images and voice on Slack end to end: signed ``file_share`` events into slack-bolt's real app,
files downloaded from the fake's ``url_private`` with the bot token, spoken replies uploaded
through slack-sdk's real ``files_upload_v2`` (getUploadURLExternal, upload, completeUploadExternal)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_slack_http import WAIT, answered, dm, send_event, start_adapter

from honeychat.testing.fake_slack import FakeSlack
from honeychat.testing.media import png, voice_note


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def shared(
    slack: FakeSlack, data: bytes, name: str, mimetype: str, text: str = ""
) -> dict[str, Any]:
    return dm(text, subtype="file_share", files=[slack.add_file(data, name, mimetype)])


async def test_audio_clip_is_transcribed_and_answered_with_an_uploaded_mp3(
    bot_factory: Any, slack: FakeSlack
) -> None:
    adapter = await start_adapter(bot_factory, slack, tts_model="tts-1", stt_echo=False)
    try:
        event = shared(slack, voice_note("remind me about the dentist"), "clip.webm", "audio/webm")
        assert (await send_event(adapter, event, "EvVoice")).status == 200
        await slack.wait_until(lambda: bool(slack.uploads), within=WAIT)
        assert not await adapter.drain(WAIT)
    finally:
        await adapter.stop()
    assert slack.file_downloads == [("F00000001", "xoxb-test")]  # the bearer token was sent
    turn_text = "[voice message] remind me about the dentist"
    assert bot_factory.llm.last_messages()[-1]["content"] == turn_text
    (message,) = slack.bot_messages("D1")
    assert message.text == f"I hear you: {turn_text}"
    (upload,) = slack.uploads
    assert upload["channel_id"] == "D1"
    assert upload["filename"].endswith(".mp3") and upload["data"].startswith(b"ID3")
    assert bot_factory.llm.speech_requests[0].json["response_format"] == "mp3"


async def test_shared_image_reaches_the_model_and_the_caption_is_kept(
    bot_factory: Any, slack: FakeSlack
) -> None:
    adapter = await start_adapter(bot_factory, slack)
    try:
        event = shared(slack, png("a snowy mountain"), "IMG_1.png", "image/png", "our trip!")
        assert (await send_event(adapter, event, "EvImage")).status == 200
        await answered(slack, 1)
        assert not await adapter.drain(WAIT)
    finally:
        await adapter.stop()
    content = bot_factory.llm.last_messages()[-1]["content"]
    assert content[0]["text"] == "[photo] our trip!"
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    (message,) = slack.bot_messages("D1")
    assert message.text.startswith("I see: a snowy mountain.")


async def test_login_page_instead_of_the_file_is_refused(
    bot_factory: Any, slack: FakeSlack
) -> None:
    # A token without files:read gets Slack's HTML login page, not the image.
    adapter = await start_adapter(bot_factory, slack)
    try:
        event = shared(slack, png(), "cat.png", "image/png")
        slack.files["F00000001"] = b"<!DOCTYPE html><html>Sign in to Slack</html>"
        assert (await send_event(adapter, event, "EvLogin")).status == 200
        await answered(slack, 1)
        assert not await adapter.drain(WAIT)
    finally:
        await adapter.stop()
    (message,) = slack.bot_messages("D1")
    assert "can't open that kind of file" in message.text
    assert bot_factory.llm.chat_requests == []


async def test_a_clip_over_the_length_limit_is_refused_by_its_own_headers(
    bot_factory: Any, slack: FakeSlack
) -> None:
    # Slack's file objects give no length: the downloaded WAV's headers do (12 s > 10 s).
    from test_media_duration import wav

    adapter = await start_adapter(bot_factory, slack, media_max_audio_seconds=10)
    try:
        long_clip = shared(slack, wav(12.0), "memo.wav", "audio/wav")
        assert (await send_event(adapter, long_clip, "EvLong")).status == 200
        await answered(slack, 1)
        short_clip = shared(slack, wav(2.0), "memo2.wav", "audio/wav")
        bot_factory.llm.script_transcripts(["a short one"])
        assert (await send_event(adapter, short_clip, "EvShort")).status == 200
        await answered(slack, 3)  # the echoed transcript and the reply
        assert not await adapter.drain(WAIT)
    finally:
        await adapter.stop()
    first, *rest = slack.bot_messages("D1")
    assert first.text == "That recording is a bit long for me: please keep it under 10 seconds."
    assert rest[-1].text == "I hear you: [voice message] a short one"
    assert len(bot_factory.llm.transcription_requests) == 1
