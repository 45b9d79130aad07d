"""`honeychat chat` in a real pseudo-terminal (pexpect), against the fake LLM.

Each test spawns the real command on a pty, types keys as a user would and
reads what the terminal shows. Embeddings come from the fake LLM's
``/embeddings`` (EMBEDDING_BACKEND=openai) so no model loads: what is under
test is the terminal, not retrieval.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pyte
import pytest
from cli_env import cli_env

from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.responders import is_summary_request

TIMEOUT = 60
ROWS, COLUMNS = 30, 160
UP = "\x1b[A"
LEFT = "\x1b[D"
PROMPT = "you> "
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM.start_in_thread()
    yield server
    server.stop()


def _env(data_dir: Path, llm: FakeLLM, **extra: str) -> dict[str, str]:
    return cli_env(
        data_dir,
        llm,
        EMBEDDING_BACKEND="openai",
        EMBEDDING_BASE_URL=llm.base_url,
        EMBEDDING_API_KEY="test",
        TERM="xterm",
        # pexpect is no terminal emulator: it would leave prompt_toolkit's cursor
        # position request unanswered (a real terminal answers it).
        PROMPT_TOOLKIT_NO_CPR="1",
        **extra,
    )


class Terminal:
    """The real command on a pty, and what a VT100 screen (pyte) shows of its output."""

    def __init__(self, data_dir: Path, llm: FakeLLM, *args: str, **env: str) -> None:
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "honeychat.core.cli", "chat", "--user", "tester", *args],
            env=_env(data_dir, llm, **env),
            encoding="utf-8",
            codec_errors="replace",
            timeout=TIMEOUT,
            dimensions=(ROWS, COLUMNS),
        )
        self.output = io.StringIO()
        self.child.logfile_read = self.output
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self._stream = pyte.Stream(self.screen)
        self._fed = 0
        self.wait_for_prompt()

    def lines(self) -> list[str]:
        """The screen's lines now, trailing blanks removed."""
        text = self.output.getvalue()
        self._stream.feed(text[self._fed :])
        self._fed = len(text)
        return [line.rstrip() for line in self.screen.display]

    def wait_for(self, wanted: str, timeout: float = TIMEOUT) -> list[str]:
        """Read output until a screen line contains ``wanted``; returns the screen."""
        deadline = time.monotonic() + timeout
        while not any(wanted in line for line in self.lines()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{wanted!r} never shown; screen:\n" + "\n".join(self.lines()))
            with contextlib.suppress(pexpect.TIMEOUT):
                self.child.expect(r"[\s\S]+", timeout=0.2)
        return self.lines()

    def wait_for_prompt(self) -> None:
        """Wait until the cursor sits on an empty ``you> `` line."""
        deadline = time.monotonic() + TIMEOUT
        while not (
            self.lines()[self.screen.cursor.y] == PROMPT.rstrip()
            and self.screen.cursor.x == len(PROMPT)
        ):
            if time.monotonic() > deadline:
                raise AssertionError("no prompt; screen:\n" + "\n".join(self.lines()))
            with contextlib.suppress(pexpect.TIMEOUT):
                self.child.expect(r"[\s\S]+", timeout=0.2)

    def finish(self) -> int:
        """Wait for the process to end; its exit status."""
        self.child.expect(pexpect.EOF)
        self.lines()
        self.child.close()
        return int(self.child.exitstatus)


def user_texts(llm: FakeLLM) -> list[str]:
    """What each chat request carried as the user's latest message."""
    return [
        r.messages[-1]["content"]
        for r in llm.chat_requests
        if not is_summary_request(r.json) and r.messages[-1]["role"] == "user"
    ]


def assert_left_on_a_clean_line(term: Terminal) -> None:
    """The shell's next prompt starts at the beginning of a line of its own."""
    assert term.screen.cursor.x == 0
    assert term.lines()[term.screen.cursor.y] == ""


def test_three_sessions_of_a_user_at_a_terminal(tmp_path: Path, llm: FakeLLM) -> None:
    """One user's three runs of `honeychat chat` (each run costs a process start, so the
    checks share them): editing and leaving; choosing a character, history, /forget and
    Ctrl-C; then the character kept and a long multi-line paste."""
    # 1. Plain `honeychat chat`: the default character, Luna.
    term = Terminal(tmp_path, llm)
    assert any(line.startswith("Luna: ") for line in term.lines())  # the greeting
    # The embedding model was made ready before the greeting, not at the first message.
    assert any(r.path.endswith("/embeddings") for r in llm.requests)
    # Arrow keys edit the line: "helo", Left, Left, "l" -> "hello".
    term.child.send("helo" + LEFT + LEFT + "l\r")
    term.wait_for("Luna: I hear you: hello")  # replies carry the speaker's name
    term.wait_for_prompt()
    # Up recalls the previous line; nothing like ^[[A reaches the message.
    term.child.send(UP + " again\r")
    term.wait_for("Luna: I hear you: hello again")
    term.wait_for_prompt()
    term.child.send("/help\r")
    screen = term.wait_for("/quit - Leave the chat")
    assert any(line.startswith("Luna: I'm Luna.") for line in screen)
    assert any(line.startswith("/image PATH [caption]") for line in screen)
    term.wait_for_prompt()
    term.child.sendcontrol("d")  # Ctrl-D on an empty line leaves
    assert term.finish() == 0
    assert_left_on_a_clean_line(term)
    assert user_texts(llm) == ["hello", "hello again"]
    assert not any("^[" in line for line in term.lines())
    history = tmp_path / "terminal" / "history-tester"
    assert "hello again" in history.read_text()

    # 2. `--character marcus`: it says Marcus becomes the default.
    term = Terminal(tmp_path, llm, "--character", "marcus")
    assert any("Marcus is now your character" in line for line in term.lines())
    # The history outlives the process: Up, Up recalls the line before /help.
    term.child.send(UP + UP + "\r")
    term.wait_for("Marcus: I hear you: hello again")
    term.wait_for_prompt()
    assert user_texts(llm)[-1] == "hello again"
    # /forget erases what was typed too.
    term.child.send("/forget confirm\r")
    term.wait_for("has forgotten")
    term.wait_for_prompt()
    assert "hello" not in (history.read_text() if history.exists() else "")
    # Ctrl-C quits at once, without Enter, and sends nothing.
    term.child.send("half a thought")
    term.child.sendcontrol("c")
    assert term.finish() == 0
    assert_left_on_a_clean_line(term)
    assert not any("half a thought" in text for text in user_texts(llm))

    # 3. Plain `honeychat chat` again: Marcus, without a word about it; a long paste.
    lines = [f"line {i:04d} " + "x" * 90 for i in range(200)]
    pasted = "\n".join(lines)
    assert len(pasted) > 20_000  # far beyond a terminal's 4095-character line limit
    llm.requests.clear()
    term = Terminal(tmp_path, llm, MAX_MESSAGE_CHARS="12000")
    assert not any("now your character" in line for line in term.lines())
    term.child.send(PASTE_START + pasted + PASTE_END)
    term.child.send("\r")
    term.wait_for("Marcus: I hear you: line 0000")
    term.wait_for("I only read the first 12000 characters")
    term.wait_for_prompt()
    assert user_texts(llm) == [pasted[:12000]]  # one message, every line up to the limit
    # Ctrl-C while a reply streams stops that reply, and the chat goes on.
    llm.script([" ".join(f"word{i}" for i in range(400))])
    llm.chunk_delay = 0.05
    term.child.send("tell me a long story\r")
    term.wait_for("Marcus: word0 word1")
    term.child.sendcontrol("c")
    screen = term.wait_for("[…stopped]")
    llm.chunk_delay = 0
    term.wait_for_prompt()
    assert not any("word399" in line or "^C" in line for line in screen)
    term.child.send("go on\r")
    term.wait_for("Marcus: I hear you: go on")
    stopped = llm.chat_requests[-1].messages[-2]
    assert stopped["role"] == "assistant" and stopped["content"].startswith("word0 word1")
    assert stopped["content"].endswith(" […stopped]")
    term.wait_for_prompt()
    term.child.sendcontrol("d")
    assert term.finish() == 0
