"""Delivering one reply through a :class:`~honeychat.core.types.Channel`.

The streamer keeps the typing indicator alive while the LLM works, shows the
reply progressively by editing one message (throttled to the channel's
``edit_interval`` and skipping edits that would not change the text), and
finally sends the exact text, split to the platform's length limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from honeychat.core.textsplit import split_text
from honeychat.core.types import Channel, Reply, SentMessage

log = logging.getLogger(__name__)

_CURSOR = " ▌"


class ReplyStreamer:
    """Streams one reply to one channel. Use as an async context manager."""

    def __init__(self, channel: Channel, *, stream: bool = True) -> None:
        self.channel = channel
        self.limits = channel.limits
        self._stream = stream and self.limits.edit_interval > 0
        self._text = ""
        self._shown = ""
        self._message: SentMessage | None = None
        self._last_edit = 0.0
        self._typing: asyncio.Task[None] | None = None
        self.edits = 0

    async def __aenter__(self) -> ReplyStreamer:
        if self.limits.typing_interval > 0:
            self._typing = asyncio.create_task(self._keep_typing())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop_typing()

    async def _keep_typing(self) -> None:
        while True:
            try:
                await self.channel.typing()
            except Exception:  # a failed indicator must never fail the reply
                log.debug("typing indicator failed", exc_info=True)
            await asyncio.sleep(self.limits.typing_interval)

    async def _stop_typing(self) -> None:
        if self._typing is not None:
            self._typing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._typing
            self._typing = None

    async def feed(self, delta: str) -> None:
        """Add streamed text; shows it if the throttle allows."""
        self._text += delta
        if not self._stream:
            return
        now = time.monotonic()
        if now - self._last_edit < self.limits.edit_interval:
            return
        preview = self._text.strip()
        if not preview or len(preview) + len(_CURSOR) > self.limits.max_text_length:
            return
        preview += _CURSOR
        if preview == self._shown:
            return
        self._last_edit = now
        await self._show(preview)

    async def _show(self, text: str) -> None:
        if self._message is None:
            self._message = await self.channel.send(Reply(text))
        else:
            await self.channel.edit(self._message, text)
            self.edits += 1
        self._shown = text

    async def finish(self, final: str, reply: Reply | None = None) -> list[SentMessage]:
        """Send the exact final text (split as needed); returns the messages it fills."""
        await self._stop_typing()
        chunks = split_text(final, self.limits.max_text_length) or ["…"]
        sent: list[SentMessage] = []
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            if index == 0 and self._message is not None:
                if chunk != self._shown:
                    await self.channel.edit(self._message, chunk)
                    self.edits += 1
                sent.append(self._message)
                continue
            choices = reply.choices if (reply is not None and last) else ()
            sent.append(await self.channel.send(Reply(chunk, choices=choices)))
        return sent

    @property
    def text(self) -> str:
        """Everything streamed so far."""
        return self._text


@runtime_checkable
class InterruptibleChannel(Protocol):
    """A channel whose user can stop a reply while it streams (the terminal's Ctrl-C).

    The adapter sets ``interrupt``; the core then ends the reply as if its total
    deadline had passed: the text so far is kept, marked, and stored.
    """

    interrupt: asyncio.Event


def interrupted(channel: object) -> bool:
    """Whether ``channel``'s user asked to stop the reply."""
    return isinstance(channel, InterruptibleChannel) and channel.interrupt.is_set()


@contextlib.asynccontextmanager
async def stop_on_interrupt(channel: object, deadline: asyncio.Timeout) -> AsyncIterator[None]:
    """While the body runs, an interrupt from ``channel`` expires ``deadline`` at once."""
    if not isinstance(channel, InterruptibleChannel):
        yield
        return
    loop = asyncio.get_running_loop()

    async def watch() -> None:
        await channel.interrupt.wait()
        deadline.reschedule(loop.time())

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
