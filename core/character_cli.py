"""``honeychat characters list|validate|import|export``.

Exit codes: 0 when everything is fine, 1 when a file is broken or a card
cannot be imported/exported, 2 for a configuration error (a missing or
broken ``DEFAULT_CHARACTER``). Each problem is printed once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from honeychat.core.characters import (
    CharacterConfigError,
    CharacterError,
    CharacterRegistry,
    character_dirs,
    load_character_file,
    scan_directories,
    user_characters_dir,
)
from honeychat.core.settings import Settings


def _fail(message: str, code: int = 1) -> int:
    print(f"honeychat: {message}", file=sys.stderr)
    return code


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "import":
        return import_(settings, args)
    if args.action == "export":
        return export(settings, args)
    if args.action == "validate" and args.files:
        return validate_files(settings, [Path(f) for f in args.files])
    return list_(settings)


def validate_files(settings: Settings, files: list[Path]) -> int:
    bad = 0
    for file in files:
        result = load_character_file(file, max_persona_chars=settings.max_persona_chars)
        if isinstance(result, CharacterError):
            print(f"✗ {result}")
            bad += 1
        else:
            print(f"✓ {file}: {result.id} ({result.name})")
    return 1 if bad else 0


def list_(settings: Settings) -> int:
    """Every loaded character, then each broken file once; non-zero if anything is wrong."""
    found, errors = scan_directories(
        character_dirs(settings), max_persona_chars=settings.max_persona_chars
    )
    default_id = settings.default_character
    for character in sorted(found.values(), key=lambda c: c.id):
        marker = "*" if character.id == default_id else " "
        print(f"{marker} {character.id:<12} {character.name:<12} {character.description}")
    for error in errors:
        print(f"✗ {error}")
    try:
        CharacterRegistry(list(found.values()), errors, default_id)
    except CharacterConfigError as exc:
        return _fail(str(exc), 2)
    return 1 if errors else 0


def import_(settings: Settings, args: argparse.Namespace) -> int:
    from honeychat.core.cards import CardError, import_card

    if len(args.files) != 1:
        return _fail("import takes one card file (PNG or JSON)", 2)
    source = Path(args.files[0])
    try:
        raw = source.read_bytes()
    except OSError as exc:
        return _fail(f"cannot read {source}: {exc.strerror or exc}")
    directory = Path(args.dir) if args.dir else user_characters_dir(settings)
    found, _ = scan_directories(character_dirs(settings))
    try:
        imported, path, warnings = import_card(
            raw,
            directory,
            character_id=args.id,
            taken=set(found),
            max_persona_chars=settings.max_persona_chars,
        )
    except CardError as exc:
        return _fail(f"{source}: {exc}")
    except OSError as exc:
        return _fail(f"cannot write into {directory}: {exc.strerror or exc}")
    character = imported.character
    print(f"Imported {character.name} from {source} ({imported.data['card']['spec']}) into {path}")
    print("Mapped: " + ", ".join(imported.mapped))
    if imported.kept:
        print("Kept for export, not used by honeychat: " + ", ".join(imported.kept))
    if character.lorebook is not None:
        print(f"Lorebook: {len(character.lorebook.entries)} entries")
    for note in [*imported.unsupported, *warnings]:
        print(f"Note: {note}")
    if args.dir and settings.characters_dir != Path(args.dir):
        print(f"(Set CHARACTERS_DIR={directory} so honeychat loads it.)")
    print(character.id)
    return 0


def export(settings: Settings, args: argparse.Namespace) -> int:
    from honeychat.core.cards import CardError, card_json, card_png, character_to_card, write_files

    if len(args.files) != 1:
        return _fail("export takes one character id", 2)
    found, _ = scan_directories(character_dirs(settings))
    character = found.get(args.files[0])
    if character is None:
        return _fail(f"no character '{args.files[0]}' (see `honeychat characters list`)")
    card = character_to_card(character)
    out = Path(args.out or f"{character.id}.{args.format}")
    try:
        if args.format == "json":
            content = card_json(card).encode("utf-8")
        else:
            image = None
            if character.avatar_path is not None and character.avatar_path.is_file():
                image = character.avatar_path.read_bytes()
            content = card_png(card, image)
        write_files({out.resolve(): content})
    except CardError as exc:
        return _fail(f"{character.id}: {exc}")
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc.strerror or exc}")
    print(f"Exported {character.name} ({card['spec']}) to {out}")
    return 0
