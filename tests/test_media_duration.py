"""Recording lengths read from each accepted format's own headers (the duration limit's
second check, for platforms that report none), and ``None`` where the headers do not say."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from honeychat.core.media.duration import audio_duration
from honeychat.testing.media import voice_note


def wav(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(1)
        file.setframerate(rate)
        file.writeframes(b"\x80" * int(seconds * rate))
    return out.getvalue()


def ogg_page(granule: int, payload: bytes) -> bytes:
    return b"OggS\x00\x00" + struct.pack("<q", granule) + b"\x00" * 12 + payload


def opus(seconds: float, pre_skip: int = 312) -> bytes:
    head = b"OpusHead\x01\x01" + struct.pack("<H", pre_skip) + b"\x80\xbb\x00\x00\x00\x00\x00"
    samples = int(seconds * 48000) + pre_skip
    return ogg_page(0, head) + ogg_page(samples // 2, b"audio") + ogg_page(samples, b"end")


def vorbis(seconds: float, rate: int = 44100) -> bytes:
    head = b"\x01vorbis" + struct.pack("<IBI", 0, 2, rate) + b"\x00" * 13
    return ogg_page(0, head) + ogg_page(int(seconds * rate), b"x") + ogg_page(-1, b"y")


def flac(seconds: float, rate: int = 44100) -> bytes:
    packed = (rate << 44) | (1 << 41) | (15 << 36) | int(seconds * rate)
    info = b"\x00" * 10 + packed.to_bytes(8, "big") + b"\x00" * 16
    return b"fLaC" + b"\x80\x00\x00\x22" + info


def box(kind: bytes, content: bytes) -> bytes:
    return struct.pack(">I", 8 + len(content)) + kind + content


def m4a(seconds: float, version: int = 0) -> bytes:
    timescale = 44100
    if version == 1:
        mvhd = b"\x01\x00\x00\x00" + struct.pack(">QQIQ", 0, 0, timescale, int(seconds * timescale))
    else:
        mvhd = b"\x00\x00\x00\x00" + struct.pack(">IIII", 0, 0, timescale, int(seconds * timescale))
    ftyp = box(b"ftyp", b"M4A \x00\x00\x00\x00")
    return ftyp + box(b"free", b"\x00" * 9) + box(b"moov", box(b"mvhd", mvhd + b"\x00" * 80))


def ebml(element: int, payload: bytes) -> bytes:
    element_bytes = element.to_bytes((element.bit_length() + 7) // 8, "big")
    return element_bytes + bytes([0x80 | len(payload)]) + payload if len(payload) < 127 else b""


def webm(seconds: float | None) -> bytes:
    header = ebml(0x1A45DFA3, ebml(0x4282, b"webm"))
    info = ebml(0x2AD7B1, (1_000_000).to_bytes(3, "big"))
    if seconds is not None:
        info += ebml(0x4489, struct.pack(">d", seconds * 1000))
    # The segment's size is "unknown" (0x01FFFFFFFFFFFFFF), as live recordings write it.
    segment = b"\x18\x53\x80\x67" + b"\x01\xff\xff\xff\xff\xff\xff\xff"
    return header + segment + ebml(0x1549A966, info) + ebml(0x1654AE6B, b"\x00" * 4)


def mp3(seconds: float, *, xing: bool) -> bytes:
    # MPEG-1 layer III, 128 kbit/s, 44.1 kHz, stereo: 417 bytes and 1152 samples a frame.
    frame_header = b"\xff\xfb\x90\x00"
    frames = int(seconds * 44100 / 1152)
    if xing:
        first = frame_header + b"\x00" * 32 + b"Xing" + struct.pack(">II", 1, frames)
        return b"ID3\x04\x00\x00\x00\x00\x00\x05" + b"\x00" * 5 + first.ljust(417, b"\x00")
    return (frame_header + b"\x00" * 413) * frames


@pytest.mark.parametrize(
    ("data", "seconds"),
    [
        (wav(2.5), 2.5),
        (opus(7.25), 7.25),
        (vorbis(3.0), 3.0),
        (flac(12.0), 12.0),
        (m4a(61.5), 61.5),
        (m4a(4.0, version=1), 4.0),
        (webm(9.5), 9.5),
        (mp3(30.0, xing=True), 30.0),
        (mp3(30.0, xing=False), 30.0),
    ],
)
def test_lengths_come_from_each_formats_headers(data: bytes, seconds: float) -> None:
    # 1 %: a constant-bit-rate MP3 without a Xing header is an estimate from its size.
    assert audio_duration(data) == pytest.approx(seconds, rel=0.01)


@pytest.mark.parametrize(
    "data",
    [webm(None), b"fLaC\x00\x00", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"\x00" * 8, b"\x89PNG\r\n"],
)
def test_headers_that_do_not_say_give_none(data: bytes) -> None:
    assert audio_duration(data) is None


def test_the_test_voice_note_is_not_judged_long() -> None:
    assert (audio_duration(voice_note("hello")) or 0.0) < 1
