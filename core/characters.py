"""Characters: personas loaded from YAML files and validated.

A bad file yields one :class:`CharacterError` naming the file, the field and
the line; the other characters still load. The fields follow Character Card
V2 where a card has the same idea (``scenario``, ``alternate_greetings``,
``mes_example``, ``post_history_instructions``, a lorebook); card fields
honeychat does not use are kept under ``card:`` so an export is lossless.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from honeychat.core.lorebook import Lorebook
from honeychat.core.settings import ImageMode

if TYPE_CHECKING:
    from honeychat.core.settings import Settings

log = logging.getLogger(__name__)

_ID_RULE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class ExampleExchange(BaseModel):
    """One example exchange that shows the character's voice."""

    user: str = Field(min_length=1)
    character: str = Field(min_length=1)


class MemoryOverrides(BaseModel):
    """Per-character changes to the memory settings."""

    model_config = {"extra": "forbid"}

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
    spoken_reply: Literal["text-and-voice", "voice-only"] = "text-and-voice"
    """When answering by voice: the text then its spoken version, or the voice note instead of
    the text (on platforms that play audio; the text is sent when speech fails)."""


class Character(BaseModel):
    """A persona the bot can speak as."""

    model_config = {"extra": "forbid"}

    id: str
    name: str = Field(min_length=1, max_length=64)
    persona: str
    """The system prompt's core: who the character is and how they speak (a card's ``description``)."""
    greeting: str
    """What the character says on /start (a card's ``first_mes``)."""
    description: str = ""
    """One line shown in character pickers."""
    personality: str = ""
    """A short summary of the character's personality (card field of the same name)."""
    scenario: str = ""
    """The circumstances of the conversation (card field of the same name)."""
    system_prompt: str = ""
    """Instructions placed before everything else in the system prompt."""
    alternate_greetings: list[str] = Field(default_factory=list)
    """Other greetings /start may pick instead of ``greeting``."""
    example_dialogue: list[ExampleExchange] = Field(default_factory=list)
    mes_example: str = ""
    """Example dialogue in card form: blocks starting with ``<START>``, lines ``{{user}}:`` / ``{{char}}:``."""
    post_history_instructions: str = ""
    """Instructions sent after the chat history, just before the model answers."""
    lorebook: Lorebook | None = None
    avatar: str | None = None
    """An image file beside the YAML file, used when exporting a PNG card."""
    card: dict[str, Any] = Field(default_factory=dict)
    """Card fields honeychat does not use (creator, tags, extensions...), kept for export."""
    _source: Path | None = PrivateAttr(default=None)

    @property
    def avatar_path(self) -> Path | None:
        """The image file named by ``avatar``, beside the character's YAML file."""
        if not self.avatar or self._source is None:
            return None
        return self._source.parent / self.avatar

    model: str | None = None
    """A model overriding the tier's model for this character."""
    memory: MemoryOverrides = Field(default_factory=MemoryOverrides)
    error_message: str = "Sorry, I lost my train of thought for a moment. Could you say that again?"
    """What the character says when the LLM cannot answer."""
    media: MediaOptions = Field(default_factory=MediaOptions)
    """Images, voice and spoken replies for this character."""
    tools: list[str] | None = None
    """Tools this character may call, as name patterns (``mcp__weather__*``); ``None``: the
    default tools (built-in and plugin ones, not MCP); ``[]``: none. The tier bounds it."""

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _ID_RULE.match(value):
            raise ValueError(
                "must be 1-32 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
            )
        return value

    @field_validator("avatar")
    @classmethod
    def _plain_file_name(cls, value: str | None) -> str | None:
        if value is not None and (Path(value).name != value or value.startswith(".")):
            raise ValueError("must be a file name in the character's directory (no path)")
        return value

    @model_validator(mode="after")
    def _says_who_it_is(self) -> Character:
        if len((self.persona + self.personality + self.scenario).strip()) < 20:
            raise ValueError(
                "persona must describe the character in at least 20 characters "
                "(with personality and scenario)"
            )
        return self

    def prompt_fields(self) -> dict[str, str]:
        """The text fields sent to the model on every turn, by name."""
        fields = {
            "persona": self.persona,
            "personality": self.personality,
            "scenario": self.scenario,
            "system_prompt": self.system_prompt,
            "mes_example": self.mes_example,
            "post_history_instructions": self.post_history_instructions,
        }
        return {name: text for name, text in fields.items() if text}


DEFAULT_MAX_PERSONA_CHARS = 32_000
"""Default of ``MAX_PERSONA_CHARS``: the largest a prompt field of a character may be."""


class CharacterConfigError(RuntimeError):
    """The configured characters cannot be used (no character, or the default one is missing)."""


@dataclass(frozen=True, slots=True)
class CharacterError:
    """Why one character file could not be loaded."""

    path: Path
    message: str
    field: str | None = None
    line: int | None = None
    character_id: str | None = None
    """The id the file declares (or its file name), when it could be read."""

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


def _describe(error: Any, data: dict[str, Any]) -> str:
    """A readable message for one pydantic error (unknown keys list what is allowed)."""
    if error["type"] == "missing":
        return "is required but missing"
    if error["type"] == "extra_forbidden":
        loc = tuple(error["loc"])
        model: type[BaseModel] = MemoryOverrides if loc[:1] == ("memory",) else Character
        allowed = ", ".join(model.model_fields)
        return f"unknown key (allowed: {allowed})"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def parse_character(
    data: Any,
    path: Path,
    *,
    max_persona_chars: int = DEFAULT_MAX_PERSONA_CHARS,
    node: yaml.Node | None = None,
) -> Character | CharacterError:
    """Validate parsed YAML data as a character; ``path`` names it in errors."""
    if not isinstance(data, dict):
        return CharacterError(path, "expected a mapping of fields (id, name, persona, greeting...)")
    data.setdefault("id", path.stem)
    declared = data.get("id") if isinstance(data.get("id"), str) else path.stem
    try:
        character = Character.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        field = ".".join(str(part) for part in loc) or None
        line_loc = loc if first["type"] != "missing" else loc[:-1]
        return CharacterError(
            path,
            _describe(first, data),
            field=field,
            line=_line_of(node, line_loc),
            character_id=declared,
        )
    for name, text in character.prompt_fields().items():
        if len(text) > max_persona_chars:
            return CharacterError(
                path,
                f"is {len(text):,} characters, over the limit of {max_persona_chars:,} "
                "(it is sent on every turn; raise MAX_PERSONA_CHARS to allow it)",
                field=name,
                line=_line_of(node, (name,)),
                character_id=character.id,
            )
    return character


_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and its data, parsed once (libyaml if present)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


def load_character_file(
    path: Path, *, max_persona_chars: int = DEFAULT_MAX_PERSONA_CHARS
) -> Character | CharacterError:
    """Parse and validate one YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return CharacterError(path, f"cannot read file: {exc}", character_id=path.stem)
    try:
        node, data = _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        return CharacterError(
            path,
            f"invalid YAML: {problem}",
            line=mark.line + 1 if mark else None,
            character_id=path.stem,
        )
    result = parse_character(data, path, max_persona_chars=max_persona_chars, node=node)
    if isinstance(result, Character):
        result._source = path
    return result


def builtin_characters_dir() -> Path:
    """The directory of characters shipped with honeychat."""
    return Path(str(resources.files("honeychat") / "characters"))


def user_characters_dir(settings: Settings) -> Path:
    """Where imported characters go: ``CHARACTERS_DIR``, else ``characters`` under the data dir."""
    return settings.characters_dir or settings.data_dir / "characters"


def character_dirs(settings: Settings) -> list[Path]:
    """The directories characters load from, in override order."""
    dirs = [builtin_characters_dir()]
    imported = settings.data_dir / "characters"
    if imported.is_dir() and imported != settings.characters_dir:
        dirs.append(imported)
    if settings.characters_dir is not None:
        dirs.append(settings.characters_dir)
    return dirs


class CharacterRegistry:
    """Every loaded character, by id, with the errors of files that failed.

    Raises :class:`CharacterConfigError` when nothing loads, or when the
    default character is missing or its file is broken: answering as some
    other character without a word would hide the mistake.
    """

    def __init__(
        self, characters: list[Character], errors: list[CharacterError], default_id: str
    ) -> None:
        self._by_id = {c.id: c for c in characters}
        self.errors = errors
        if not self._by_id:
            raise CharacterConfigError(
                "no character could be loaded: " + "; ".join(map(str, errors))
            )
        broken = next((e for e in errors if e.character_id == default_id), None)
        if broken is not None:
            raise CharacterConfigError(
                f"DEFAULT_CHARACTER={default_id}: its file is broken: {broken}"
            )
        default = self._by_id.get(default_id)
        if default is None:
            known = ", ".join(sorted(self._by_id))
            raise CharacterConfigError(
                f"DEFAULT_CHARACTER={default_id}: no such character (loaded: {known})"
            )
        self.default = default

    @classmethod
    def load(
        cls,
        *directories: Path | None,
        default_id: str = "luna",
        max_persona_chars: int = DEFAULT_MAX_PERSONA_CHARS,
    ) -> CharacterRegistry:
        """Load ``*.yaml`` from each directory in order; later files override earlier ids."""
        found, errors = scan_directories(directories, max_persona_chars=max_persona_chars)
        return cls(list(found.values()), errors, default_id)

    @classmethod
    def from_settings(cls, settings: Settings) -> CharacterRegistry:
        """The characters the settings configure (built-in, imported, ``CHARACTERS_DIR``)."""
        return cls.load(
            *character_dirs(settings),
            default_id=settings.default_character,
            max_persona_chars=settings.max_persona_chars,
        )

    def get(self, character_id: str) -> Character | None:
        return self._by_id.get(character_id)

    def all(self) -> list[Character]:
        return sorted(self._by_id.values(), key=lambda c: c.id)

    def __contains__(self, character_id: object) -> bool:
        return character_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)


def scan_directories(
    directories: Sequence[Path | None], *, max_persona_chars: int = DEFAULT_MAX_PERSONA_CHARS
) -> tuple[dict[str, Character], list[CharacterError]]:
    """Every character in ``directories`` by id (later override earlier), and each broken file once."""
    found: dict[str, Character] = {}
    errors: list[CharacterError] = []
    for directory in directories:
        if directory is None:
            continue
        if not directory.is_dir():
            errors.append(CharacterError(directory, "characters directory does not exist"))
            continue
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            result = load_character_file(path, max_persona_chars=max_persona_chars)
            if isinstance(result, CharacterError):
                errors.append(result)
            else:
                found[result.id] = result
    return found, errors
