"""The terminal: ``honeychat chat``.

Interactive on a TTY: a prompt_toolkit prompt (line editing, history kept
under the data directory, bracketed multi-line paste, Ctrl-C / Ctrl-D to
leave), the character's greeting, and streamed replies with the speaker's
name. With piped input it reads one message per line and writes each reply
to stdout, then exits at the end of input once pending summaries are written.
Choices (buttons elsewhere) are shown as the command to type.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from honeychat import hookimpl
from honeychat.core.bot import Bot
from honeychat.core.prompt import greeting
from honeychat.core.types import (
    ChannelLimits,
    ConversationKey,
    IncomingMessage,
    Reply,
    SentMessage,
)

PLATFORM = "terminal"
_QUIT = {"/quit", "/exit", "/bye"}
PROMPT = "you> "
HELP_EXTRA = (
    "/image PATH [caption] - Show me a picture from this computer\n"
    "/quit - Leave the chat (Ctrl-D or Ctrl-C work too; Ctrl-C during a reply stops the reply)"
)


@dataclass
class TerminalChannel:
    """Prints replies; streams by printing the new part of each edit.

    ``label`` (the speaker's name) starts each reply when set: the
    interactive chat sets it, piped output stays bare text.
    """

    out: TextIO
    interactive: bool
    label: str = ""
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by Ctrl-C while a reply streams: the core stops the reply (an InterruptibleChannel)."""
    limits: ChannelLimits = field(init=False)
    _printed: str = ""
    _count: int = 0

    def __post_init__(self) -> None:
        self.limits = ChannelLimits(
            max_text_length=1_000_000,
            edit_interval=0.05 if self.interactive else 0,
            typing_interval=0,
        )

    async def typing(self) -> None:
        return None

    async def send(self, reply: Reply) -> SentMessage:
        self._end_line()
        self._count += 1
        self._printed = reply.text
        if self.label:
            self.out.write(f"{self.label}: ")
        self.out.write(reply.text)
        for choice in reply.choices:
            self.out.write(f"\n  {choice.label}: /{choice.command} {choice.value}")
        self.out.flush()
        return SentMessage(str(self._count), PLATFORM)

    async def edit(self, message: SentMessage, text: str) -> None:
        shown = self._printed.removesuffix(" ▌")
        if text.startswith(shown):
            self.out.write("\b\b  \b\b" if self._printed.endswith(" ▌") else "")
            self.out.write(text[len(shown) :])
        else:
            self.out.write("\n" + text)
        self._printed = text
        self.out.flush()

    def _end_line(self) -> None:
        if self._printed:
            self.out.write("\n")
            self._printed = ""

    def end_reply(self) -> None:
        """Finish the current reply with a newline."""
        self._end_line()
        self.out.flush()


def history_path(data_dir: Path, user: str) -> Path:
    """Where the interactive chat keeps ``user``'s input history (one file per user)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user) or "_"
    return data_dir / "terminal" / f"history-{safe}"


def forget_history(data_dir: Path, user: str) -> None:
    """Erase ``user``'s input history (part of forgetting their terminal conversation)."""
    history_path(data_dir, user).unlink(missing_ok=True)


class _ForgetHistory:
    """Erases the user's input history when their terminal conversation is cleared.

    The history holds what the user typed, so ``/forget`` must erase it too.
    """

    def __init__(self, data_dir: Path, user: str) -> None:
        self.data_dir = data_dir
        self.user = user

    @hookimpl
    def honeychat_conversation_cleared(self, conversation: ConversationKey, bot: Bot) -> None:
        if conversation.platform == PLATFORM and conversation.user_id == self.user:
            forget_history(self.data_dir, self.user)


async def _read_line(stream: TextIO) -> str | None:
    line = await asyncio.to_thread(stream.readline)
    return line if line else None


async def _choose_character(bot: Bot, user: str, character: str, notices: TextIO) -> bool:
    """Make ``character`` the user's character; say so when it changes the default."""
    before = await bot.current_character(PLATFORM, user)
    try:
        chosen = await bot.set_character(PLATFORM, user, character)
    except KeyError:
        known = ", ".join(c.id for c in bot.characters.all())
        print(f"No character '{character}'. Available: {known}.", file=sys.stderr)
        return False
    if chosen.id != before.id:
        notices.write(
            f"{chosen.name} is now your character: a plain `honeychat chat` talks to "
            f"{chosen.name} from now on (was {before.name}; change with --character or /character).\n"
        )
        notices.flush()
    return True


async def run_chat(
    bot: Bot,
    *,
    user: str,
    character: str | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Chat in the terminal (default: ``sys.stdin``/``sys.stdout``) until end of input or
    ``/quit``. Returns an exit code."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty() and stdout.isatty()
    # Piped: stdout carries only the replies, so notices go to stderr.
    if character and not await _choose_character(
        bot, user, character, stdout if interactive else sys.stderr
    ):
        return 2
    if interactive:
        return await _interactive(bot, user, stdout)
    channel = TerminalChannel(stdout, interactive=False)
    while True:
        line = await _read_line(stdin)
        if line is None:
            break
        text = line.rstrip("\n")
        if text.strip().lower() in _QUIT:
            break
        if not text.strip():
            continue
        await _send(bot, user, text, channel)
        if text.strip().lower() == "/help":
            stdout.write(HELP_EXTRA + "\n")
            stdout.flush()
    return 0


async def _send(bot: Bot, user: str, text: str, channel: TerminalChannel) -> None:
    message = IncomingMessage(
        platform=PLATFORM, user_id=user, chat_id=user, text=text, is_direct=True
    )
    await bot.handle_message(message, channel)
    channel.end_reply()


async def _interactive(bot: Bot, user: str, stdout: TextIO) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory

    path = history_path(bot.settings.data_dir, user)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    if not bot.plugins.pm.has_plugin("terminal-history"):
        bot.plugins.register(_ForgetHistory(bot.settings.data_dir, user), "terminal-history")
    session: PromptSession[str] = PromptSession(history=FileHistory(str(path)))
    channel = TerminalChannel(stdout, interactive=True)
    current = await bot.current_character(PLATFORM, user)
    stdout.write(
        f"{current.name}: {greeting(current, user)}\n(Type /help for commands, /quit to leave.)\n"
    )
    while True:
        stdout.write("\n")
        stdout.flush()
        try:
            with _output_above_prompt():
                text = await session.prompt_async(PROMPT)
        except (EOFError, KeyboardInterrupt):  # Ctrl-D on an empty line, Ctrl-C
            stdout.write("\n")
            stdout.flush()
            return 0
        if text.strip().lower() in _QUIT:
            return 0
        if not text.strip():
            continue
        channel.label = (await bot.current_character(PLATFORM, user)).name
        channel.interrupt.clear()
        try:
            with _ctrl_c_stops_the_reply(channel):
                await _send(bot, user, text, channel)
        except asyncio.CancelledError:  # a second Ctrl-C: leave, ending the line first
            stdout.write("\n")
            stdout.flush()
            raise
        if text.strip().lower() == "/help":
            stdout.write(HELP_EXTRA + "\n")
            stdout.flush()


@contextlib.contextmanager
def _output_above_prompt() -> Iterator[None]:
    """While the prompt is shown, print anything else (log lines) above it, not through it."""
    from prompt_toolkit.patch_stdout import patch_stdout

    with patch_stdout(raw=True):
        handlers = [
            h
            for h in logging.getLogger().handlers
            if type(h) is logging.StreamHandler and h.stream in (sys.__stderr__, sys.__stdout__)
        ]
        previous = [h.setStream(sys.stderr) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, previous, strict=True):
                if stream is not None:
                    handler.setStream(stream)


@contextlib.contextmanager
def _ctrl_c_stops_the_reply(channel: TerminalChannel) -> Iterator[None]:
    """While a message is answered: Ctrl-C stops the reply and the chat goes on.

    The first Ctrl-C sets ``channel.interrupt`` (the core ends the reply as its
    cut-off path does); a second one does what Ctrl-C did before (leaves). Typed
    keys are not echoed meanwhile, so ``^C`` or early typing cannot garble the
    streamed text (prompt_toolkit still reads what was typed, at the next prompt).
    """
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGINT)
    presses = 0

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            loop.call_soon_threadsafe(channel.interrupt.set)
        elif callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: Ctrl-C keeps its usual meaning
        yield
        return
    with _no_echo():
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _no_echo() -> Iterator[None]:
    """Turn the terminal's echo off (when stdin is one) for the duration."""
    try:
        import termios
    except ImportError:  # not a POSIX system
        yield
        return
    try:
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
    except (termios.error, OSError, ValueError):  # not a terminal
        yield
        return
    quiet = list(saved)
    quiet[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
