"""Every hook honeychat calls, documented where it is declared.

A turn runs these stages in order::

    honeychat_ingest -> honeychat_memory_context -> honeychat_prompt_sections
        -> (LLM) -> honeychat_transform_reply -> honeychat_persist
        -> honeychat_schedule_summary

Implementations may be plain functions or ``async def`` coroutines: the core
awaits whatever a hook returns when it is awaitable. Built-in behaviour
(memory, chat commands) is implemented by plugins in ``honeychat.plugins``
through these same hooks, so any of it can be replaced.

Plugins mark implementations with :data:`hookimpl`::

    from honeychat import hookimpl

    @hookimpl
    def honeychat_prompt_sections(turn):
        return "The user likes tea."

This module is the public plugin API: renaming a hook or an argument is a
breaking change and must be recorded in CHANGELOG.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from honeychat.core.bot import Bot
    from honeychat.core.media.items import MediaItem
    from honeychat.core.memory.stores import ColdStore, HotStore
    from honeychat.core.turn import Turn
    from honeychat.core.types import ConversationKey, MemoryContext, Reply, StoredMessage, Summary

PROJECT = "honeychat"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# Lifecycle


@hookspec
def honeychat_startup(bot: Bot) -> Any:
    """Called once when the bot starts, before any message is handled.

    Open connections and start background work here. May be async. An
    exception here is logged with the plugin's name; the bot starts without
    that plugin's startup work.
    """


@hookspec
def honeychat_shutdown(bot: Bot) -> Any:
    """Called once when the bot stops, after in-flight turns have finished.

    Flush and close what ``honeychat_startup`` opened. May be async.
    """


@hookspec
def honeychat_register_adapters(bot: Bot) -> Any:
    """Return the platform adapters this plugin provides (a list, one adapter, or None).

    An adapter is an object with a ``name`` attribute and ``async start()``
    and ``async stop()`` methods (see :class:`honeychat.core.adapter.Adapter`).
    Return only adapters whose credentials are configured; ``honeychat run``
    starts every adapter returned (or those named in ``ADAPTERS``).
    """


@hookspec
def honeychat_register_commands(bot: Bot) -> Any:
    """Return chat commands (a list of :class:`~honeychat.core.turn.Command`) this plugin adds.

    Commands work on every platform: adapters expose them natively. Two
    plugins registering the same name: the first loaded wins and the other is
    logged as shadowed.
    """


@hookspec
def honeychat_register_tools(bot: Bot) -> Any:
    """Return tools (a list of :class:`~honeychat.core.tools.Tool`, one tool, or None) the model may call.

    Called once at startup, after ``honeychat_register_commands``. Make a
    tool with the :func:`~honeychat.core.tools.tool` decorator: an ``async``
    function whose first parameter receives a
    :class:`~honeychat.core.tools.ToolContext` (the turn's conversation,
    speaker, time zone and a memory search of that conversation only) and
    whose other parameters, from their type hints or a pydantic model, are
    the JSON schema the model fills. Its return value (text, or JSON-ready
    data) is what the model reads, as untrusted text; an exception or a
    timeout (``TOOL_TIMEOUT``) becomes an error message the model reads.
    Which tools a turn offers is decided by the character's ``tools`` and
    the tier's ``tools`` patterns. Two tools of one name: the first wins.
    """


# Memory layers


@hookspec(firstresult=True)
def honeychat_hot_store(bot: Bot) -> HotStore | None:
    """Return the store of recent messages (firstresult: the first non-None wins).

    The built-in memory plugin answers with the Redis store at ``trylast``,
    so a plugin that answers replaces it.
    """


@hookspec(firstresult=True)
def honeychat_cold_store(bot: Bot) -> ColdStore | None:
    """Return the long-term summary store (firstresult: the first non-None wins).

    The built-in memory plugin answers with the Chroma store at ``trylast``.
    """


# The turn pipeline


@hookspec(firstresult=True)
def honeychat_ingest(turn: Turn) -> Reply | None:
    """First stage of a turn, before anything is stored or sent to the LLM.

    Return a :class:`~honeychat.core.types.Reply` to answer right away and
    end the turn there (a quota or a moderation refusal); the user's message
    is then *not* stored. Return ``None`` to let the turn go on. An
    implementation may also rewrite ``turn.text``. firstresult: the first
    Reply ends the turn and later implementations are not called.
    """


@hookspec(firstresult=True)
def honeychat_memory_context(turn: Turn) -> MemoryContext | None:
    """Gather what memory knows for this turn (firstresult).

    The built-in memory plugin reads, concurrently, the recent buffer, the
    latest summary and the top-K summaries most similar to ``turn.text``.
    Called after the user's message is persisted, so it is in the buffer.
    """


@hookspec
def honeychat_prompt_sections(turn: Turn) -> str | list[str] | None:
    """Return extra text for the system prompt (a string, a list of strings or None).

    Sections are appended after the persona and memory, in plugin order.
    Keep them short: they are sent on every turn.
    """


@hookspec
def honeychat_transform_reply(turn: Turn) -> None:
    """Inspect or rewrite the LLM's answer before it is stored and sent.

    Assign to ``turn.reply_text`` to rewrite it. Called with the complete
    text; while a reply streams, users may briefly see the raw text, so a
    plugin that must never show it should set ``turn.extras["no_stream"] =
    True`` in ``honeychat_ingest``.
    """


@hookspec(firstresult=True)
def honeychat_persist(
    conversation: ConversationKey, role: str, text: str, turn: Turn
) -> StoredMessage | None:
    """Store one message of the conversation (firstresult).

    Called for the user's message before the LLM call (so a failed call loses
    nothing) and for the reply after it.
    """


@hookspec
def honeychat_schedule_summary(conversation: ConversationKey, bot: Bot) -> None:
    """Last stage of a turn: start background summarization if a window is complete.

    Must return quickly; the work itself runs in the background.
    """


@hookspec
def honeychat_turn_complete(turn: Turn) -> None:
    """Notification after a turn: the reply was sent and stored and the summary scheduled.

    ``turn.timings`` holds ``llm``, ``total`` and ``overhead`` in seconds and
    ``turn.usage`` the token counts, for metrics and logging plugins. Not
    called for turns that ``honeychat_ingest`` ended or the LLM failed.
    """


# Memory operations used by commands, the CLI and the inspector


@hookspec(firstresult=True)
def honeychat_search_memory(
    conversation: ConversationKey, query: str, k: int, bot: Bot
) -> list[Summary] | None:
    """Return the ``k`` summaries most relevant to ``query``, best first (firstresult).

    Uses the same retrieval as a chat turn.
    """


@hookspec(firstresult=True)
def honeychat_export_memory(conversation: ConversationKey, bot: Bot) -> dict[str, Any] | None:
    """Return everything memory holds for a conversation as JSON-ready data (firstresult)."""


@hookspec
def honeychat_clear_memory(conversation: ConversationKey, bot: Bot) -> None:
    """Forget a conversation in every layer. A clear wins over summarization in progress."""


@hookspec
def honeychat_conversation_cleared(conversation: ConversationKey, bot: Bot) -> None:
    """Notification after a conversation was cleared, for plugins that keep their own state."""


# Media: images, voice notes and spoken replies (see honeychat.core.media)


@hookspec(firstresult=True)
def honeychat_media_received(item: MediaItem, turn: Turn) -> Reply | None:
    """Inspect or change one downloaded image or audio file before it is used (firstresult).

    Called for each item of a message after its size and type (by content)
    were checked, before transcription or description. Return a
    :class:`~honeychat.core.types.Reply` to refuse the whole message (an NSFW
    filter): the user gets it and nothing is stored. An implementation may
    also replace ``item.data`` (then keep ``mime_type``/``extension`` true).
    """


@hookspec(firstresult=True)
def honeychat_transcribe(item: MediaItem, turn: Turn) -> str | None:
    """Return the words spoken in an audio item (firstresult), e.g. from a local Whisper.

    Return ``None`` to let the next implementation, then the built-in
    ``/audio/transcriptions`` call (``STT_MODEL``), answer. Runs under
    ``STT_TIMEOUT``; an exception or an empty text gives the user a friendly
    answer and ends the turn.
    """


@hookspec(firstresult=True)
def honeychat_describe_image(item: MediaItem, turn: Turn) -> str | None:
    """Return a description of an image item (firstresult); only with ``IMAGE_MODE=describe``.

    Return ``None`` to let the built-in vision call (``VISION_MODEL``) answer.
    The description goes to the chat model and memory as text.
    """


@hookspec(firstresult=True)
def honeychat_synthesize_speech(
    text: str, voice: str, audio_format: str, turn: Turn
) -> bytes | None:
    """Return ``text`` spoken by ``voice`` as audio in ``audio_format`` (firstresult).

    Called only when the character answers by voice (``TTS_MODEL`` set and
    its ``media.speak`` says so). ``audio_format`` is what the platform plays
    (``opus`` in OGG for Telegram voice notes, ``mp3`` elsewhere). Return
    ``None`` to let the built-in ``/audio/speech`` call answer.
    """
