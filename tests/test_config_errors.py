"""A configuration mistake gives one clear line naming the variable, and exit code 2, from every command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from honeychat.core.cli import main

COMMANDS = [
    ["chat"],
    ["run"],
    ["serve"],
    ["doctor"],
    ["memory", "show"],
    ["characters", "list"],
    ["plugins", "list"],
]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the developer's directory
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("TIERS", '{"free": {"model": ', "not valid JSON"),
        ("PLUGIN_CONFIG", "{not json}", "not valid JSON"),
        ("TIERS", '{"free": {"max_output_tokens": 0}}', "greater than or equal to 1"),
        ("MEMORY_READ_TIMEOUT", "soon", "valid number"),
    ],
)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_a_bad_variable_is_one_line_and_exit_2(
    command: list[str],
    variable: str,
    value: str,
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(command) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert variable in lines[0] and says in lines[0]
    assert value not in lines[0] or len(value) < 8  # values are not echoed back
    assert captured.out == ""


@pytest.mark.parametrize("command", [["chat", "--user", ""], ["memory", "show", "--user", "  "]])
def test_an_empty_user_is_refused(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    assert main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--user" in err[0]


def test_a_broken_config_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "honeychat.yaml"
    config.write_text("tiers: [unclosed\n  - x: {\n")
    monkeypatch.setenv("HONEYCHAT_CONFIG", str(config))
    assert main(["doctor"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "configuration" in err[0]


async def test_the_bot_ignores_a_message_without_a_user_id(bot_factory: Any) -> None:
    from honeychat.testing.pytest_plugin import send

    bot = await bot_factory()
    channel = await send(bot, "hello", user=" ")
    assert channel.texts == []
    assert bot_factory.llm.chat_requests == []


def test_a_bad_adapter_variable_is_named_by_run_and_doctor_without_its_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Adapter settings live in the adapter's config model; a mistake there is still one line."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:planted-token-value")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_PORT", "eighty")
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    # Logged once when the plugin loads, then as the reason nothing runs.
    loaded, reason = [line for line in err.splitlines() if "TELEGRAM_WEBHOOK_PORT" in line]
    assert "plugin 'telegram': invalid setting TELEGRAM_WEBHOOK_PORT: Input should be" in loaded
    assert "No platform is running: plugin 'telegram': invalid setting" in reason
    assert "eighty" not in err and "planted-token-value" not in err

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    (check,) = [line for line in out.splitlines() if line.startswith("✗ plugins")]
    assert "plugin 'telegram': invalid setting TELEGRAM_WEBHOOK_PORT: Input should be" in check
    assert "eighty" not in out
