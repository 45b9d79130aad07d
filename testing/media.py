"""Sample media for tests: small files that start like the real formats.

The fakes understand them: :class:`~honeychat.testing.fake_llm.FakeLLM`
transcribes :func:`voice_note` bytes to the text given, and describes
:func:`png` images by their label, so a test can check that the right words
reached the right place. The bytes pass honeychat's type check by content.
"""

from __future__ import annotations

import re
import struct
import zlib

MARKER = b"honeychat-sample:"
_LABEL = re.compile(re.escape(MARKER) + rb"([^\x00]*)\x00")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(label: str = "a test picture", *, padding: int = 0) -> bytes:
    """A valid 1x1 PNG with ``label`` in a ``tEXt`` chunk (``padding`` bytes make it bigger)."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x80\x40")
    text = b"Comment\x00" + MARKER + label.encode() + b"\x00" + b" " * padding
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"tEXt", text)
        + _chunk(b"IDAT", pixels)
        + _chunk(b"IEND", b"")
    )


def voice_note(words: str) -> bytes:
    """Bytes that start like an OGG/Opus voice note; the fake transcriber hears ``words``."""
    return b"OggS\x00\x02" + b"\x00" * 20 + b"OpusHead" + MARKER + words.encode() + b"\x00"


def sample_label(data: bytes) -> str | None:
    """The words or label embedded by :func:`voice_note` or :func:`png`, if any."""
    found = _LABEL.search(data)
    return found.group(1).decode(errors="replace") if found else None
