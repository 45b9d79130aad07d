"""Character cards built by the tests themselves: PNG chunks written with struct and zlib.

This is deliberately independent of honeychat.core.png_text, so a test that
reads an exported PNG here checks it the way another tool would.
"""

from __future__ import annotations

import base64
import copy
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def image_png(width: int = 4, height: int = 3, seed: int = 7) -> bytes:
    """A small RGB image with varied pixels (no text chunks)."""
    rows = b"".join(
        b"\0" + bytes((x * 40 + y * 7 + seed) % 256 for x in range(width * 3))
        for y in range(height)
    )
    return (
        SIGNATURE
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def b64(card: Any) -> str:
    return base64.b64encode(json.dumps(card).encode("utf-8")).decode("ascii")


def card_png(texts: dict[str, str], image: bytes | None = None) -> bytes:
    """``image`` (default: a small one) with a ``tEXt`` chunk per entry of ``texts`` before IEND."""
    image = image or image_png()
    assert image.endswith(chunk(b"IEND", b""))
    extra = b"".join(
        chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
        for key, value in texts.items()
    )
    return image[: -len(chunk(b"IEND", b""))] + extra + chunk(b"IEND", b"")


def read_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk, asserting each CRC (what a strict PNG reader does)."""
    assert data.startswith(SIGNATURE)
    pos, out = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        out.append((kind, body))
        pos += 12 + length
    assert out[-1][0] == b"IEND"
    return out


def read_card_chunks(data: bytes) -> dict[str, Any]:
    """The decoded card JSON of each ``chara``/``ccv3`` tEXt chunk."""
    found = {}
    for kind, body in read_chunks(data):
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            found[key.decode("latin-1")] = json.loads(base64.b64decode(value))
    return found


V2_CARD: dict[str, Any] = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Seraphina Vale",
        "description": "{{char}} is a forest guardian who speaks softly and protects travellers.",
        "personality": "gentle, wise, protective ✨ (très calme)",
        "scenario": "{{user}} wakes up in {{char}}'s glade after an accident.",
        "first_mes": "*{{char}} kneels beside you.* Easy, {{user}}. You're safe here.",
        "mes_example": "<START>\n{{user}}: Who are you?\n{{char}}: A keeper of this glade.\n"
        "<START>\n{{user}}: Where am I?\n{{char}}: Somewhere the wolves won't follow.",
        "creator_notes": "Best with a slow pace.\nSecond line of notes.",
        "system_prompt": "Write {{char}}'s next reply in a fictional roleplay. {{original}}",
        "post_history_instructions": "Stay in character as {{char}}; never speak for {{user}}.",
        "alternate_greetings": [
            "*The fire crackles.* You're awake, {{user}}.",
            "*Rain on the leaves.* Stay close to me.",
        ],
        "character_book": {
            "name": "Glade lore",
            "scan_depth": 3,
            "token_budget": 300,
            "recursive_scanning": False,
            "extensions": {"other_tool": {"x": 1}},
            "entries": [
                {
                    "keys": ["wolves", "wolf"],
                    "content": "The wolves of the eastern wood serve the Shadow King.",
                    "extensions": {"depth": 4},
                    "enabled": True,
                    "insertion_order": 10,
                    "case_sensitive": False,
                    "name": "wolves",
                    "priority": 5,
                    "id": 1,
                    "comment": "",
                    "selective": False,
                    "secondary_keys": [],
                    "constant": False,
                    "position": "after_char",
                },
                {
                    "keys": ["glade"],
                    "content": "The glade is hidden by an old enchantment.",
                    "extensions": {},
                    "enabled": True,
                    "insertion_order": 5,
                    "position": "before_char",
                    "use_regex": True,
                },
            ],
        },
        "tags": ["fantasy", "guardian"],
        "creator": "someone",
        "character_version": "1.2",
        "extensions": {"talkativeness": "0.5", "depth_prompt": {"prompt": "hi", "depth": 4}},
        "some_future_field": {"kept": [1, 2, 3]},
    },
}


def v3_card(name: str = "Seraphina Vale") -> dict[str, Any]:
    card = copy.deepcopy(V2_CARD)
    card["spec"], card["spec_version"] = "chara_card_v3", "3.0"
    card["data"]["name"] = name
    card["data"].update(
        {
            "nickname": "Sera",
            "group_only_greetings": ["Hello, all of you."],
            "creator_notes_multilingual": {"fr": "Lentement."},
            "source": ["https://example.invalid/card"],
            "creation_date": 1700000000,
            "modification_date": 1700000500,
            "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
        }
    )
    return card


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated data dir (``tmp_path/data``) and no character settings; CLI runs from ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    for name in ("CHARACTERS_DIR", "DEFAULT_CHARACTER", "MAX_PERSONA_CHARS", "HONEYCHAT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``honeychat ARGV``: exit code, stdout, stderr."""
    from honeychat.core.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
