"""The terminal: ``honeychat chat``.

Interactive on a TTY (streamed replies, a prompt, the character's greeting);
with piped input it reads one message per line and writes each reply to
stdout, then exits at the end of input once pending summaries are written.
Choices (buttons elsewhere) are shown as the command to type.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from typing import TextIO

from honeychat.core.bot import Bot
from honeychat.core.types import ChannelLimits, IncomingMessage, Reply, SentMessage

PLATFORM = "terminal"
_QUIT = {"/quit", "/exit", "/bye"}


@dataclass
class TerminalChannel:
    """Prints replies; streams by printing the new part of each edit."""

    out: TextIO
    interactive: bool
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


async def _read_line(stream: TextIO) -> str | None:
    line = await asyncio.to_thread(stream.readline)
    return line if line else None


async def run_chat(
    bot: Bot,
    *,
    user: str,
    character: str | None = None,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> int:
    """Chat in the terminal until end of input or ``/quit``. Returns an exit code."""
    interactive = stdin.isatty() and stdout.isatty()
    channel = TerminalChannel(stdout, interactive)
    if character:
        try:
            await bot.set_character(PLATFORM, user, character)
        except KeyError:
            known = ", ".join(c.id for c in bot.characters.all())
            print(f"No character '{character}'. Available: {known}.", file=sys.stderr)
            return 2
    current = await bot.current_character(PLATFORM, user)
    if interactive:
        stdout.write(
            f"{current.name}: {current.greeting.strip()}\n(Type /help for commands, /quit to leave.)\n"
        )
    while True:
        if interactive:
            stdout.write("\nyou> ")
            stdout.flush()
        line = await _read_line(stdin)
        if line is None:
            break
        text = line.rstrip("\n")
        if text.strip().lower() in _QUIT:
            break
        if not text.strip():
            continue
        message = IncomingMessage(
            platform=PLATFORM, user_id=user, chat_id=user, text=text, is_direct=True
        )
        await bot.handle_message(message, channel)
        channel.end_reply()
    return 0
