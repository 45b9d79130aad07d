"""Characters load from YAML; a bad file names its file, field and line, and the rest still load."""

from pathlib import Path

from honeychat.core.characters import (
    Character,
    CharacterError,
    CharacterRegistry,
    builtin_characters_dir,
    load_character_file,
)

GOOD = """\
id: ada
name: Ada
persona: You are Ada, a patient mathematician who explains things with small examples.
greeting: Hello! Shall we count something?
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_characters_are_distinct_and_valid() -> None:
    registry = CharacterRegistry.load(builtin_characters_dir())
    assert registry.errors == []
    assert len(registry) >= 3
    personas = {c.persona for c in registry.all()}
    assert len(personas) == len(registry)
    assert registry.default.id == "luna"


def test_good_file_loads(tmp_path: Path) -> None:
    result = load_character_file(write(tmp_path, "ada.yaml", GOOD))
    assert isinstance(result, Character)
    assert result.name == "Ada"
    assert result.memory.retrieval_k is None


def test_missing_persona_names_file_field_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "id: broken\nname: Broken\ngreeting: hi\n")
    error = load_character_file(path)
    assert isinstance(error, CharacterError)
    assert error.field == "persona"
    assert error.line == 1
    assert "broken.yaml" in str(error) and "persona" in str(error) and "required" in str(error)


def test_wrong_type_points_at_its_line(tmp_path: Path) -> None:
    text = GOOD + "memory:\n  retrieval_k: lots\n"
    error = load_character_file(write(tmp_path, "ada.yaml", text))
    assert isinstance(error, CharacterError)
    assert error.field == "memory.retrieval_k"
    assert error.line == 6


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    error = load_character_file(write(tmp_path, "bad.yaml", GOOD + "persona: [unclosed\n"))
    assert isinstance(error, CharacterError)
    assert "invalid YAML" in error.message
    assert error.line is not None and error.line >= 5


def test_unknown_field_is_rejected(tmp_path: Path) -> None:
    error = load_character_file(write(tmp_path, "ada.yaml", GOOD + "personna: typo\n"))
    assert isinstance(error, CharacterError)
    assert error.field == "personna"


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    write(tmp_path, "ada.yaml", GOOD)
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "list.yaml", "- just\n- a list\n")
    registry = CharacterRegistry.load(builtin_characters_dir(), tmp_path)
    assert "ada" in registry and "luna" in registry
    assert sorted(e.path.name for e in registry.errors) == ["empty.yaml", "list.yaml"]


def test_bad_id_is_rejected(tmp_path: Path) -> None:
    error = load_character_file(write(tmp_path, "x.yaml", GOOD.replace("id: ada", "id: 'Bad Id!'")))
    assert isinstance(error, CharacterError)
    assert error.field == "id"
