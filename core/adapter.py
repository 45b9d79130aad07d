"""The contract between the core and a platform adapter."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Adapter(Protocol):
    """A running connection to one chat platform.

    Adapters are returned by the ``honeychat_register_adapters`` hook, built
    with the :class:`~honeychat.core.bot.Bot` they serve. For every incoming
    update they build an :class:`~honeychat.core.types.IncomingMessage` and a
    :class:`~honeychat.core.types.Channel`, and call
    ``bot.handle_message(message, channel)``; the core does the rest.
    """

    name: str
    """Short platform name, also used as ``IncomingMessage.platform``."""

    async def start(self) -> None:
        """Connect and begin receiving updates; return once running."""

    async def stop(self) -> None:
        """Stop receiving, let in-flight replies finish, and disconnect."""
