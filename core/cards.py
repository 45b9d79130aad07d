"""Character Card V2/V3 import and export (JSON files and PNG images).

A card is ``{"spec": "chara_card_v2" | "chara_card_v3", "spec_version", "data": {...}}``;
a PNG card carries it base64-encoded in a ``tEXt`` chunk named ``chara`` (V2)
or ``ccv3`` (V3, preferred when both exist). Importing writes a YAML
character: the fields honeychat uses become its fields, the others are kept
under ``card:``, so exporting it again gives back the same ``data``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from honeychat.core import png_text
from honeychat.core.characters import (
    DEFAULT_MAX_PERSONA_CHARS,
    Character,
    CharacterError,
    parse_character,
)

MAX_CARD_BYTES = 50 * 1024 * 1024
V2, V3 = "chara_card_v2", "chara_card_v3"
SPEC_VERSIONS = {V2: "2.0", V3: "3.0"}

# Card data field -> honeychat field, for the fields honeychat uses.
FIELD_MAP = {
    "name": "name",
    "description": "persona",
    "personality": "personality",
    "scenario": "scenario",
    "first_mes": "greeting",
    "alternate_greetings": "alternate_greetings",
    "mes_example": "mes_example",
    "system_prompt": "system_prompt",
    "post_history_instructions": "post_history_instructions",
    "character_book": "lorebook",
}
# honeychat-only fields carried in a card's data.extensions.honeychat.
HONEYCHAT_ONLY = ("description", "example_dialogue", "model", "memory", "error_message")
V1_ROOT = ("name", "description", "personality", "scenario", "first_mes", "mes_example")


class CardError(ValueError):
    """A card cannot be read or written; the message is one line for the user."""


@dataclass(slots=True)
class Imported:
    """A card turned into a YAML character, with what was and was not mapped."""

    character: Character
    data: dict[str, Any]
    """The YAML document written."""
    image: bytes | None
    mapped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    """Card fields honeychat does not use, kept under ``card:`` for export."""
    unsupported: list[str] = field(default_factory=list)
    """Things the card asks for that honeychat does not do."""


# Reading


def read_card(raw: bytes) -> tuple[dict[str, Any], bytes | None, list[str]]:
    """The card JSON in ``raw`` (a PNG or JSON file), the PNG image if any, and warnings."""
    if len(raw) > MAX_CARD_BYTES:
        raise CardError(f"file is {len(raw):,} bytes, more than the {MAX_CARD_BYTES:,} allowed")
    if raw.startswith(png_text.SIGNATURE):
        return _card_from_png(raw)
    try:
        card = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardError(f"neither a PNG nor a JSON card: {exc}") from None
    except RecursionError:
        raise CardError("card JSON is nested too deeply") from None
    return _checked(card, "JSON file"), None, []


def _card_from_png(raw: bytes) -> tuple[dict[str, Any], bytes, list[str]]:
    try:
        texts = png_text.text_chunks(raw)
    except png_text.PngError as exc:
        raise CardError(str(exc)) from None
    warnings: list[str] = []
    for name in ("ccv3", "chara"):
        if name not in texts:
            continue
        try:
            card = _checked(_decode_chunk(texts[name], name), f"'{name}' chunk")
        except CardError as exc:
            if name == "ccv3" and "chara" in texts:
                warnings.append(f"{exc}; used the V2 'chara' chunk instead")
                continue
            raise
        image = png_text.without_text(raw, {"ccv3", "chara"})
        return card, image, warnings
    raise CardError("PNG has no character card (no 'chara' or 'ccv3' tEXt chunk)")


def _decode_chunk(text: str, name: str) -> Any:
    stripped = text.strip()
    try:
        payload = (
            stripped
            if stripped.startswith("{")
            else base64.b64decode(stripped, validate=True).decode("utf-8")
        )
        return json.loads(payload)
    except (binascii.Error, ValueError) as exc:
        raise CardError(f"'{name}' chunk is not base64-encoded card JSON: {exc}") from None
    except RecursionError:
        raise CardError(f"'{name}' chunk: card JSON is nested too deeply") from None


def _checked(card: Any, where: str) -> dict[str, Any]:
    """The card as V2/V3 (a V1 card, flat fields without ``spec``, is lifted to V2)."""
    if not isinstance(card, dict):
        raise CardError(f"{where}: a card must be a JSON object")
    spec = card.get("spec")
    if spec is None and "name" in card and "data" not in card:
        data = {key: card[key] for key in V1_ROOT if key in card}
        return {"spec": V2, "spec_version": "2.0", "data": data}
    if spec not in SPEC_VERSIONS:
        raise CardError(
            f"{where}: unsupported spec {spec!r} (expected 'chara_card_v2' or 'chara_card_v3')"
        )
    if not isinstance(card.get("data"), dict):
        raise CardError(f"{where}: {spec} card has no 'data' object")
    return card


# Card -> YAML character


def slug(name: str) -> str:
    """An id made from a display name (a-z, 0-9, '-'; at most 32 characters)."""
    ascii_name = name.encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:32].strip("-")
    return text or "character"


def _picker_line(data: dict[str, Any]) -> str:
    for source in (data.get("creator_notes"), data.get("description")):
        if isinstance(source, str):
            line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
            if line:
                return line if len(line) <= 100 else line[:99].rstrip() + "…"
    return ""


def card_to_character(
    card: dict[str, Any],
    *,
    character_id: str,
    image: bytes | None = None,
    max_persona_chars: int = DEFAULT_MAX_PERSONA_CHARS,
) -> Imported:
    """Map a checked card to a YAML character document; raises :class:`CardError` if invalid."""
    data = dict(card["data"])
    doc: dict[str, Any] = {"id": character_id}
    mapped: list[str] = []
    extensions = data.get("extensions")
    own: dict[str, Any] = {}
    if isinstance(extensions, dict) and isinstance(extensions.get("honeychat"), dict):
        extensions = dict(extensions)
        own = extensions.pop("honeychat")
        data["extensions"] = extensions
    for card_field, ours in FIELD_MAP.items():
        if card_field in data and data[card_field] is not None:
            doc[ours] = data.pop(card_field)
            mapped.append(card_field if card_field == ours else f"{card_field} -> {ours}")
    if "greeting" not in doc:
        doc["greeting"] = ""
    if "persona" not in doc:
        doc["persona"] = ""
    for key in HONEYCHAT_ONLY:
        if key in own:
            doc[key] = own[key]
    doc.setdefault("description", _picker_line({**data, "description": doc["persona"]}))
    if image is not None:
        doc["avatar"] = f"{character_id}.png"
    kept: dict[str, Any] = {"spec": card["spec"], "spec_version": card.get("spec_version")}
    kept.update(data)
    extra_root = {
        k: v for k, v in card.items() if k not in ("spec", "spec_version", "data", *V1_ROOT)
    }
    if extra_root:
        kept["root_fields"] = extra_root
    doc["card"] = kept
    result = parse_character(
        dict(doc), Path(f"{character_id}.yaml"), max_persona_chars=max_persona_chars
    )
    if isinstance(result, CharacterError):
        where = f"field '{_card_name(result.field)}': " if result.field else ""
        raise CardError(f"card cannot be used: {where}{result.message}")
    return Imported(
        character=result,
        data=doc,
        image=image,
        mapped=mapped,
        kept=[k for k in kept if k not in ("spec", "spec_version")],
        unsupported=_unsupported(doc.get("lorebook"), data),
    )


def _card_name(field_path: str | None) -> str:
    if not field_path:
        return ""
    head, _, rest = field_path.partition(".")
    card_field = next((c for c, ours in FIELD_MAP.items() if ours == head), head)
    return card_field + (f".{rest}" if rest else "")


def _unsupported(book: Any, data: dict[str, Any]) -> list[str]:
    notes = []
    entries = book.get("entries") if isinstance(book, dict) else None
    if isinstance(entries, list):
        regex = sum(1 for e in entries if isinstance(e, dict) and e.get("use_regex"))
        decorated = sum(
            1 for e in entries if isinstance(e, dict) and str(e.get("content", "")).startswith("@@")
        )
        if decorated:
            notes.append(
                f"{decorated} lorebook entries use V3 decorators (@@...): inserted as text"
            )
        if regex:
            notes.append(
                f"{regex} lorebook entries ask for regex keys: matched as plain text "
                "(user-supplied regex never runs)"
            )
    extensions = data.get("extensions")
    if isinstance(extensions, dict) and extensions.get("depth_prompt"):
        notes.append("extensions.depth_prompt (a note inserted at a chat depth): kept, not used")
    if data.get("assets"):
        notes.append("assets (kept, not displayed)")
    if data.get("group_only_greetings"):
        notes.append("group_only_greetings (kept, not used)")
    return notes


# YAML character -> card


def character_to_card(character: Character) -> dict[str, Any]:
    """The card for a character: its card's spec (V2 by default) and the same ``data``."""
    kept = dict(character.card)
    spec = kept.pop("spec", None) or V2
    spec_version = kept.pop("spec_version", None) or SPEC_VERSIONS.get(spec, "2.0")
    root_fields = kept.pop("root_fields", {})
    data: dict[str, Any] = {
        "name": character.name,
        "description": character.persona,
        "personality": character.personality,
        "scenario": character.scenario,
        "first_mes": character.greeting,
        "mes_example": character.mes_example or _examples_as_card_text(character),
        "creator_notes": character.description,
        "system_prompt": character.system_prompt,
        "post_history_instructions": character.post_history_instructions,
        "alternate_greetings": list(character.alternate_greetings),
        "tags": [],
        "creator": "",
        "character_version": "",
        "extensions": {},
    }
    if character.lorebook is not None:
        data["character_book"] = _book_for_card(character)
    data.update(kept)
    own = _honeychat_extension(character)
    if own:
        existing = data.get("extensions")
        data["extensions"] = {**(existing if isinstance(existing, dict) else {}), "honeychat": own}
    card: dict[str, Any] = dict(root_fields)
    card.update({key: data[key] for key in V1_ROOT if key in data})
    card.update({"spec": spec, "spec_version": spec_version, "data": data})
    return card


def _book_for_card(character: Character) -> dict[str, Any]:
    assert character.lorebook is not None
    book = character.lorebook.model_dump(exclude_unset=True)
    book.setdefault("extensions", {})
    entries = []
    for index, entry in enumerate(character.lorebook.entries):
        out = entry.model_dump(exclude_unset=True)
        out.setdefault("keys", [])
        out.setdefault("content", "")
        out.setdefault("extensions", {})
        out.setdefault("enabled", True)
        out.setdefault("insertion_order", index)
        entries.append(out)
    book["entries"] = entries
    return book


def _examples_as_card_text(character: Character) -> str:
    return "\n".join(
        f"<START>\n{{{{user}}}}: {ex.user}\n{{{{char}}}}: {ex.character}"
        for ex in character.example_dialogue
    )


def _honeychat_extension(character: Character) -> dict[str, Any]:
    """honeychat-only settings that differ from the defaults, so a card brings them back."""
    own: dict[str, Any] = {}
    defaults = Character.model_fields
    if character.model is not None:
        own["model"] = character.model
    memory = character.memory.model_dump(exclude_none=True)
    if memory:
        own["memory"] = memory
    if character.error_message != defaults["error_message"].default:
        own["error_message"] = character.error_message
    if character.example_dialogue and character.mes_example:
        own["example_dialogue"] = [ex.model_dump() for ex in character.example_dialogue]
    derived = _picker_line(
        {"creator_notes": character.card.get("creator_notes"), "description": character.persona}
    )
    if "creator_notes" in character.card and character.description != derived:
        own["description"] = character.description
    return own


def card_json(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False, indent=2)


def card_png(card: dict[str, Any], image: bytes | None) -> bytes:
    """A PNG carrying the card: ``chara`` (V2) always, ``ccv3`` too for a V3 card."""
    v2 = {**card, "spec": V2, "spec_version": "2.0"}
    texts = {"chara": _b64(v2)}
    if card.get("spec") == V3:
        texts["ccv3"] = _b64(card)
    try:
        return png_text.with_text(image or png_text.plain_image(), texts)
    except png_text.PngError as exc:
        raise CardError(f"the character's image is not a usable PNG: {exc}") from None


def _b64(card: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8")).decode("ascii")


# Writing files atomically


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line strings as literal blocks, so personas stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def _staged(target: Path, content: bytes) -> Iterator[Path]:
    """Write ``content`` to a temporary file beside ``target``; moved into place on success."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_files(files: dict[Path, bytes]) -> None:
    """Write every file or none: all are staged first, then moved into place."""
    with _stage_all(list(files.items())):
        pass


@contextmanager
def _stage_all(items: list[tuple[Path, bytes]]) -> Iterator[None]:
    if not items:
        yield
        return
    (target, content), rest = items[0], items[1:]
    with _staged(target, content), _stage_all(rest):
        yield


def import_card(
    raw: bytes,
    directory: Path,
    *,
    character_id: str | None = None,
    taken: Collection[str] = (),
    max_persona_chars: int = DEFAULT_MAX_PERSONA_CHARS,
) -> tuple[Imported, Path, list[str]]:
    """Import a card into ``directory``; returns what was imported, the YAML path and warnings."""
    card, image, warnings = read_card(raw)
    name = card["data"].get("name")
    if not isinstance(name, str) or not name.strip():
        raise CardError("card has no name")
    new_id = character_id or slug(name)
    yaml_path = directory / f"{new_id}.yaml"
    if new_id in taken or yaml_path.exists() or (directory / f"{new_id}.yml").exists():
        raise CardError(f"a character with id '{new_id}' already exists; choose another with --id")
    imported = card_to_character(
        card, character_id=new_id, image=image, max_persona_chars=max_persona_chars
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = {yaml_path: to_yaml(imported.data).encode("utf-8")}
    if image is not None:
        files[directory / f"{new_id}.png"] = image
    write_files(files)
    return imported, yaml_path, warnings
