"""Typed responses of the inspector API (they make up its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from honeychat.core.types import StoredMessage, Summary


class ErrorResponse(BaseModel):
    """Every error: a short machine-readable code and a sentence for people."""

    error: str = Field(examples=["not_found"])
    detail: str = Field(examples=["no conversation test:alice:luna"])


class ConversationRef(BaseModel):
    """A conversation: one user talking to one character on one platform, or (``kind``
    ``space``) a shared space with its character, ``user_id`` then holding the space's id."""

    id: str
    platform: str
    user_id: str
    character: str
    kind: str = "private"


class ConversationPage(BaseModel):
    """One page of conversations; pass ``next_cursor`` back until it is 0."""

    items: list[ConversationRef]
    next_cursor: int = Field(description="0 when the listing is complete.")
    limit: int


class CharacterInfo(BaseModel):
    id: str
    name: str
    description: str
    is_default: bool


class Message(BaseModel):
    seq: int
    role: str
    text: str
    at: datetime
    tools: list[dict[str, Any]] = Field(
        default=[], description="A reply's tool calls with their (cut) results."
    )
    speaker: str | None = None
    """In a space: the display name of the member who wrote it."""
    speaker_id: str | None = None

    @classmethod
    def of(cls, message: StoredMessage) -> Message:
        return cls(
            seq=message.seq,
            role=message.role.value,
            text=message.text,
            at=message.at,
            tools=[dict(r) for r in message.tools],
            speaker=message.speaker,
            speaker_id=message.speaker_id,
        )


class RecentMessages(BaseModel):
    """The hot buffer: the newest messages, oldest first."""

    conversation: ConversationRef
    last_seq: int
    summarized_through: int = Field(description="The watermark: last message already summarized.")
    messages: list[Message]


class SummaryOut(BaseModel):
    """One window summary; ``score`` is set for search results (cosine similarity)."""

    id: str
    text: str
    first_seq: int
    last_seq: int
    first_at: datetime | None
    last_at: datetime | None
    model: str
    score: float | None = None
    line_sources: list[list[int]] | None = Field(
        default=None,
        description="For each line of text, the messages it came from (empty: no valid source).",
    )

    @classmethod
    def of(cls, summary: Summary) -> SummaryOut:
        return cls(
            id=summary.doc_id,
            text=summary.text,
            first_seq=summary.first_seq,
            last_seq=summary.last_seq,
            first_at=summary.first_at,
            last_at=summary.last_at,
            model=summary.model,
            score=summary.score,
            line_sources=(
                None if summary.line_sources is None else [list(x) for x in summary.line_sources]
            ),
        )


class LatestSummary(BaseModel):
    conversation: ConversationRef
    summary: SummaryOut | None


class SummaryList(BaseModel):
    """Every summary of the conversation, oldest window first."""

    conversation: ConversationRef
    summaries: list[SummaryOut]


class SearchResults(BaseModel):
    """Summaries ranked by relevance to ``query``, best first."""

    conversation: ConversationRef
    query: str
    k: int
    results: list[SummaryOut]


class ExportedMessage(BaseModel):
    seq: int
    role: str
    text: str
    at: str
    tools: list[dict[str, Any]] = []


class ExportedSummary(BaseModel):
    id: str
    text: str
    first_seq: int
    last_seq: int
    first_at: str | None
    last_at: str | None
    model: str
    line_sources: list[list[int]] | None = None
    score: float | None = None


class Export(BaseModel):
    """Everything memory holds for a conversation (the same data as ``honeychat memory export``)."""

    conversation: str
    platform: str
    user_id: str
    character: str
    last_seq: int
    summarized_through: int
    recent: list[ExportedMessage]
    summaries: list[ExportedSummary]
    unavailable: list[str]


class Cleared(BaseModel):
    conversation: ConversationRef
    cleared: bool = True


class Erased(BaseModel):
    """What erasing a user removed: their conversations and, by store, how many items."""

    user_id: str
    platform: str | None = Field(description="None: the user id on every platform")
    conversations: list[str]
    removed: dict[str, int]


class Check(BaseModel):
    """One dependency of readiness."""

    name: str
    ok: bool
    detail: str


class Backlog(BaseModel):
    """Summary work waiting in the shared Redis (reported; it does not make a process unready)."""

    pending_windows: int
    """Conversations with a complete window not yet stored in the cold layer."""
    oldest_wait_seconds: float | None
    """How long the oldest of them has waited (``None``: nothing waits)."""


class Readiness(BaseModel):
    ready: bool
    checks: list[Check]
    backlog: Backlog | None = None
    """``None`` when the hot layer cannot report one (down, or a store without a backlog)."""


class Health(BaseModel):
    status: str = "ok"


class TrailLine(BaseModel):
    text: str
    sources: list[int] | None = Field(description="Messages the line came from (None: unknown).")
    score: float | None = Field(description="Similarity of the line to the user's message.")
    tokens: int


class TrailMemory(BaseModel):
    """One memory document that contributed lines to a reply's prompt."""

    id: str
    window: list[int] = Field(description="First and last message of the summarized window.")
    latest: bool = Field(description="Shown as the latest summary rather than retrieved.")
    score: float | None
    lines: list[TrailLine]


class TrailRecent(BaseModel):
    seq: int
    role: str
    tokens: int


class TrailLorebook(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    name: str | None = None
    keys: list[str] = []
    tokens: int = 0


class TrailTool(BaseModel):
    """One tool call the reply made, with what the tool answered (cut)."""

    step: int = Field(description="The round of tool calls it belonged to (1 first).")
    name: str
    arguments: str = Field(description="The JSON arguments the model sent.")
    result: str = Field(description="What the model read (cut to TOOL_HISTORY_MAX_CHARS).")
    error: bool
    seconds: float
    source: str = Field(default="", description="A plugin, or mcp:SERVER.")
    tokens: int = 0


class TrailTokens(BaseModel):
    memory: int
    recent: int
    lorebook: int
    tools: int = 0


class Trail(BaseModel):
    """What went into the prompt of one reply ("why did it say that?")."""

    reply_seq: int
    user_seq: int | None
    at: datetime
    model: str | None
    memory: list[TrailMemory]
    recent: list[TrailRecent]
    lorebook: list[TrailLorebook]
    tools: list[TrailTool] = []
    tokens: TrailTokens
    unavailable: list[str]


class Trails(BaseModel):
    conversation: ConversationRef
    ttl_hours: float = Field(description="How long a trail is kept after the last reply.")
    trails: list[Trail]
