"""Characters: personas loaded from YAML files and validated.

A bad file yields one :class:`CharacterError` naming the file, the field and
the line; the other characters still load.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from honeychat.core.settings import ImageMode

log = logging.getLogger(__name__)

_ID_RULE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class ExampleExchange(BaseModel):
    """One example exchange that shows the character's voice."""

    user: str = Field(min_length=1)
    character: str = Field(min_length=1)


class MemoryOverrides(BaseModel):
    """Per-character changes to the memory settings."""

    recent_messages: int | None = Field(default=None, ge=0)
    retrieval_k: int | None = Field(default=None, ge=0)


class MediaOptions(BaseModel):
    """Per-character media settings (the ``media:`` block of a character file)."""

    model_config = {"extra": "forbid"}

    image_mode: ImageMode | None = None
    """Overrides the tier's and ``IMAGE_MODE``."""
    vision_model: str | None = None
    voice: str | None = None
    """The ``/audio/speech`` voice this character speaks with (default ``TTS_VOICE``)."""
    speak: Literal["never", "mirror", "always"] = "mirror"
    """When to answer by voice (with ``TTS_MODEL`` set): ``mirror`` answers a voice note by voice."""


class Character(BaseModel):
    """A persona the bot can speak as."""

    model_config = {"extra": "forbid"}

    id: str
    name: str = Field(min_length=1, max_length=64)
    persona: str = Field(min_length=20)
    """The system prompt's core: who the character is and how they speak."""
    greeting: str = Field(min_length=1)
    description: str = ""
    """One line shown in character pickers."""
    example_dialogue: list[ExampleExchange] = Field(default_factory=list)
    model: str | None = None
    """A model overriding the tier's model for this character."""
    memory: MemoryOverrides = Field(default_factory=MemoryOverrides)
    error_message: str = "Sorry, I lost my train of thought for a moment. Could you say that again?"
    """What the character says when the LLM cannot answer."""
    media: MediaOptions = Field(default_factory=MediaOptions)
    """Images, voice and spoken replies for this character."""

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _ID_RULE.match(value):
            raise ValueError(
                "must be 1-32 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
            )
        return value


@dataclass(frozen=True, slots=True)
class CharacterError:
    """Why one character file could not be loaded."""

    path: Path
    message: str
    field: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}"
        if self.line is not None:
            where += f":{self.line}"
        field = f" field '{self.field}':" if self.field else ""
        return f"{where}:{field} {self.message}"


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc``, or of its nearest ancestor."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for key in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            child = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            if child is None:
                return line
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def load_character_file(path: Path) -> Character | CharacterError:
    """Parse and validate one YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return CharacterError(path, f"cannot read file: {exc}")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        return CharacterError(
            path, f"invalid YAML: {problem}", line=mark.line + 1 if mark else None
        )
    if not isinstance(data, dict):
        return CharacterError(path, "expected a mapping of fields (id, name, persona, greeting...)")
    data.setdefault("id", path.stem)
    try:
        return Character.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        field = ".".join(str(part) for part in loc) or None
        message = first["msg"] if first["type"] != "missing" else "is required but missing"
        line_loc = loc if first["type"] != "missing" else loc[:-1]
        return CharacterError(path, message, field=field, line=_line_of(node, line_loc))


def builtin_characters_dir() -> Path:
    """The directory of characters shipped with honeychat."""
    return Path(str(resources.files("honeychat") / "characters"))


class CharacterRegistry:
    """Every loaded character, by id, with the errors of files that failed."""

    def __init__(
        self, characters: list[Character], errors: list[CharacterError], default_id: str
    ) -> None:
        self._by_id = {c.id: c for c in characters}
        self.errors = errors
        if not self._by_id:
            raise RuntimeError("no character could be loaded: " + "; ".join(map(str, errors)))
        self.default = self._by_id.get(default_id) or next(iter(self._by_id.values()))

    @classmethod
    def load(cls, *directories: Path | None, default_id: str = "luna") -> CharacterRegistry:
        """Load ``*.yaml`` from each directory in order; later files override earlier ids."""
        found: dict[str, Character] = {}
        errors: list[CharacterError] = []
        for directory in directories:
            if directory is None:
                continue
            if not directory.is_dir():
                errors.append(CharacterError(directory, "characters directory does not exist"))
                continue
            for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
                result = load_character_file(path)
                if isinstance(result, CharacterError):
                    log.error("character not loaded: %s", result)
                    errors.append(result)
                else:
                    found[result.id] = result
        return cls(list(found.values()), errors, default_id)

    def get(self, character_id: str) -> Character | None:
        return self._by_id.get(character_id)

    def all(self) -> list[Character]:
        return sorted(self._by_id.values(), key=lambda c: c.id)

    def __contains__(self, character_id: object) -> bool:
        return character_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)
