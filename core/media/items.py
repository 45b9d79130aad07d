"""The media types plugins see: a downloaded, checked item, and a channel that can play audio."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from honeychat.core.types import SentMessage

MediaKind = Literal["image", "audio"]


@dataclass(slots=True)
class MediaItem:
    """One image or audio file of a message, downloaded and checked by content.

    Plugins may replace ``data`` (and then ``mime_type``/``extension``) in
    ``honeychat_media_received``, e.g. to resize an image. The core fills
    ``transcript`` (audio) and ``description`` (images, with a vision model).
    """

    kind: MediaKind
    source: str
    """The attachment's kind as the adapter reported it: ``photo``, ``voice``, ``audio``, ``file``..."""
    data: bytes
    mime_type: str
    """Detected from the bytes (``image/png``, ``audio/ogg``...)."""
    extension: str
    name: str | None = None
    """The file name the sender gave, if any (never trusted for the type)."""
    duration: float | None = None
    transcript: str | None = None
    description: str | None = None

    @property
    def filename(self) -> str:
        """A safe file name with the detected extension, for multipart uploads."""
        return f"{self.kind}.{self.extension}"

    @property
    def data_url(self) -> str:
        """The bytes as a ``data:`` URL, as OpenAI-style ``image_url`` parts take them."""
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"

    @property
    def label(self) -> str:
        """How the item is named in the user's turn text: ``photo``, ``voice message``..."""
        if self.kind == "audio":
            return "voice message" if self.source == "voice" else "audio message"
        return "photo" if self.source == "photo" else "image"


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    """A spoken reply ready to send."""

    data: bytes
    mime_type: str
    filename: str
    duration: float | None = None


@runtime_checkable
class AudioChannel(Protocol):
    """A :class:`~honeychat.core.types.Channel` that can also send audio (spoken replies).

    ``audio_format`` is the ``/audio/speech`` ``response_format`` the platform
    plays best: ``opus`` for Telegram voice notes, ``mp3`` elsewhere.
    """

    audio_format: str

    async def send_audio(self, audio: SpeechAudio) -> SentMessage | None:
        """Send ``audio`` as a voice note or audio attachment; ``None`` when it failed."""
