"""Platform-agnostic types that flow through the pipeline.

Adapters translate a platform's update into an :class:`IncomingMessage`, and
deliver the core's :class:`Reply` (or its streaming pieces) through a
:class:`Channel` they implement. Nothing in here knows about Telegram, Discord
or Slack.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, unquote


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Role(StrEnum):
    """Who wrote a stored message."""

    USER = "user"
    ASSISTANT = "assistant"


AttachmentFetcher = Callable[[int], Awaitable[bytes]]
"""Downloads an attachment's bytes, reading at most the given number of bytes; raises
:class:`honeychat.core.media.errors.MediaTooLarge` past it (any other exception: the
download failed). The core wraps every call in a deadline."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """Metadata of a file, photo, sticker or voice note attached to a message.

    Adapters that can download the file set ``fetch``; the core decides
    whether to call it (see :mod:`honeychat.core.media`).
    """

    kind: str
    """A coarse kind: ``photo``, ``sticker``, ``voice``, ``video``, ``file``..."""
    name: str | None = None
    mime_type: str | None = None
    size: int | None = None
    url: str | None = None
    duration: float | None = None
    """Seconds of audio or video, when the platform reports it."""
    fetch: AttachmentFetcher | None = field(default=None, compare=False, repr=False)
    """The adapter's downloader for this file (``None``: it cannot be downloaded)."""


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message from a user, as every adapter reports it.

    ``user_id`` must identify the person across every chat of the platform
    (Slack adapters prefix the team id). ``chat_id`` is where to answer.
    """

    platform: str
    user_id: str
    chat_id: str
    text: str
    user_name: str | None = None
    message_id: str | None = None
    is_direct: bool = False
    """A private chat (DM) with the bot."""
    mentions_bot: bool = False
    replies_to_bot: bool = False
    attachments: tuple[Attachment, ...] = ()
    sent_at: datetime = field(default_factory=utc_now)
    space_id: str | None = None
    """The shared space (group, server channel, Slack channel) a non-direct message was
    posted in; a thread or forum topic gives its parent's id. ``None`` in a private chat
    (an adapter that leaves it unset in a shared chat gets ``chat_id``: see
    :func:`honeychat.core.scopes.space_of`)."""
    thread_id: str | None = None
    """The thread or forum topic inside the space, when the message is in one."""
    is_space_admin: Callable[[], Awaitable[bool]] | None = field(
        default=None, compare=False, repr=False
    )
    """The adapter's check that the sender administers the space (asks the platform);
    ``None``: the platform cannot tell. The core decides when to call it."""

    @property
    def addresses_bot(self) -> bool:
        """Whether the bot should treat this message as a turn meant for it."""
        return self.is_direct or self.mentions_bot or self.replies_to_bot


SPACE = "space"
"""The :attr:`ConversationKey.kind` of a shared space's conversation."""


@dataclass(frozen=True, slots=True, order=True)
class ConversationKey:
    """A conversation: one user talking to one character on one platform (``private``),
    or a shared space (group, server channel, Slack channel) with its character
    (``space``: then ``user_id`` holds the space's id; see :meth:`for_space`)."""

    platform: str
    user_id: str
    character_id: str
    kind: str = "private"

    @classmethod
    def for_space(cls, platform: str, space_id: str, character_id: str) -> ConversationKey:
        """The conversation of a shared space with its character."""
        return cls(platform, space_id, character_id, SPACE)

    @property
    def is_space(self) -> bool:
        return self.kind == SPACE

    @property
    def id(self) -> str:
        """A stable, human-readable id, safe for Redis keys and Chroma metadata.

        Each part is percent-encoded (UTF-8) so that a user id containing
        ``:`` cannot collide with another conversation. A space's id has a
        fourth part (``platform:space:<space id>:character``), so no private
        conversation's id can equal it.
        """
        parts: tuple[str, ...] = (self.platform, self.user_id, self.character_id)
        if self.is_space:
            parts = (self.platform, SPACE, self.user_id, self.character_id)
        return ":".join(quote(part, safe="") for part in parts)

    @property
    def digest(self) -> str:
        """A short hex digest of :attr:`id`, for names with strict rules."""
        return hashlib.sha256(self.id.encode()).hexdigest()[:24]

    @classmethod
    def parse(cls, conversation_id: str) -> ConversationKey:
        """Inverse of :attr:`id`. Raises ``ValueError`` on a malformed id."""
        parts = conversation_id.split(":")
        if len(parts) == 4 and parts[1] == SPACE and all(parts):
            platform, _, space, character = (unquote(part) for part in parts)
            return cls.for_space(platform, space, character)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"not a conversation id: {conversation_id!r}")
        platform, user, character = (unquote(part) for part in parts)
        return cls(platform, user, character)


MEMORY_FORMAT = 2
"""The version of memory's stored format (``v`` in every record): see ``docs/memory-format.md``.

Version 1 is the format before versions existed (records without ``v``); readers accept
every version up to this one, and ignore fields they do not know."""

_MESSAGE_FIELDS = frozenset(
    {"v", "seq", "role", "text", "at", "speaker", "speaker_id", "attachments", "tools"}
)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message kept in the hot buffer, with its per-conversation sequence number.

    Its stored form is one JSON object, format :data:`MEMORY_FORMAT`
    (``docs/memory-format.md``). ``role`` and ``speaker`` are what the store
    was told when the message was written, never parsed from ``text``.
    """

    seq: int
    role: Role
    text: str
    at: datetime
    speaker: str | None = None
    """Who wrote it, as a display name (the user's platform name, the character's name);
    ``None`` when the store was not told (records of format 1)."""
    speaker_id: str | None = None
    """In a space: the platform user id of the member who wrote a user message (for
    clearing their contributions); ``None`` in a private chat."""
    attachments: tuple[str, ...] = ()
    """The kinds of the files that came with the message (``photo``, ``voice``...)."""
    tools: tuple[dict[str, Any], ...] = field(default=(), hash=False)
    """For a reply: the tool calls it made, with their (cut) results, in the compact form of
    :meth:`honeychat.core.tools.ToolResult.record`; the next prompts replay them."""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    """Optional fields this version does not know (written by a newer one): kept as read."""

    def to_dict(self) -> dict[str, Any]:
        """The stored form: the current format, optional fields only when set."""
        data: dict[str, Any] = {k: v for k, v in self.extra.items() if k not in _MESSAGE_FIELDS}
        data.update(
            v=MEMORY_FORMAT,
            seq=self.seq,
            role=self.role.value,
            text=self.text,
            at=self.at.isoformat(),
        )
        if self.speaker is not None:
            data["speaker"] = self.speaker
        if self.speaker_id is not None:
            data["speaker_id"] = self.speaker_id
        if self.attachments:
            data["attachments"] = list(self.attachments)
        if self.tools:
            data["tools"] = [dict(record) for record in self.tools]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredMessage:
        """Any format up to :data:`MEMORY_FORMAT` (format 1 has no ``v``, nor optional fields)."""
        speaker, speaker_id = data.get("speaker"), data.get("speaker_id")
        return cls(
            seq=int(data["seq"]),
            role=Role(data["role"]),
            text=str(data["text"]),
            at=datetime.fromisoformat(data["at"]),
            speaker=None if speaker is None else str(speaker),
            speaker_id=None if speaker_id is None else str(speaker_id),
            attachments=tuple(str(kind) for kind in data.get("attachments") or ()),
            tools=tuple(dict(r) for r in data.get("tools") or () if isinstance(r, dict)),
            extra={k: v for k, v in data.items() if k not in _MESSAGE_FIELDS},
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """An LLM-written summary of one fixed window of messages (``first_seq..last_seq``)."""

    conversation_id: str
    text: str
    first_seq: int
    last_seq: int
    first_at: datetime | None = None
    last_at: datetime | None = None
    model: str = ""
    score: float | None = None
    """Relevance to a query, when the summary came from a search (higher is better)."""
    line_scores: tuple[float, ...] | None = None
    """From a search: the query's similarity to each line of ``text`` (one per line, in
    order, as :func:`honeychat.core.memory.retrieval.split_lines` splits it), when the
    store keeps a vector per line; ``None`` otherwise."""
    line_sources: tuple[tuple[int, ...], ...] | None = None
    """Line provenance: for each line of ``text`` (in order, as ``split_lines`` splits it),
    the sequence numbers of the messages it came from, all inside ``first_seq..last_seq``;
    an empty tuple for a line whose source the summarizer did not give validly (it credits
    nothing). ``None`` when the summary carries no provenance (written before it existed)."""
    generation: int = 0
    """The conversation's generation (bumped by every clear) when the window was written."""
    kind: str = "summary"
    """``summary`` (written by the LLM) or ``verbatim`` (the window's own messages, kept
    when every attempt to summarize it failed)."""
    summary_lines: int | None = None
    """How many leading lines of ``text`` the summarizer wrote; the lines after them are the
    window's messages verbatim, one line per message, each with its own message as its
    source. ``None``: every line is of the document's ``kind`` (no messages kept beside
    a summary, as in format 1)."""
    conversation_kind: str = "private"
    """The kind of conversation the window belongs to: ``private`` (one user and the
    character); later kinds (a shared space) add their own names."""

    @property
    def keeps_messages(self) -> bool:
        """Whether ``text`` holds the window's messages after the summary's lines."""
        return self.summary_lines is not None

    def without_messages(self) -> Summary:
        """This summary with only the summarizer's lines (unchanged if no messages are kept)."""
        if self.summary_lines is None:
            return self
        n = self.summary_lines
        return replace(
            self,
            text="\n".join(_split_lines(self.text)[:n]),
            summary_lines=None,
            line_scores=None if self.line_scores is None else self.line_scores[:n],
            line_sources=None if self.line_sources is None else self.line_sources[:n],
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data of the summary itself (without ``score`` and ``line_scores``)."""
        return {
            "conversation_id": self.conversation_id,
            "text": self.text,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "first_at": self.first_at.isoformat() if self.first_at else None,
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "model": self.model,
            "line_sources": (
                None if self.line_sources is None else [list(s) for s in self.line_sources]
            ),
            "generation": self.generation,
            "kind": self.kind,
            "summary_lines": self.summary_lines,
            "conversation_kind": self.conversation_kind,
            "v": MEMORY_FORMAT,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        """Inverse of :meth:`to_dict`; raises ``KeyError``/``ValueError`` on bad data."""
        return cls(
            conversation_id=str(data["conversation_id"]),
            text=str(data["text"]),
            first_seq=int(data["first_seq"]),
            last_seq=int(data["last_seq"]),
            first_at=datetime.fromisoformat(data["first_at"]) if data.get("first_at") else None,
            last_at=datetime.fromisoformat(data["last_at"]) if data.get("last_at") else None,
            model=str(data.get("model") or ""),
            line_sources=_line_sources(data.get("line_sources")),
            generation=int(data.get("generation") or 0),
            kind=str(data.get("kind") or "summary"),
            summary_lines=_optional_int(data.get("summary_lines")),
            conversation_kind=str(data.get("conversation_kind") or "private"),
        )

    @property
    def doc_id(self) -> str:
        """The deterministic document id: one per (conversation, generation, window).

        Generation 0 keeps the original form ``conv:first-last``, so documents
        written before generations existed keep their ids.
        """
        window = f"{self.first_seq:09d}-{self.last_seq:09d}"
        if self.generation:
            return f"{self.conversation_id}:g{self.generation}:{window}"
        return f"{self.conversation_id}:{window}"


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _split_lines(text: str) -> list[str]:
    from honeychat.core.memory.retrieval import split_lines

    return split_lines(text)


def _line_sources(value: Any) -> tuple[tuple[int, ...], ...] | None:
    if value is None:
        return None
    return tuple(tuple(int(n) for n in line) for line in value)


@dataclass(frozen=True, slots=True)
class MemoryContext:
    """What memory contributes to one turn's prompt.

    ``recent`` goes into the prompt as chat history; ``latest_summary`` and
    ``relevant`` go into the system prompt. ``unavailable`` names layers that
    could not be read this turn (the turn is answered without them).
    """

    recent: tuple[StoredMessage, ...] = ()
    latest_summary: Summary | None = None
    relevant: tuple[Summary, ...] = ()
    unavailable: tuple[str, ...] = ()
    shared: tuple[Summary, ...] = ()
    """In a space: memories from the speaker's private chat, present only when they opted
    in (``/memory share on``; see :func:`honeychat.core.scopes.memory_scope`)."""


@dataclass(frozen=True, slots=True)
class Choice:
    """One button or menu entry. Picking it runs ``command`` with ``value``."""

    label: str
    command: str
    value: str


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete answer: text, optional choices, and whether only the user sees it."""

    text: str
    choices: tuple[Choice, ...] = ()
    ephemeral: bool = False
    """Shown only to the asking user, where the platform can (Discord, Slack)."""


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """What a platform allows when the core delivers a reply."""

    max_text_length: int = 4096
    edit_interval: float = 1.0
    """Minimum seconds between two edits of one streaming message; 0 disables streaming."""
    typing_interval: float = 4.0
    """Seconds between two typing indicators while the LLM works; 0 disables them."""


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A handle to a message the adapter sent, so it can be edited later."""

    message_id: str
    chat_id: str


@runtime_checkable
class Channel(Protocol):
    """Where a reply goes: implemented by each adapter for one incoming message.

    The core calls these while it answers; the adapter owns formatting
    (Markdown to HTML or mrkdwn) and the platform's API calls. Text handed to
    ``send`` and ``edit`` is Markdown and already within ``limits``.
    """

    limits: ChannelLimits

    async def typing(self) -> None:
        """Show the platform's typing indicator once."""

    async def send(self, reply: Reply) -> SentMessage:
        """Send a new message and return its handle."""

    async def edit(self, message: SentMessage, text: str) -> None:
        """Replace the text of a message sent earlier (used for streaming)."""
