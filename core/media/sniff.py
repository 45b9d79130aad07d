"""What a file is, from its first bytes (never from its name or the sender's MIME type)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sniffed:
    """A recognised format: ``kind`` (``image`` or ``audio``), MIME type and file extension."""

    kind: str
    mime_type: str
    extension: str


_ISO_AUDIO_BRANDS = (b"M4A ", b"M4B ", b"isom", b"mp41", b"mp42", b"dash", b"iso2", b"3gp")


def sniff(data: bytes) -> Sniffed | None:
    """The format of ``data``, or ``None`` when it is none we accept.

    Images: the formats OpenAI-style vision accepts (JPEG, PNG, GIF, WebP).
    Audio: what ``/audio/transcriptions`` accepts (OGG/Opus, MP3, M4A/MP4,
    WAV, WebM, FLAC).
    """
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "image/jpeg", "jpg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "image/png", "png")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Sniffed("image", "image/gif", "gif")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Sniffed("image", "image/webp", "webp")
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return Sniffed("audio", "audio/wav", "wav")
    if head.startswith(b"OggS"):
        return Sniffed("audio", "audio/ogg", "ogg")
    if head.startswith(b"fLaC"):
        return Sniffed("audio", "audio/flac", "flac")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("audio", "audio/webm", "webm")
    if head[4:8] == b"ftyp" and head[8:12].startswith(_ISO_AUDIO_BRANDS):
        return Sniffed("audio", "audio/mp4", "m4a")
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE6 == 0xE2):
        # An ID3 tag, or an MPEG audio frame sync (11 bits set, layer III: 0xFFFB/0xFFF3/0xFFF2).
        return Sniffed("audio", "audio/mpeg", "mp3")
    return None
