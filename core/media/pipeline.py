"""Media in the turn pipeline: from attachments to the user's turn text, and spoken replies.

The core calls, in order:

1. :func:`usable_attachments` (before the turn): a message with no text and
   nothing usable gets today's answer, and costs no quota;
2. :func:`prepare_media` (after ``honeychat_ingest``, so a quota refusal costs
   no download): downloads, ``honeychat_media_received``, transcription and
   image description; sets ``turn.media`` and ``turn.text``. Any failure
   returns a friendly :class:`Reply` and the turn ends before anything is stored;
3. :func:`with_image_parts` on the chat request (``IMAGE_MODE=inline``);
4. :func:`speak_reply` after the reply is sent and stored.

What memory keeps is ``turn.text``: ``[voice message] <transcript>``, or
``[photo] <caption>`` (``[photo: <description>]`` with a vision model). The
bytes themselves are never stored.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from honeychat.core.media.download import download
from honeychat.core.media.duration import audio_duration
from honeychat.core.media.errors import MediaError, MediaServiceError, MediaTooLarge
from honeychat.core.media.items import AudioChannel, MediaItem, MediaKind, SpeechAudio
from honeychat.core.media_api import SPEECH_MIME_TYPES
from honeychat.core.types import Attachment, Channel, IncomingMessage, Reply

if TYPE_CHECKING:
    from honeychat.core.bot import Bot
    from honeychat.core.characters import Character
    from honeychat.core.settings import Settings, Tier
    from honeychat.core.turn import Turn

log = logging.getLogger(__name__)

VISION_PROMPT = (
    "Describe this image for someone who cannot see it, in two or three plain sentences: "
    "what it shows, any text in it, and its mood. Do not guess who people are."
)
_AUDIO_SOURCES = frozenset({"voice", "audio"})
_IMAGE_SOURCES = frozenset({"photo", "image"})
_CANNOT_LISTEN = (
    "I couldn't listen to your voice message just now. Could you try again, or type it?"
)
_CANNOT_LOOK = "I couldn't look at your picture just now. Could you try again, or tell me about it?"
_MARKDOWN = re.compile(r"[*_`#>~|]+")


@dataclass(frozen=True, slots=True)
class MediaOptions:
    """The media settings in force for one turn (character over tier over global)."""

    image_mode: str
    vision_model: str
    stt_enabled: bool
    voice: str
    speak: str
    stt_models: tuple[str, ...] = ()
    """The transcription model chain: the model, then its fallbacks."""
    tts_models: tuple[str, ...] = ()
    """The speech model chain (empty: no spoken replies)."""
    spoken_reply: str = "text-and-voice"


def media_options(settings: Settings, tier: Tier, character: Character) -> MediaOptions:
    """Resolve per-character and per-tier overrides, as for models."""
    own = character.media
    stt_models = _chain(
        tier.stt_model or settings.stt_model_name,
        settings.stt_fallback_models
        if tier.stt_fallback_models is None
        else tier.stt_fallback_models,
    )
    tts_model = tier.tts_model or settings.tts_model
    tts_models = (
        _chain(
            tts_model,
            settings.tts_fallback_models
            if tier.tts_fallback_models is None
            else tier.tts_fallback_models,
        )
        if tts_model
        else ()
    )
    return MediaOptions(
        image_mode=own.image_mode or tier.image_mode or settings.image_mode,
        vision_model=own.vision_model or tier.vision_model or settings.vision_model,
        stt_enabled=settings.stt_enabled,
        voice=own.voice or settings.tts_voice,
        speak=own.speak if tts_models else "never",
        stt_models=stt_models,
        tts_models=tts_models,
        spoken_reply=own.spoken_reply,
    )


def _chain(model: str, fallbacks: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m for m in (model, *fallbacks) if m))


def kind_of(attachment: Attachment) -> MediaKind | None:
    """``image``/``audio`` for what the core can use, from the adapter's kind or MIME type.

    This only chooses what to download; the bytes decide in the end.
    """
    mime = (attachment.mime_type or "").lower()
    if attachment.kind in _AUDIO_SOURCES or mime.startswith("audio/"):
        return "audio"
    if attachment.kind in _IMAGE_SOURCES or (
        attachment.kind == "file" and mime.startswith("image/")
    ):
        return "image"
    return None


def usable_attachments(
    message: IncomingMessage, options: MediaOptions
) -> list[tuple[Attachment, MediaKind]]:
    """The attachments this turn will download, with the kind each must turn out to be."""
    found: list[tuple[Attachment, MediaKind]] = []
    for attachment in message.attachments:
        kind = kind_of(attachment)
        if kind == "image" and options.image_mode == "off":
            continue
        if kind == "audio" and not options.stt_enabled:
            continue
        if kind is not None and attachment.fetch is not None:
            found.append((attachment, kind))
    return found


def unusable_reply(message: IncomingMessage) -> Reply:
    """Today's answer to media we cannot open (no text with it)."""
    kinds = ", ".join(sorted({a.kind for a in message.attachments}))
    return Reply(
        f"I can't open {kinds} yet, but I'd love to hear about it. Could you tell me in words?"
    )


def options_for(bot: Bot, message: IncomingMessage, character: Character) -> MediaOptions:
    """:func:`media_options` for the message's user."""
    _, tier = bot.settings.tier_for(message.platform, message.user_id)
    return media_options(bot.settings, tier, character)


async def prepare_media(turn: Turn, channel: Channel) -> Reply | None:
    """Download and understand the turn's media; ``None`` to go on, else the answer to send."""
    bot, settings = turn.bot, turn.bot.settings
    options = media_options(settings, turn.tier, turn.character)
    wanted = usable_attachments(turn.message, options)
    if not wanted:
        return None
    if len(wanted) > settings.media_max_items:
        return Reply(
            f"That's a lot at once! Please send at most {settings.media_max_items} "
            "images or voice notes in one message."
        )
    try:
        await channel.typing()  # downloads and transcription take a while: show it
    except Exception:
        log.debug("typing indicator failed before media handling", exc_info=True)
    try:
        for attachment, kind in wanted:
            item = await _fetch(attachment, kind, settings)
            refusal = await bot.plugins.first("honeychat_media_received", item=item, turn=turn)
            if isinstance(refusal, Reply):
                turn.media.clear()
                return refusal
            turn.media.append(item)
        for item in turn.media:
            if item.kind == "audio":
                item.transcript = await _transcribe(item, turn)
            elif options.image_mode == "describe":
                item.description = await _describe(item, turn, options.vision_model)
    except MediaError as error:
        log.warning(
            "media for %s:%s not used: %s", turn.message.platform, turn.message.user_id, error
        )
        turn.media.clear()
        return Reply(error.user_message)
    caption = turn.text
    turn.text, _ = bot.clean_text(turn_text(caption, turn.media))
    if settings.stt_echo:
        await _echo_transcripts(turn.media, channel)
    return None


async def _fetch(attachment: Attachment, kind: MediaKind, settings: Settings) -> MediaItem:
    if kind == "image":
        limit = settings.media_max_image_bytes
        return await download(
            attachment, kind, limit=limit, timeout=settings.media_download_timeout
        )
    # What the platform says is checked before downloading; what the bytes say after
    # (Slack and plain audio files report no length).
    _check_length(attachment.duration, attachment.kind, settings)
    item = await download(
        attachment,
        kind,
        limit=settings.media_max_audio_bytes,
        timeout=settings.media_download_timeout,
    )
    measured = audio_duration(item.data)
    _check_length(measured, attachment.kind, settings)
    if item.duration is None:
        item.duration = measured
    return item


def _check_length(seconds: float | None, source: str, settings: Settings) -> None:
    if seconds is None or seconds <= settings.media_max_audio_seconds:
        return
    limit = settings.media_max_audio_seconds
    if limit >= 60:
        minutes = int(limit // 60)
        most = f"{minutes} minute{'s' if minutes != 1 else ''}"
    else:
        most = f"{limit:g} seconds"
    raise MediaTooLarge(
        f"{source} of {seconds:.0f}s",
        f"That recording is a bit long for me: please keep it under {most}.",
    )


async def _transcribe(item: MediaItem, turn: Turn) -> str:
    bot, settings = turn.bot, turn.bot.settings
    try:
        async with asyncio.timeout(settings.stt_timeout):
            text = await bot.plugins.first("honeychat_transcribe", item=item, turn=turn)
            if text is None:
                if bot.media_api is None:
                    raise MediaServiceError("no media API")
                text = await bot.media_api.transcribe(
                    item.data,
                    filename=item.filename,
                    mime_type=item.mime_type,
                    models=media_options(settings, turn.tier, turn.character).stt_models,
                )
    except TimeoutError:
        raise MediaServiceError(
            f"transcription took over {settings.stt_timeout}s", _CANNOT_LISTEN
        ) from None
    except Exception as error:  # MediaError, or a transcribing plugin's own failure
        raise MediaServiceError(f"transcription failed: {error}", _CANNOT_LISTEN) from None
    text = str(text).strip()
    if not text:
        raise MediaServiceError(
            "the transcript is empty",
            "I couldn't hear any words in that recording. Could you try again?",
        )
    return text


async def _describe(item: MediaItem, turn: Turn, model: str) -> str:
    bot, settings = turn.bot, turn.bot.settings
    try:
        async with asyncio.timeout(settings.llm_read_timeout):
            text = await bot.plugins.first("honeychat_describe_image", item=item, turn=turn)
            if text is None:
                if bot.llm is None:
                    raise MediaServiceError("no LLM to describe images")
                completion = await bot.llm.complete(
                    [
                        {
                            "role": "user",
                            "content": [
                                {"type": "text", "text": VISION_PROMPT},
                                {"type": "image_url", "image_url": {"url": item.data_url}},
                            ],
                        }
                    ],
                    model=model,
                    max_tokens=300,
                )
                text = completion.text
    except TimeoutError:
        raise MediaServiceError("describing the image took too long", _CANNOT_LOOK) from None
    except Exception as error:  # LLMError, MediaError, a plugin's own failure
        raise MediaServiceError(f"describing the image failed: {error}", _CANNOT_LOOK) from None
    return " ".join(str(text).split())


def turn_text(caption: str, media: list[MediaItem]) -> str:
    """The user's turn as the chat model and memory see it.

    ``[voice message] I adopted a cat``; ``[photo] look at him!``;
    ``[photo: A grey cat asleep on a red sofa.] look at him!``.
    """
    lines = []
    for item in media:
        if item.kind == "audio":
            lines.append(f"[{item.label}] {item.transcript or ''}".strip())
        elif item.description:
            lines.append(f"[{item.label}: {item.description}]")
        else:
            lines.append(f"[{item.label}]")
    caption = caption.strip()
    if caption:
        lines.append(caption)
    if len(media) == 1 and media[0].kind == "image" and caption:
        return f"{lines[0]} {caption}"
    return "\n".join(lines)


def with_image_parts(messages: list[Any], media: list[MediaItem]) -> list[dict[str, Any]]:
    """``messages`` with the undescribed images added to the last (user) message as parts."""
    images = [m for m in media if m.kind == "image" and not m.description]
    if not images or not messages:
        return messages
    last = dict(messages[-1])
    last["content"] = [
        {"type": "text", "text": str(last.get("content", ""))},
        *({"type": "image_url", "image_url": {"url": m.data_url}} for m in images),
    ]
    return [*messages[:-1], last]


async def _echo_transcripts(media: list[MediaItem], channel: Channel) -> None:
    for item in media:
        if item.kind == "audio" and item.transcript:
            quoted = "\n".join(f"> {line}" for line in item.transcript.splitlines() if line.strip())
            try:
                await channel.send(Reply(quoted))
            except Exception:
                log.exception("could not show the transcript back")


def spoken_text(markdown: str) -> str:
    """Reply text as it should be read aloud: Markdown marks removed."""
    return " ".join(_MARKDOWN.sub(" ", markdown).split())


def spoken_reply_mode(turn: Turn, channel: Channel) -> str:
    """How this turn's reply is spoken: ``none``, ``after`` the text, or ``instead`` of it.

    ``instead`` (a character's ``spoken_reply: voice-only``) needs a channel
    that plays audio; elsewhere the reply stays text.
    """
    options = media_options(turn.bot.settings, turn.tier, turn.character)
    user_spoke = any(item.kind == "audio" for item in turn.media)
    if options.speak == "never" or (options.speak == "mirror" and not user_spoke):
        return "none"
    if not isinstance(channel, AudioChannel):
        return "none"
    return "instead" if options.spoken_reply == "voice-only" else "after"


async def speak_reply(turn: Turn, channel: Channel) -> bool:
    """Send ``turn.reply_text`` as audio; whether it went out. Never raises.

    The caller decides when (:func:`spoken_reply_mode`); a reply over
    ``TTS_MAX_CHARS``, a failed synthesis or upload returns ``False``.
    """
    bot, settings = turn.bot, turn.bot.settings
    options = media_options(settings, turn.tier, turn.character)
    if not isinstance(channel, AudioChannel) or not options.tts_models:
        return False
    text = spoken_text(turn.reply_text)
    if not text or len(text) > settings.tts_max_chars:
        return False
    audio_format = channel.audio_format
    try:
        async with asyncio.timeout(settings.tts_timeout):
            data = await bot.plugins.first(
                "honeychat_synthesize_speech",
                text=text,
                voice=options.voice,
                audio_format=audio_format,
                turn=turn,
            )
            if data is None and bot.media_api is not None:
                data = await bot.media_api.synthesize(
                    text, voice=options.voice, audio_format=audio_format, models=options.tts_models
                )
        if not data:
            return False
        extension = "ogg" if audio_format == "opus" else audio_format
        audio = SpeechAudio(
            data=bytes(data),
            mime_type=SPEECH_MIME_TYPES.get(audio_format, "application/octet-stream"),
            filename=f"{turn.character.id}-reply.{extension}",
        )
        return await channel.send_audio(audio) is not None
    except Exception as error:
        log.warning("spoken reply not sent for %s: %s", turn.conversation.id, error)
        return False
