"""Characters load from YAML; a bad file names its file, field and line, and the rest still load."""

from pathlib import Path

import pytest
from card_kit import cli_home, run_cli

from honeychat.core.bot import Bot
from honeychat.core.characters import (
    Character,
    CharacterConfigError,
    CharacterError,
    CharacterRegistry,
    builtin_characters_dir,
    load_character_file,
)
from honeychat.core.doctor import check_characters
from honeychat.core.settings import Settings

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


# Configuration errors (issue 12, item 6): each is an error with one clear message.


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code, out, err = run_cli(capsys, *argv)
    return code, out + err


env = cli_home


async def test_unknown_default_character_is_an_error_everywhere(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEFAULT_CHARACTER", "zzz")
    bot = Bot(Settings())
    with pytest.raises(CharacterConfigError, match=r"DEFAULT_CHARACTER=zzz: no such character"):
        await bot.start()
    check = await check_characters(Settings())
    assert not check.ok and "DEFAULT_CHARACTER=zzz" in check.detail
    code, output = _cli(["characters", "list"], capsys)
    assert code == 2 and output.count("DEFAULT_CHARACTER=zzz: no such character") == 1


def test_chat_with_an_unknown_default_character_exits_2_with_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEFAULT_CHARACTER", "zzz")
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    code, output = _cli(["chat", "--user", "ada"], capsys)
    assert code == 2
    assert output == (
        "honeychat: DEFAULT_CHARACTER=zzz: no such character (loaded: luna, marcus, pixel)\n"
    )


async def test_a_broken_file_for_the_default_is_an_error_not_a_fallback(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A user's luna.yaml that is broken must not silently become the built-in Luna.
    mine = env / "mine"
    mine.mkdir()
    write(mine, "luna.yaml", "id: luna\nname: My Luna\ngreeting: hi\n")
    monkeypatch.setenv("CHARACTERS_DIR", str(mine))
    with pytest.raises(CharacterConfigError, match="DEFAULT_CHARACTER=luna: its file is broken"):
        await Bot(Settings()).start()
    check = await check_characters(Settings())
    assert not check.ok and "luna.yaml" in check.detail
    code, output = _cli(["characters", "validate"], capsys)
    assert code == 2 and output.count("persona") == 2  # the ✗ line and the config error


def test_list_and_validate_exit_non_zero_and_print_each_problem_once(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = env / "mine"
    mine.mkdir()
    write(mine, "ada.yaml", GOOD)
    write(mine, "broken.yaml", "id: broken\nname: Broken\ngreeting: hi\n")
    monkeypatch.setenv("CHARACTERS_DIR", str(mine))
    for action in ("list", "validate"):
        code, output = _cli(["characters", action], capsys)
        assert code == 1, action
        assert output.count("broken.yaml") == 1, output
        assert "ada" in output and "luna" in output
    code, output = _cli(["characters", "validate", str(mine / "ada.yaml")], capsys)
    assert code == 0


def test_persona_size_has_a_limit_users_can_raise(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = GOOD.replace("persona: You are Ada", "persona: You are Ada" + " big" * 25_000)
    path = write(env, "ada.yaml", huge)
    error = load_character_file(path)
    assert isinstance(error, CharacterError) and error.field == "persona" and error.line == 3
    assert "100,0" in error.message and "over the limit of 32,000" in error.message
    assert "MAX_PERSONA_CHARS" in error.message
    assert isinstance(load_character_file(path, max_persona_chars=200_000), Character)
    monkeypatch.setenv("MAX_PERSONA_CHARS", "200000")
    code, output = _cli(["characters", "validate", str(path)], capsys)
    assert code == 0 and "✓" in output
    monkeypatch.setenv("MAX_PERSONA_CHARS", "1000")
    code, output = _cli(["characters", "validate", str(path)], capsys)
    assert code == 1 and "raise MAX_PERSONA_CHARS" in output


def test_unknown_memory_keys_are_rejected_with_the_allowed_ones(tmp_path: Path) -> None:
    text = GOOD + "memory:\n  recent_messages: 4\n  retreival_k: 3\n"
    error = load_character_file(write(tmp_path, "ada.yaml", text))
    assert isinstance(error, CharacterError)
    assert error.field == "memory.retreival_k" and error.line == 7
    assert "unknown key (allowed: recent_messages, retrieval_k)" in error.message


def test_avatar_must_be_a_file_beside_the_character(tmp_path: Path) -> None:
    error = load_character_file(write(tmp_path, "ada.yaml", GOOD + "avatar: ../../etc/passwd\n"))
    assert isinstance(error, CharacterError) and error.field == "avatar"
    ok = load_character_file(write(tmp_path, "ada.yaml", GOOD + "avatar: ada.png\n"))
    assert isinstance(ok, Character) and ok.avatar_path == tmp_path / "ada.png"
