"""Images and voice on Telegram end to end: files hosted by the fake Bot API, downloaded
through aiogram's real session (getFile + file URL), understood through the fake LLM's
``/audio/transcriptions`` and image parts, and spoken replies sent back with sendVoice."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from telegram_kit import StartAdapter, adapter_starter

from honeychat.adapters.telegram.adapter import TelegramAdapter
from honeychat.adapters.telegram.formatting import markdown_to_html
from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.fake_telegram import FakeTelegram
from honeychat.testing.media import png, voice_note
from honeychat.testing.pytest_plugin import BotFactory, memory_state

USER = 42
WAIT = 20.0


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def start_adapter(tg: FakeTelegram, bot_factory: BotFactory) -> AsyncIterator[StartAdapter]:
    async with adapter_starter(tg, bot_factory, max_retries=1) as start:
        yield start


async def turn_done(tg: FakeTelegram, adapter: TelegramAdapter, replies: int) -> list[str]:
    """Wait until the chat shows ``replies`` messages and nothing is in flight."""
    await tg.wait_until(lambda: len(tg.chat(USER).texts) >= replies, within=WAIT)
    await tg.wait_until(lambda: adapter.in_flight == 0, within=WAIT)
    return tg.chat(USER).texts


def voice(tg: FakeTelegram, words: str, *, duration: int = 3, **extra: Any) -> dict[str, Any]:
    file = tg.add_file(voice_note(words))
    return tg.message(None, voice={**file, "duration": duration, "mime_type": "audio/ogg"}, **extra)


def photo(tg: FakeTelegram, data: bytes, caption: str | None = None, **size: Any) -> dict[str, Any]:
    sizes = [{**tg.add_file(data, **size), "width": 1, "height": 1}]
    extra = {"caption": caption} if caption else {}
    return tg.message(None, photo=sizes, **extra)


async def stored_texts(adapter: TelegramAdapter) -> list[str]:
    state = await memory_state(adapter.bot, user=str(USER), platform="telegram")
    return [m["text"] for m in state.get("recent", [])]


async def test_voice_note_is_transcribed_echoed_answered_and_remembered(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter()
    tg.push_update({"message": voice(tg, "I adopted a cat named Miso")})
    shown = await turn_done(tg, adapter, 2)

    (stt,) = fake_llm.transcription_requests
    assert stt.form["model"] == "whisper-1"
    assert stt.form["response_format"] == "json"
    filename, content_type, data = stt.multipart["files"]["file"]  # type: ignore[index]
    assert (filename, content_type) == ("audio.ogg", "audio/ogg")
    assert data == voice_note("I adopted a cat named Miso")
    assert stt.headers["authorization"] == "Bearer test-key"
    assert tg.file_downloads == ["media/file-1.bin"]

    assert shown[0] == markdown_to_html("> I adopted a cat named Miso")
    turn_text = "[voice message] I adopted a cat named Miso"
    assert fake_llm.last_messages()[-1]["content"] == turn_text
    assert shown[1] == markdown_to_html(f"I hear you: {turn_text}")
    assert (await stored_texts(adapter))[0] == turn_text
    assert not tg.uploads  # no TTS_MODEL: text only


async def test_photo_with_caption_goes_to_the_model_as_an_image_part(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter()
    image = png("a grey cat on a red sofa")
    tg.push_update({"message": photo(tg, image, "look at him!")})
    shown = await turn_done(tg, adapter, 1)

    content = fake_llm.last_messages()[-1]["content"]
    assert content[0] == {"type": "text", "text": "[photo] look at him!"}
    url = content[1]["image_url"]["url"]
    assert url == "data:image/png;base64," + base64.b64encode(image).decode()
    assert shown == [markdown_to_html("I see: a grey cat on a red sofa. [photo] look at him!")]
    # Memory keeps the kind and caption, and the reply that describes it; never the bytes.
    assert await stored_texts(adapter) == [
        "[photo] look at him!",
        "I see: a grey cat on a red sofa. [photo] look at him!",
    ]


async def test_describe_mode_sends_text_only_to_the_chat_model(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(image_mode="describe", vision_model="vision-x")
    tg.push_update({"message": photo(tg, png("a lighthouse at dusk"))})
    await turn_done(tg, adapter, 1)

    vision, chat = fake_llm.chat_requests[-2:]
    assert vision.model == "vision-x"
    assert vision.messages[-1]["content"][1]["type"] == "image_url"
    assert chat.model != "vision-x"
    user_text = chat.messages[-1]["content"]
    assert isinstance(user_text, str) and user_text.startswith(
        "[photo: I see: a lighthouse at dusk"
    )
    assert (await stored_texts(adapter))[0] == user_text


async def test_images_off_keeps_todays_answer(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(image_mode="off")
    tg.push_update({"message": photo(tg, png())})
    shown = await turn_done(tg, adapter, 1)
    assert "can't open photo" in shown[0]
    assert not fake_llm.chat_requests and not tg.file_downloads


async def test_spoken_reply_is_a_voice_note_in_opus(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(tts_model="tts-1", tts_voice="nova", stt_echo=False)
    tg.push_update({"message": voice(tg, "sing me something")})
    await tg.wait_until(lambda: bool(tg.uploads), within=WAIT)
    await turn_done(tg, adapter, 1)

    (speech,) = fake_llm.speech_requests
    assert speech.json["model"] == "tts-1"
    assert speech.json["voice"] == "nova"
    assert speech.json["response_format"] == "opus"
    assert speech.json["input"] == "I hear you: [voice message] sing me something"
    (upload,) = tg.uploads
    assert upload["method"] == "sendVoice" and upload["chat_id"] == USER
    assert upload["data"].startswith(b"OggS")
    # mirror (the default): a typed message gets text only.
    tg.push_update({"message": tg.message("and now in writing")})
    await turn_done(tg, adapter, 2)
    assert len(tg.uploads) == 1


async def test_bad_media_gets_one_friendly_sentence_each_and_nothing_is_stored(
    tg: FakeTelegram,
    start_adapter: StartAdapter,
    fake_llm: FakeLLM,
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = await start_adapter(media_max_image_bytes=1000, media_max_audio_seconds=60)
    # Bytes that are not an image, whatever the platform calls them.
    tg.push_update({"message": photo(tg, b"<html>login page</html>", "my cat")})
    assert "can't open that kind of file" in (await turn_done(tg, adapter, 1))[-1]
    downloads = len(tg.file_downloads)
    # Bigger than the cap, as Telegram reports it: refused before downloading.
    tg.push_update({"message": photo(tg, png(padding=5000))})
    assert "too big" in (await turn_done(tg, adapter, 2))[-1]
    # Longer than allowed, as Telegram reports it: not downloaded, not transcribed.
    tg.push_update({"message": voice(tg, "a very long story", duration=300)})
    assert "under 1 minute" in (await turn_done(tg, adapter, 3))[-1]
    assert len(tg.file_downloads) == downloads
    # The file server fails: the error (its URL holds the bot token) is logged without it.
    tg.fail_downloads = 1
    tg.push_update({"message": voice(tg, "broken download")})
    assert "couldn't download" in (await turn_done(tg, adapter, 4))[-1]
    assert "ClientResponseError" in caplog.text and tg.token not in caplog.text
    # A file Telegram no longer has (getFile answers 400).
    message = voice(tg, "never arrives")
    tg.files.clear()
    tg.push_update({"message": message})
    assert "couldn't download" in (await turn_done(tg, adapter, 5))[-1]
    assert not fake_llm.chat_requests and not fake_llm.transcription_requests
    assert await stored_texts(adapter) == []


async def test_transcription_failure_is_friendly_and_stores_nothing(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(llm_max_retries=1)
    fake_llm.fail_audio_next(503, times=2)  # the first try and its retry
    tg.push_update({"message": voice(tg, "lost words")})
    shown = await turn_done(tg, adapter, 1)
    assert "couldn't listen to your voice message" in shown[0]
    assert not fake_llm.chat_requests
    assert await stored_texts(adapter) == []
    # The next turn is not poisoned.
    tg.push_update({"message": voice(tg, "found words")})
    shown = await turn_done(tg, adapter, 3)
    assert shown[-1] == markdown_to_html("I hear you: [voice message] found words")
    assert await stored_texts(adapter) == [
        "[voice message] found words",
        "I hear you: [voice message] found words",
    ]


async def test_transcription_timeout_is_friendly(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(stt_timeout=0.3)
    fake_llm.audio_delay = 5
    tg.push_update({"message": voice(tg, "too slow")})
    shown = await turn_done(tg, adapter, 1)
    assert "couldn't listen" in shown[0]
    assert await stored_texts(adapter) == []


async def test_a_voice_only_character_sends_the_voice_note_instead_of_the_text(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(tts_model="tts-1")
    character = adapter.bot.characters.default
    character.media.spoken_reply = "voice-only"
    try:
        tg.push_update({"message": voice(tg, "tell me a secret")})
        await tg.wait_until(lambda: bool(tg.uploads), within=WAIT)
        await tg.wait_until(lambda: adapter.in_flight == 0, within=WAIT)
    finally:
        character.media.spoken_reply = "text-and-voice"
    reply = "I hear you: [voice message] tell me a secret"
    assert tg.chat(USER).texts == [markdown_to_html("> tell me a secret")]  # the echo alone
    (upload,) = tg.uploads
    assert upload["method"] == "sendVoice" and upload["data"].startswith(b"OggS")
    assert fake_llm.speech_requests[0].json["input"] == reply
    assert await stored_texts(adapter) == ["[voice message] tell me a secret", reply]
