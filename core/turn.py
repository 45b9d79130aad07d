"""The state of one turn as it moves through the pipeline, and chat-command types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from honeychat.core.settings import Tier
from honeychat.core.types import ConversationKey, IncomingMessage, MemoryContext, Reply

if TYPE_CHECKING:
    from honeychat.core.bot import Bot
    from honeychat.core.characters import Character
    from honeychat.core.media.items import MediaItem
    from honeychat.core.spaces import MemoryScope


@dataclass(slots=True)
class Turn:
    """One user message being answered.

    Hooks receive the same object at every stage. Plugins may rewrite
    ``text`` in ``honeychat_ingest`` and ``reply_text`` in
    ``honeychat_transform_reply``; everything else is read-only by contract.
    """

    bot: Bot
    message: IncomingMessage
    conversation: ConversationKey
    character: Character
    tier_name: str
    tier: Tier
    text: str
    """The user's text as the LLM and memory will see it (plugins may rewrite it)."""
    context: MemoryContext = field(default_factory=MemoryContext)
    reply_text: str = ""
    model: str | None = None
    """The model that produced the reply (after any fallback)."""
    usage: dict[str, int] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    """Free space for plugins to pass data between their own hooks. The core puts the
    lorebook entries inserted into the prompt in ``extras["lorebook_fired"]`` (a list of
    ``{"id", "name", "keys", "tokens"}``), when any fired."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent: ``llm`` (waiting on the model), ``total``, and ``overhead``
    (``total - llm``: everything honeychat itself did). Complete in
    ``honeychat_turn_complete``."""
    tools: list[dict[str, Any]] = field(default_factory=list)
    """The tool calls the reply made, with their results, as compact records
    (:meth:`honeychat.core.tools.ToolResult.record`); stored with the reply."""
    media: list[MediaItem] = field(default_factory=list)
    """Images and audio of the message, downloaded and checked (see :mod:`honeychat.core.media`)."""
    scope: MemoryScope | None = None
    """Which memories this reply may see (:func:`honeychat.core.spaces.memory_scope`);
    memory plugins read nothing outside it. ``None``: only ``conversation``."""


@dataclass(slots=True)
class CommandCall:
    """A chat command invoked by a user, typed (``/forget``) or picked from a choice."""

    bot: Bot
    message: IncomingMessage
    conversation: ConversationKey
    character: Character
    args: str = ""
    """Text after the command name, or the value of the picked :class:`Choice`."""
    from_choice: bool = False


CommandHandler = Callable[[CommandCall], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Command:
    """A chat command that works the same on every platform.

    ``name`` is what users type after ``/`` (lower-case letters, digits, ``_``).
    Adapters expose it natively: Telegram bot commands, Discord slash
    commands, Slack's ``/honeychat NAME`` subcommands.
    """

    name: str
    description: str
    handler: CommandHandler
    arg_name: str | None = None
    """Name of the single optional argument, shown by platforms that support one."""
    arg_choices: Callable[[Bot], list[tuple[str, str]]] | None = None
    """``(label, value)`` pairs for the argument, for platforms with native pickers."""
