"""What a newcomer reads from `honeychat memory` and `honeychat doctor`: counts that match
what is held, errors for names that match nothing, and the right setting blamed."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_env import cli_env

from honeychat.core.cli import main
from honeychat.testing.fake_llm import FakeLLM

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM.start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def run(
    tmp_path: Path,
    llm: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Run]:
    """``run(*argv, stdin="")`` runs the real CLI in-process; returns (code, stdout, stderr)."""
    env = cli_env(
        tmp_path,
        llm,
        EMBEDDING_BACKEND="openai",
        EMBEDDING_BASE_URL=llm.base_url,
        EMBEDDING_API_KEY="test",
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("REDIS_URL", "CHROMA_URL", "OPENROUTER_API_KEY", "HONEYCHAT_CONFIG"):
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield run


def test_memory_show_counts_what_is_held_and_refuses_unknown_names(run: Run) -> None:
    code, _, _ = run("chat", "--user", "tester", stdin="hello\nhow are you\n")
    assert code == 0
    code, out, _ = run("memory", "show", "--user", "tester")
    assert code == 0
    assert out.splitlines()[0] == (
        "Conversation terminal:tester:luna: 0 summaries and 4 recent messages "
        "(messages numbered up to #4, summarized through #0)"
    )

    code, out, _ = run("memory", "clear", "--user", "tester")
    assert code == 0
    code, out, _ = run("memory", "show", "--user", "tester")
    assert out.splitlines()[0].startswith(
        "Conversation terminal:tester:luna: 0 summaries and 0 recent messages"
    )

    code, out, err = run("memory", "show", "--user", "tester", "--character", "zzz")
    assert code == 2 and out == ""
    assert "no character 'zzz'. Available: " in err
    code, out, err = run("memory", "show", "--user", "tester", "--platform", "tg")
    assert code == 2 and out == ""
    assert "nothing stored for platform 'tg'" in err


def test_doctor_blames_the_setting_that_is_wrong_in_one_sentence(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDDING_BACKEND", "minilmm")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    code, out, _ = run("doctor")
    assert code == 1
    lines = {line.split(":", 1)[0]: line for line in out.splitlines()}
    assert lines["✗ embeddings"] == (
        "✗ embeddings: EMBEDDING_BACKEND='minilmm' is not one of minilm, chroma-default, openai."
    )
    assert "CHROMA_URL" not in lines["✗ chroma"]
    assert "REDIS_URL" in lines["✗ redis"]
    assert ".." not in out


def test_memory_clear_deletes_kept_images(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from honeychat.testing.media import png

    monkeypatch.setenv("MEDIA_KEEP_IMAGES", "true")
    picture = tmp_path / "kite.png"
    picture.write_bytes(png("a red kite"))
    code, out, _ = run("chat", "--user", "tester", stdin=f"/image {picture} look\n")
    assert code == 0 and "I see: a red kite." in out
    media = [p for p in tmp_path.rglob("*") if p.parent.parent.name == "media" and p.is_file()]
    assert [p.read_bytes() for p in media] == [picture.read_bytes()]
    code, _, _ = run("memory", "clear", "--user", "tester")
    assert code == 0 and not media[0].exists()


def test_memory_shows_and_clears_a_space(run: Run) -> None:
    from honeychat.core.bot import Bot
    from honeychat.core.settings import Settings
    from honeychat.testing.pytest_plugin import send

    async def seed() -> None:
        async with Bot(Settings()) as bot:
            space = {"is_direct": False, "space_id": "g1", "user_name": "Sam"}
            await send(bot, "the trip is on Friday", user="sam", platform="terminal", **space)

    asyncio.run(seed())
    code, out, _ = run("memory", "show", "--space", "g1")
    assert code == 0
    assert out.splitlines()[0].startswith("Conversation terminal:space:g1:luna: 0 summaries and 1")
    code, out, _ = run("memory", "clear", "--space", "g1")
    assert code == 0 and out.strip() == "Cleared terminal:space:g1:luna."
    code, out, _ = run("memory", "show", "--space", "g1")
    assert "0 recent messages" in out.splitlines()[0]
