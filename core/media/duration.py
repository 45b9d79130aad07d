"""How long a recording is, read from its own headers (no decoding, no extra dependency).

Telegram and Discord report a voice note's length; Slack's file objects and
plain audio attachments do not. So the duration limit is also checked on the
downloaded bytes, for every format the type check accepts:

* OGG (Opus, Vorbis): the last page's granule position over the sample rate;
* WAV: the ``data`` chunk's size over the byte rate of ``fmt ``;
* FLAC: total samples over the sample rate (``STREAMINFO``);
* MP4/M4A: the ``mvhd`` box's duration over its timescale;
* WebM: the ``Info`` element's ``Duration`` (browsers' live recordings may
  leave it out);
* MP3: the frame count of a Xing/Info header, else the size over the first
  frame's bit rate (constant bit rate assumed).

Every function returns ``None`` when the headers do not say: the caller then
relies on the size cap alone.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from honeychat.core.media.sniff import sniff

MAX_SECONDS = 24 * 3600.0
"""Longer results are treated as unreadable headers, not as real lengths."""


def audio_duration(data: bytes) -> float | None:
    """Seconds of audio in ``data``, or ``None`` when its headers do not tell."""
    found = sniff(data)
    if found is None or found.kind != "audio":
        return None
    reader = _READERS.get(found.extension)
    try:
        seconds = reader(data) if reader else None
    except (struct.error, IndexError, ValueError, ZeroDivisionError):
        return None
    if seconds is None or not 0 <= seconds <= MAX_SECONDS:
        return None
    return seconds


def _ogg(data: bytes) -> float | None:
    rate: float | None = None
    pre_skip = 0
    head = data.find(b"OpusHead")
    if 0 <= head < 512:
        rate = 48000.0  # Opus granules always count 48 kHz samples
        pre_skip = struct.unpack_from("<H", data, head + 10)[0]
    else:
        vorbis = data.find(b"\x01vorbis")
        if 0 <= vorbis < 512:
            rate = float(struct.unpack_from("<I", data, vorbis + 12)[0])
    if not rate:
        return None
    page = len(data)
    while (page := data.rfind(b"OggS", 0, page)) >= 0:
        granule = struct.unpack_from("<q", data, page + 6)[0]
        if granule >= 0:  # -1: no packet ends on this page
            return max(0, granule - pre_skip) / rate
    return None


def _wav(data: bytes) -> float | None:
    byte_rate = 0
    offset = 12
    while offset + 8 <= len(data):
        kind, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if kind == b"fmt ":
            byte_rate = struct.unpack_from("<I", data, offset + 16)[0]
        elif kind == b"data":
            return size / byte_rate if byte_rate else None
        offset += 8 + size + (size & 1)
    return None


def _flac(data: bytes) -> float | None:
    if data[4] & 0x7F != 0:  # the first metadata block must be STREAMINFO
        return None
    packed = int.from_bytes(data[18:26], "big")
    rate = packed >> 44
    samples = packed & ((1 << 36) - 1)
    return samples / rate if rate and samples else None


def _mp4(data: bytes) -> float | None:
    moov = _box(data, 0, len(data), b"moov")
    if moov is None:
        return None
    mvhd = _box(data, moov[0], moov[1], b"mvhd")
    if mvhd is None:
        return None
    start = mvhd[0]
    if data[start] == 1:
        timescale, duration = struct.unpack_from(">IQ", data, start + 20)
    else:
        timescale, duration = struct.unpack_from(">II", data, start + 12)
    return duration / timescale if timescale else None


def _box(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """The (start, end) of the content of the first ``kind`` box between ``start`` and ``end``."""
    offset = start
    while offset + 8 <= end:
        size = struct.unpack_from(">I", data, offset)[0]
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, offset + 8)[0]
            header = 16
        elif size == 0:
            size = end - offset
        if size < header:
            return None
        if data[offset + 4 : offset + 8] == kind:
            return offset + header, min(offset + size, end)
        offset += size
    return None


_EBML_SEGMENT, _EBML_INFO = 0x18538067, 0x1549A966
_EBML_TIMECODE_SCALE, _EBML_DURATION = 0x2AD7B1, 0x4489


def _webm(data: bytes) -> float | None:
    offset = 0
    info_end: int | None = None
    scale = 1_000_000  # nanoseconds per Duration unit, when TimecodeScale is absent
    duration: float | None = None
    while offset < len(data) and (info_end is None or offset < info_end):
        element, offset = _vint(data, offset, keep_marker=True)
        size, offset = _vint(data, offset, keep_marker=False)
        if element == _EBML_SEGMENT:
            continue  # descend: its children follow
        if element == _EBML_INFO:
            info_end = offset + size if size is not None else len(data)
            continue
        if size is None:
            return None
        payload = data[offset : offset + size]
        if element == _EBML_TIMECODE_SCALE:
            scale = int.from_bytes(payload, "big")
        elif element == _EBML_DURATION and info_end is not None:
            duration = struct.unpack(">f" if size == 4 else ">d", payload)[0]
        offset += size
    return duration * scale / 1e9 if duration is not None else None


def _vint(data: bytes, offset: int, *, keep_marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length integer at ``offset``: (value, offset after it).

    A size with every value bit set means "unknown" (``None``).
    """
    first = data[offset]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError("not an EBML integer")
    raw = int.from_bytes(data[offset : offset + length], "big")
    if keep_marker:
        return raw, offset + length
    value = raw & ((1 << (7 * length)) - 1)
    unknown = value == (1 << (7 * length)) - 1
    return (None if unknown else value), offset + length


_MP3_BITRATES = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3(data: bytes) -> float | None:
    start = 0
    if data.startswith(b"ID3"):
        size = data[6:10]
        start = 10 + ((size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3])
    frame = data.find(b"\xff", start)
    while frame >= 0 and frame + 4 <= len(data) and data[frame + 1] & 0xE0 != 0xE0:
        frame = data.find(b"\xff", frame + 1)
    if frame < 0 or frame + 4 > len(data):
        return None
    header = int.from_bytes(data[frame : frame + 4], "big")
    version = (header >> 19) & 3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    if version == 1 or (header >> 17) & 3 != 1:  # reserved version, or not layer III
        return None
    bitrate = _MP3_BITRATES[1 if version == 3 else 2][(header >> 12) & 15] * 1000
    rate_index = (header >> 10) & 3
    if rate_index == 3:
        return None
    rate = _MP3_RATES[version][rate_index]
    mono = (header >> 6) & 3 == 3
    side = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    xing = frame + 4 + side
    if data[xing : xing + 4] in (b"Xing", b"Info"):
        flags = struct.unpack_from(">I", data, xing + 4)[0]
        if flags & 1:
            frames = struct.unpack_from(">I", data, xing + 8)[0]
            return frames * (1152 if version == 3 else 576) / rate
    return (len(data) - frame) * 8 / bitrate if bitrate else None


_READERS: dict[str, Callable[[bytes], float | None]] = {
    "ogg": _ogg,
    "wav": _wav,
    "flac": _flac,
    "m4a": _mp4,
    "webm": _webm,
    "mp3": _mp3,
}
