"""Reading and writing PNG ``tEXt`` chunks with the standard library.

Character cards travel inside PNG images: the card JSON, base64-encoded, in a
``tEXt`` chunk named ``chara`` (V2) or ``ccv3`` (V3). Only the chunk layout
is parsed here (signature, length, type, data, CRC); pixels are never decoded.
"""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHUNK_BYTES = 64 * 1024 * 1024


class PngError(ValueError):
    """The bytes are not a well-formed PNG."""


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk as ``(type, data)``, checked for length and CRC, up to ``IEND``."""
    if not data.startswith(SIGNATURE):
        raise PngError("not a PNG file (bad signature)")
    out: list[tuple[bytes, bytes]] = []
    pos = len(SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise PngError(f"truncated PNG: chunk header cut off at byte {pos}")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if length > MAX_CHUNK_BYTES:
            raise PngError(f"PNG chunk {kind!r} claims {length:,} bytes, more than allowed")
        end = pos + 8 + length
        if end + 4 > len(data):
            raise PngError(f"truncated PNG: chunk {kind.decode('latin-1')!r} cut off")
        body = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(kind + body) != crc:
            raise PngError(f"PNG chunk {kind.decode('latin-1')!r} is corrupt (CRC mismatch)")
        out.append((kind, body))
        pos = end + 4
        if kind == b"IEND":
            return out


def text_chunks(data: bytes) -> dict[str, str]:
    """``tEXt`` chunks by keyword (Latin-1 text, as the PNG spec defines it); first one wins."""
    found: dict[str, str] = {}
    for kind, body in chunks(data):
        if kind != b"tEXt":
            continue
        keyword, sep, text = body.partition(b"\0")
        if not sep:
            continue
        found.setdefault(keyword.decode("latin-1"), text.decode("latin-1"))
    return found


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_text(data: bytes, texts: dict[str, str]) -> bytes:
    """``data`` with its ``tEXt`` chunks named in ``texts`` replaced by the given values."""
    out = [SIGNATURE]
    for kind, body in chunks(without_text(data, set(texts))):
        if kind == b"IEND":
            out += [
                _chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
                for key, value in texts.items()
            ]
        out.append(_chunk(kind, body))
    return b"".join(out)


def without_text(data: bytes, names: set[str]) -> bytes:
    """``data`` without its ``tEXt`` chunks named in ``names``."""
    out = [SIGNATURE]
    for kind, body in chunks(data):
        if kind == b"tEXt" and body.partition(b"\0")[0].decode("latin-1") in names:
            continue
        out.append(_chunk(kind, body))
    return b"".join(out)


def plain_image(
    width: int = 256, height: int = 256, rgb: tuple[int, int, int] = (0x8A, 0x6F, 0xD6)
) -> bytes:
    """A PNG of one colour: the picture of a card exported without an image of its own."""
    row = b"\0" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        [
            SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(row * height, 9)),
            _chunk(b"IEND", b""),
        ]
    )
