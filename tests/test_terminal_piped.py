"""`honeychat chat` with piped input: one message per line, bare replies on stdout."""

from __future__ import annotations

import io

import pytest

from honeychat.adapters.terminal import run_chat
from honeychat.testing.pytest_plugin import BotFactory


async def test_piped_replies_are_bare_and_notices_go_to_stderr(
    bot_factory: BotFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = await bot_factory()
    stdin = io.StringIO("hello\n\nhow are you\n/quit\nnever read\n")
    stdout = io.StringIO()
    code = await run_chat(bot, user="tester", character="marcus", stdin=stdin, stdout=stdout)
    assert code == 0
    # No greeting, no prompt, no speaker label: only the replies, one per line.
    assert stdout.getvalue() == "I hear you: hello\nI hear you: how are you\n"
    assert "Marcus is now your character" in capsys.readouterr().err

    # Choosing the character it already is says nothing.
    stdout = io.StringIO()
    await run_chat(bot, user="tester", character="marcus", stdin=io.StringIO("hi\n"), stdout=stdout)
    assert "now your character" not in capsys.readouterr().err
    assert stdout.getvalue() == "I hear you: hi\n"


async def test_an_unknown_character_is_an_error(
    bot_factory: BotFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = await bot_factory()
    code = await run_chat(bot, user="t", character="zzz", stdin=io.StringIO("hi\n"))
    assert code == 2
    assert "No character 'zzz'. Available: " in capsys.readouterr().err
