"""Character Card V2/V3 import and export through the real CLI, on cards the tests build."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from card_kit import (
    SIGNATURE,
    V2_CARD,
    b64,
    card_png,
    chunk,
    cli_home,
    image_png,
    read_card_chunks,
    read_chunks,
    run_cli,
    v3_card,
)

from honeychat.core.characters import CharacterRegistry, character_dirs
from honeychat.core.settings import Settings

home = cli_home
run = run_cli


def write(path: Path, content: bytes | str) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def imported_dir(home: Path) -> Path:
    return home / "data" / "characters"


def test_v2_png_import_writes_yaml_reports_and_ends_with_the_id(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = write(home / "sera.png", card_png({"chara": b64(V2_CARD)}))
    code, out, err = run(capsys, "characters", "import", str(card))
    assert (code, err) == (0, "")
    lines = out.strip().splitlines()
    assert lines[-1] == "seraphina-vale"
    assert "description -> persona" in out and "first_mes -> greeting" in out
    assert "creator_notes" in out and "tags" in out  # kept, not used
    assert "regex" in out  # the use_regex entry is reported as not supported
    yaml_file = imported_dir(home) / "seraphina-vale.yaml"
    umask = os.umask(0)
    os.umask(umask)
    assert yaml_file.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    registry = CharacterRegistry.from_settings(Settings())
    sera = registry.get("seraphina-vale")
    assert sera is not None and sera.name == "Seraphina Vale"
    assert sera.alternate_greetings[1] == "*Rain on the leaves.* Stay close to me."
    assert sera.lorebook is not None and len(sera.lorebook.entries) == 2
    assert sera.description == "Best with a slow pace."
    # The picture is kept beside the YAML, without the card chunks.
    assert sera.avatar_path is not None
    kinds = [kind for kind, _ in read_chunks(sera.avatar_path.read_bytes())]
    assert b"tEXt" not in kinds and b"IDAT" in kinds


def test_v3_chunk_is_preferred_when_both_exist(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = write(
        home / "both.png", card_png({"chara": b64(V2_CARD), "ccv3": b64(v3_card("Sera Three"))})
    )
    code, out, _ = run(capsys, "characters", "import", str(card))
    assert code == 0 and out.strip().splitlines()[-1] == "sera-three"
    assert "chara_card_v3" in out


def test_broken_v3_chunk_falls_back_to_v2_with_a_warning(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = write(home / "b.png", card_png({"ccv3": "!!!not base64!!!", "chara": b64(V2_CARD)}))
    code, out, _ = run(capsys, "characters", "import", str(card), "--id", "sera")
    assert code == 0 and out.strip().splitlines()[-1] == "sera"
    assert "'ccv3' chunk is not base64" in out and "used the V2 'chara' chunk" in out


@pytest.mark.parametrize("make", [lambda: V2_CARD, lambda: v3_card()], ids=["v2", "v3"])
def test_import_then_json_export_is_lossless(
    home: Path, capsys: pytest.CaptureFixture[str], make: Any
) -> None:
    original = copy.deepcopy(make())
    card = write(home / "in.json", json.dumps(original))
    assert run(capsys, "characters", "import", str(card), "--id", "sera")[0] == 0
    code, _out, err = run(capsys, "characters", "export", "sera", "--format", "json")
    assert (code, err) == (0, "")
    exported = json.loads((home / "sera.json").read_text(encoding="utf-8"))
    assert exported["spec"] == original["spec"]
    assert exported["spec_version"] == original["spec_version"]
    assert exported["data"] == original["data"]
    assert exported["name"] == original["data"]["name"]  # V1 mirror for old readers


def test_png_export_carries_the_imported_image_and_reads_back(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = image_png(width=5, height=5, seed=99)
    card = write(home / "in.png", card_png({"ccv3": b64(v3_card())}, image=picture))
    run(capsys, "characters", "import", str(card), "--id", "sera")
    code, _, err = run(capsys, "characters", "export", "sera", "--out", "out.png")
    assert (code, err) == (0, "")
    exported = (home / "out.png").read_bytes()
    pixels = [body for kind, body in read_chunks(exported) if kind in (b"IHDR", b"IDAT")]
    assert pixels == [body for kind, body in read_chunks(picture) if kind in (b"IHDR", b"IDAT")]
    cards = read_card_chunks(exported)
    assert cards["ccv3"]["data"] == v3_card()["data"]
    assert cards["chara"]["spec"] == "chara_card_v2"  # V2 readers get a card too
    assert cards["chara"]["data"]["name"] == "Seraphina Vale"
    # And honeychat itself reads it back as the same character.
    code, out, _ = run(capsys, "characters", "import", "out.png", "--id", "sera2")
    assert code == 0 and out.strip().splitlines()[-1] == "sera2"


def test_builtin_character_exports_a_png_with_a_generated_image(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(capsys, "characters", "export", "luna")
    assert code == 0
    data = (home / "luna.png").read_bytes()
    kinds = [kind for kind, _ in read_chunks(data)]
    assert kinds[0] == b"IHDR" and b"IDAT" in kinds
    card = read_card_chunks(data)["chara"]
    assert card["data"]["name"] == "Luna"
    assert "{{user}}: I can't sleep again." in card["data"]["mes_example"]
    # Re-importing Luna's card restores honeychat's own settings (error message).
    code, _out, _ = run(capsys, "characters", "import", "luna.png", "--id", "luna-copy")
    luna = CharacterRegistry.from_settings(Settings()).get("luna-copy")
    assert code == 0 and luna is not None
    assert luna.error_message.startswith("Sorry, the clouds rolled in")


def test_import_into_dir_and_refuses_an_existing_id(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = write(home / "c.json", json.dumps(V2_CARD))
    target = home / "mine"
    code, out, _ = run(capsys, "characters", "import", str(card), "--dir", str(target))
    assert code == 0 and (target / "seraphina-vale.yaml").is_file()
    assert "CHARACTERS_DIR" in out
    before = (target / "seraphina-vale.yaml").read_bytes()
    code, _, err = run(capsys, "characters", "import", str(card), "--dir", str(target))
    assert code == 1 and "already exists" in err and "--id" in err
    assert (target / "seraphina-vale.yaml").read_bytes() == before
    code, _, err = run(capsys, "characters", "import", str(card), "--id", "luna")
    assert code == 1 and "'luna' already exists" in err


def _lorebook_card(entries: int) -> dict[str, Any]:
    card = copy.deepcopy(V2_CARD)
    entry = {"keys": ["k"], "content": "c", "extensions": {}, "enabled": True, "insertion_order": 0}
    card["data"]["character_book"]["entries"] = [entry] * entries
    return card


def _bad_cards() -> dict[str, tuple[bytes, str]]:
    png = card_png({"chara": b64(V2_CARD)})
    corrupt = bytearray(png)
    corrupt[-20] ^= 0xFF  # inside the tEXt chunk: its CRC no longer matches
    huge = copy.deepcopy(V2_CARD)
    huge["data"]["description"] = "x" * 1_000_000
    return {
        "not-a-card": (b"hello there", "neither a PNG nor a JSON card"),
        "truncated": (png[: len(png) // 2], "truncated PNG"),
        "corrupt": (bytes(corrupt), "CRC mismatch"),
        "no-chunk": (image_png(), "no 'chara' or 'ccv3' tEXt chunk"),
        "bad-base64": (card_png({"chara": "%%%"}), "not base64-encoded card JSON"),
        "bad-json-in-chunk": (card_png({"chara": "SW4="}), "not base64-encoded card JSON"),
        "wrong-spec": (
            json.dumps({"spec": "chara_card_v9", "data": {}}).encode(),
            "unsupported spec 'chara_card_v9'",
        ),
        "no-data": (json.dumps({"spec": "chara_card_v2"}).encode(), "has no 'data' object"),
        "huge-field": (json.dumps(huge).encode(), "field 'description': is 1,000,000 characters"),
        "huge-book": (
            json.dumps(_lorebook_card(20_000)).encode(),
            "field 'character_book.entries'",
        ),
        "bad-signature-png": (SIGNATURE[:4] + b"junk", "neither a PNG nor a JSON card"),
        "zero-chunk-length-lie": (
            SIGNATURE + b"\xff\xff\xff\xffIHDR",
            "claims",
        ),
        "array": (b"[1, 2]", "must be a JSON object"),
        "deeply-nested": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        "bad-entry": (
            json.dumps(
                {**V2_CARD, "data": {**V2_CARD["data"], "character_book": {"entries": ["x"]}}}
            ).encode(),
            "character_book.entries.0",
        ),
        "ok-ihdr-only": (SIGNATURE + chunk(b"IHDR", b"\0" * 13), "truncated PNG"),
    }


@pytest.mark.parametrize("name", list(_bad_cards()))
def test_bad_cards_give_one_line_and_write_nothing(
    name: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, expected = _bad_cards()[name]
    path = write(home / f"{name}.card", raw)
    code, out, err = run(capsys, "characters", "import", str(path))
    assert code == 1, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err and "Traceback" not in err + out
    directory = imported_dir(home)
    assert not directory.exists() or list(directory.iterdir()) == []


def test_import_is_atomic_when_a_file_cannot_be_placed(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The picture cannot be moved into place (a directory has its name): no YAML either."""
    directory = imported_dir(home)
    (directory / "sera.png").mkdir(parents=True)
    card = write(home / "c.png", card_png({"chara": b64(V2_CARD)}))
    code, _, err = run(capsys, "characters", "import", str(card), "--id", "sera")
    assert code == 1 and "cannot write" in err
    assert sorted(p.name for p in directory.iterdir()) == ["sera.png"]
    assert (directory / "sera.png").is_dir()


def test_imported_character_loads_with_the_other_characters(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(home / "c.json", json.dumps(V2_CARD))
    run(capsys, "characters", "import", "c.json", "--id", "sera")
    assert imported_dir(home) in character_dirs(Settings())
    code, out, _ = run(capsys, "characters", "list")
    assert code == 0 and "sera" in out and "luna" in out


def test_flat_v1_card_is_lifted_to_v2(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v1 = {
        "name": "Old Timer",
        "description": "{{char}} is a retired sailor who tells long stories.",
        "first_mes": "Ahoy, {{user}}.",
        "mes_example": "",
        "personality": "",
        "scenario": "",
    }
    card = write(home / "v1.png", card_png({"chara": b64(v1)}))
    code, out, _ = run(capsys, "characters", "import", str(card))
    assert code == 0 and out.strip().splitlines()[-1] == "old-timer"
    character = CharacterRegistry.from_settings(Settings()).get("old-timer")
    assert character is not None and character.greeting == "Ahoy, {{user}}."


def test_yaml_character_exports_and_imports_back_the_same(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = home / "mine"
    mine.mkdir()
    (mine / "ada.yaml").write_text(
        """\
id: ada
name: Ada
description: A patient mathematician.
persona: You are Ada, a patient mathematician who explains with small examples.
greeting: Hello, {{user}}!
example_dialogue:
  - user: I hate fractions.
    character: Then let's cut a pizza.
memory:
  recent_messages: 6
model: some/model
lorebook:
  entries:
    - keys: [exam]
      content: The exam is on Friday.
      priority: 3
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("CHARACTERS_DIR", str(mine))
    assert run(capsys, "characters", "export", "ada", "--format", "json")[0] == 0
    assert run(capsys, "characters", "import", "ada.json", "--id", "ada2")[0] == 0
    registry = CharacterRegistry.from_settings(Settings())
    before, after = registry.get("ada"), registry.get("ada2")
    assert before is not None and after is not None
    skip = {"id", "card", "mes_example", "example_dialogue"}
    assert after.model_dump(exclude=skip) == before.model_dump(exclude=skip)
    assert "I hate fractions." in after.mes_example
