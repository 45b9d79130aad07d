"""The core media pipeline on the real bot (embedded stores, fake LLM on loopback), with an
in-process stand-in for an adapter's downloader: type checks, hooks, quota weight, per-tier
overrides, the terminal's ``/image PATH`` and spoken replies through a channel that plays audio."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from honeychat import hookimpl
from honeychat.core.media.items import MediaItem, SpeechAudio
from honeychat.core.media.keep import images_dir
from honeychat.core.media.sniff import sniff
from honeychat.core.settings import Tier
from honeychat.core.types import Attachment, IncomingMessage, Reply, SentMessage
from honeychat.testing.channel import RecordingChannel
from honeychat.testing.media import png, voice_note
from honeychat.testing.pytest_plugin import BotFactory, memory_state, send


def attached(data: bytes, kind: str = "voice", **fields: Any) -> Attachment:
    """An attachment as an adapter gives it, its downloader serving ``data``."""

    async def fetch(limit: int) -> bytes:
        return data[: limit + 1]

    return Attachment(kind=kind, fetch=fetch, **fields)


async def stored(bot: Any, user: str = "alice", platform: str = "test") -> list[str]:
    state = await memory_state(bot, user=user, platform=platform)
    return [m["text"] for m in state.get("recent", [])]


@pytest.mark.parametrize(
    ("data", "kind", "mime"),
    [
        (png(), "image", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image", "image/jpeg"),
        (b"GIF89a\x01\x00", "image", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image", "image/webp"),
        (voice_note("hi"), "audio", "audio/ogg"),
        (b"ID3\x04\x00\x00", "audio", "audio/mpeg"),
        (b"\xff\xfb\x90\x00", "audio", "audio/mpeg"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio", "audio/wav"),
        (b"fLaC\x00\x00\x00\x22", "audio", "audio/flac"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "audio", "audio/webm"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00", "audio", "audio/mp4"),
    ],
)
def test_formats_are_recognised_by_their_bytes(data: bytes, kind: str, mime: str) -> None:
    found = sniff(data)
    assert found is not None and (found.kind, found.mime_type) == (kind, mime)


@pytest.mark.parametrize(
    "data", [b"", b"<html>", b"%PDF-1.7", b"\xff\xf1\x50\x80", b"PK\x03\x04", b"\x00" * 16]
)
def test_other_bytes_are_not_media(data: bytes) -> None:
    assert sniff(data) is None


class LocalWhisper:
    """A plugin transcribing locally (here: reading the sample's words, reversed)."""

    def __init__(self) -> None:
        self.seen: list[MediaItem] = []

    @hookimpl
    def honeychat_transcribe(self, item: MediaItem) -> str:
        self.seen.append(item)
        return "local: " + (item.data.split(b"honeychat-sample:")[1].rstrip(b"\x00").decode())


class NoCats:
    """A filter plugin refusing images whose bytes mention cats."""

    @hookimpl
    def honeychat_media_received(self, item: MediaItem) -> Reply | None:
        return Reply("Let's keep cats out of this.") if b"cat" in item.data else None


async def test_a_plugin_replaces_transcription(bot_factory: BotFactory) -> None:
    whisper = LocalWhisper()
    bot = await bot_factory(plugins=[("local_whisper", whisper)])
    channel = await send(bot, "", attachments=(attached(voice_note("good morning")),))
    assert channel.texts == [
        "> local: good morning",
        "I hear you: [voice message] local: good morning",
    ]
    assert not bot_factory.llm.transcription_requests
    assert whisper.seen[0].mime_type == "audio/ogg"


async def test_a_filter_plugin_refuses_and_nothing_is_stored(bot_factory: BotFactory) -> None:
    bot = await bot_factory(plugins=[("no_cats", NoCats())])
    refused = await send(bot, "look", attachments=(attached(png("my cat"), "photo"),))
    assert refused.texts == ["Let's keep cats out of this."]
    assert not bot_factory.llm.chat_requests and await stored(bot) == []
    allowed = await send(bot, "look", attachments=(attached(png("my dog"), "photo"),))
    assert allowed.last_text == "I see: my dog. [photo] look"


async def test_media_turns_weigh_more_in_the_quota(bot_factory: BotFactory) -> None:
    bot = await bot_factory(
        tiers={"free": Tier(daily_message_limit=3), "premium": Tier()},
        plugin_config={"quota": {"media_weight": 2}},
    )
    first = await send(bot, "", attachments=(attached(voice_note("one")),))
    assert first.last_text == "I hear you: [voice message] one"
    assert (await send(bot, "two")).last_text == "I hear you: two"
    refused = await send(bot, "", attachments=(attached(voice_note("three")),))
    assert "today's limit of 3 messages" in refused.last_text
    assert len(bot_factory.llm.transcription_requests) == 1, "no transcription past the quota"


async def test_a_tier_can_route_images_to_a_vision_model(bot_factory: BotFactory) -> None:
    bot = await bot_factory(
        tiers={"free": Tier(image_mode="describe", vision_model="eyes-1"), "premium": Tier()}
    )
    channel = await send(bot, "", attachments=(attached(png("a red kite"), "photo"),))
    vision, chat = bot_factory.llm.chat_requests
    assert vision.model == "eyes-1"
    assert isinstance(chat.messages[-1]["content"], str)
    assert channel.last_text.startswith("I hear you: [photo: I see: a red kite.")


async def test_a_failing_vision_model_gets_a_friendly_answer(bot_factory: BotFactory) -> None:
    bot = await bot_factory(image_mode="describe", llm_max_retries=0)
    bot_factory.llm.fail_model("openai/gpt-4o-mini", 500)
    channel = await send(bot, "what's this?", attachments=(attached(png(), "photo"),))
    assert channel.texts == [
        "I couldn't look at your picture just now. Could you try again, or tell me about it?"
    ]
    assert await stored(bot) == []


async def test_an_empty_transcript_is_not_a_turn(bot_factory: BotFactory) -> None:
    bot = await bot_factory()
    bot_factory.llm.script_transcripts([""])
    channel = await send(bot, "", attachments=(attached(voice_note("(silence)")),))
    assert "couldn't hear any words" in channel.last_text
    assert not bot_factory.llm.chat_requests and await stored(bot) == []


async def test_too_many_items_are_refused(bot_factory: BotFactory) -> None:
    bot = await bot_factory(media_max_items=2)
    pictures = tuple(attached(png(str(i)), "photo") for i in range(3))
    channel = await send(bot, "all of these", attachments=pictures)
    assert "at most 2" in channel.last_text
    assert not bot_factory.llm.chat_requests


async def test_terminal_image_command_reads_a_local_file(
    bot_factory: BotFactory, tmp_path: Path
) -> None:
    bot = await bot_factory()
    picture = tmp_path / "holiday.png"
    picture.write_bytes(png("a beach at noon"))
    channel = await send(bot, f"/image {picture} where was this?", platform="terminal")
    assert channel.last_text == "I see: a beach at noon. [photo] where was this?"
    # No other platform may make the bot read the disk.
    remote = await send(bot, f"/image {picture}", platform="test")
    assert "don't know the command /image" in remote.last_text
    missing = await send(bot, f"/image {tmp_path / 'nope.png'}", platform="terminal")
    assert "couldn't download" in missing.last_text


@dataclass
class SpeakingChannel(RecordingChannel):
    """A recording channel that also plays audio (implements AudioChannel)."""

    audio_format: str = "mp3"
    audio: list[SpeechAudio] = field(default_factory=list)

    async def send_audio(self, audio: SpeechAudio) -> SentMessage | None:
        self.audio.append(audio)
        return SentMessage(str(len(self.audio)), "test")


class LocalVoice:
    @hookimpl
    def honeychat_synthesize_speech(self, text: str, voice: str, audio_format: str) -> bytes:
        return b"ID3" + f"{voice}:{audio_format}:{text}".encode()


async def test_speak_always_and_a_speech_plugin(bot_factory: BotFactory) -> None:
    bot = await bot_factory(tts_model="tts-1", plugins=[("local_voice", LocalVoice())])
    character = bot.characters.default
    character.media.speak = "always"
    character.media.voice = "shimmer"
    try:
        channel = await send(bot, "say *hello*", channel=SpeakingChannel())
    finally:
        character.media.speak, character.media.voice = "mirror", None
    assert isinstance(channel, SpeakingChannel)
    (audio,) = channel.audio
    assert audio.data == b"ID3shimmer:mp3:I hear you: say hello"
    assert audio.mime_type == "audio/mpeg" and audio.filename.endswith(".mp3")
    assert not bot_factory.llm.speech_requests


async def test_a_failing_speech_endpoint_leaves_the_text_reply(bot_factory: BotFactory) -> None:
    bot = await bot_factory(tts_model="tts-1", stt_echo=False)
    bot_factory.llm.fail_audio_next(400, endpoint="speech")  # not retried, and no fallback
    channel = SpeakingChannel()
    await send(bot, "", attachments=(attached(voice_note("hello again")),), channel=channel)
    assert channel.texts == ["I hear you: [voice message] hello again"]
    assert not channel.audio and len(bot_factory.llm.speech_requests) == 1
    assert await stored(bot) == [
        "[voice message] hello again",
        "I hear you: [voice message] hello again",
    ]
    # Speech is back: the next voice note is answered by voice too (mirror).
    await send(bot, "", attachments=(attached(voice_note("and now?")),), channel=channel)
    assert len(channel.audio) == 1 and channel.audio[0].data.startswith(b"ID3")


def test_a_character_file_sets_its_media_options(tmp_path: Path) -> None:
    from honeychat.core.characters import CharacterError, load_character_file

    base = (
        "name: Echo\npersona: A calm voice that loves long walks and short poems.\ngreeting: Hi!\n"
    )
    good = tmp_path / "echo.yaml"
    good.write_text(base + "media:\n  voice: nova\n  speak: always\n  image_mode: describe\n")
    character = load_character_file(good)
    assert not isinstance(character, CharacterError)
    assert (character.media.voice, character.media.speak) == ("nova", "always")
    assert character.media.image_mode == "describe"
    bad = tmp_path / "loud.yaml"
    bad.write_text(base + "media:\n  speak: sometimes\n")
    error = load_character_file(bad)
    assert isinstance(error, CharacterError) and error.field == "media.speak" and error.line == 5


async def test_transcription_retries_then_falls_back_to_the_next_model(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(stt_fallback_models=["whisper-b"], llm_max_retries=1, stt_echo=False)
    bot_factory.llm.fail_audio_next(503, times=2, model="whisper-1")
    channel = await send(bot, "", attachments=(attached(voice_note("second try")),))
    assert channel.last_text == "I hear you: [voice message] second try"
    models = [r.form["model"] for r in bot_factory.llm.transcription_requests]
    assert models == ["whisper-1", "whisper-1", "whisper-b"]


async def test_a_refused_key_stops_transcription_at_once(bot_factory: BotFactory) -> None:
    bot = await bot_factory(stt_fallback_models=["whisper-b"], stt_echo=False)
    bot_factory.llm.fail_audio_next(401)
    channel = await send(bot, "", attachments=(attached(voice_note("hello")),))
    assert channel.texts == [
        "I couldn't listen to your voice message just now. Could you try again, or type it?"
    ]
    assert len(bot_factory.llm.transcription_requests) == 1
    assert await stored(bot) == []


async def test_a_tier_has_its_own_speech_and_transcription_models(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(
        stt_echo=False,
        tiers={
            "free": Tier(stt_model="ears-2", tts_model="voice-2", tts_fallback_models=["voice-3"]),
            "premium": Tier(),
        },
    )
    bot_factory.llm.fail_audio_next(400, endpoint="speech", model="voice-2")
    channel = SpeakingChannel()
    await send(bot, "", attachments=(attached(voice_note("hi there")),), channel=channel)
    assert [r.form["model"] for r in bot_factory.llm.transcription_requests] == ["ears-2"]
    assert [r.model for r in bot_factory.llm.speech_requests] == ["voice-2", "voice-3"]
    assert len(channel.audio) == 1
    # Without TTS_MODEL, a tier without its own speech model answers in text only.
    premium = await bot_factory(stt_echo=False, user_tiers={"test:bob": "premium"})
    quiet = SpeakingChannel()
    await send(premium, "", user="bob", attachments=(attached(voice_note("hi")),), channel=quiet)
    assert not quiet.audio and quiet.texts == ["I hear you: [voice message] hi"]


async def test_openrouter_gets_its_whisper_name_and_json_body(bot_factory: BotFactory) -> None:
    from honeychat.core.settings import Settings

    openrouter = Settings(openrouter_api_key="k", llm_base_url=None, _env_file=None)
    assert (openrouter.stt_model_name, openrouter.stt_json_body) == ("openai/whisper-1", True)
    other = Settings(llm_base_url="http://127.0.0.1:1/v1", _env_file=None)
    assert (other.stt_model_name, other.stt_json_body) == ("whisper-1", False)
    bot = await bot_factory(stt_request_format="json", stt_language="fr", stt_echo=False)
    channel = await send(bot, "", attachments=(attached(voice_note("bonjour")),))
    assert channel.last_text == "I hear you: [voice message] bonjour"
    (request,) = bot_factory.llm.transcription_requests
    assert request.json["model"] == "whisper-1" and request.json["language"] == "fr"
    assert request.json["input_audio"]["format"] == "ogg"


async def test_a_voice_only_character_answers_with_the_voice_note_alone(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(tts_model="tts-1", stt_echo=False)
    character = bot.characters.default
    character.media.spoken_reply = "voice-only"
    try:
        channel = SpeakingChannel()
        await send(bot, "", attachments=(attached(voice_note("sing")),), channel=channel)
        assert channel.texts == [] and len(channel.audio) == 1
        # Speech fails: the reply is not lost, it comes as text.
        bot_factory.llm.fail_audio_next(400, endpoint="speech")
        await send(bot, "", attachments=(attached(voice_note("again")),), channel=channel)
        assert channel.texts == ["I hear you: [voice message] again"] and len(channel.audio) == 1
        # A channel that cannot play audio gets text.
        plain = await send(bot, "", attachments=(attached(voice_note("text?")),))
        assert plain.texts == ["I hear you: [voice message] text?"]
    finally:
        character.media.spoken_reply = "text-and-voice"
    assert (await stored(bot))[:2] == ["[voice message] sing", "I hear you: [voice message] sing"]


def test_doctor_names_a_transcription_setup_that_cannot_work() -> None:
    from honeychat.core.doctor import check_voice
    from honeychat.core.settings import Settings

    def check(**values: Any) -> str:
        return str(check_voice(Settings(_env_file=None, **values)))

    assert check(openrouter_api_key="k") == (
        "✓ voice: transcription: openai/whisper-1 at https://openrouter.ai/api/v1 (JSON)"
    )
    wrong = check(openrouter_api_key="k", stt_model="whisper-1")
    assert wrong.startswith("✗ voice: STT_MODEL=whisper-1 is not an OpenRouter model id")
    assert check(openrouter_api_key="k", tts_model="tts-1").startswith("✗ voice: TTS_MODEL=tts-1")
    assert check(openrouter_api_key="k", tiers={"free": Tier(tts_model="tts-1")}).startswith(
        "✗ voice: TIERS.free.tts_model=tts-1"
    )
    # Speech elsewhere than OpenRouter may use any name.
    assert (
        check(openrouter_api_key="k", tts_model="tts-1", tts_base_url="http://127.0.0.1:9")[0]
        == "✓"
    )
    assert check(llm_base_url=None, openrouter_api_key=None).startswith(
        "✗ voice: no transcription endpoint"
    )
    assert check(llm_base_url="http://127.0.0.1:9/v1", tts_model="tts-1").endswith(
        "whisper-1 at http://127.0.0.1:9/v1 (multipart); speech: tts-1"
    )


async def test_kept_images_are_written_and_forgotten_with_the_conversation(
    bot_factory: BotFactory, tmp_path: Path
) -> None:
    picture = png("our new flat")
    dropped = await bot_factory()
    await send(dropped, "home!", attachments=(attached(picture, "photo"),))
    assert not (bot_factory.data_dir / "media").exists(), "off by default"

    bot = await bot_factory(media_keep_images=True)
    await send(bot, "home!", attachments=(attached(picture, "photo"),))
    await send(bot, "", user="bob", attachments=(attached(png("bob's"), "photo"),))
    conversation, _ = await bot.conversation_for(
        IncomingMessage(platform="test", user_id="alice", chat_id="alice", text="", is_direct=True)
    )
    (kept,) = images_dir(bot.settings.data_dir, conversation).iterdir()
    assert kept.name == "1-1.png" and kept.read_bytes() == picture
    assert kept.stat().st_mode & 0o077 == 0, "readable by the bot's user only"
    assert await stored(bot) == ["[photo] home!", "I see: our new flat. [photo] home!"]

    await send(bot, "/forget confirm")
    assert not images_dir(bot.settings.data_dir, conversation).exists()
    assert len(list((bot.settings.data_dir / "media").iterdir())) == 1, "bob's image stays"
