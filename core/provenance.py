"""Why a reply said what it said: what went into its prompt, kept for a bounded time.

For every answered turn, :func:`build_trail` records which memory lines
(with their window, source messages and similarity to the user's message),
which recent messages and which lorebook entries (``turn.extras
["lorebook_fired"]``, when a plugin fills it) were in the prompt, and which
tools the reply called with what they answered (``turn.tools``), with their
token cost. :class:`TrailStore` keeps trails in Redis as a cache of
explanations, not as memory: one hash per conversation holding its newest
``keep`` trails, expiring ``ttl_seconds`` after the conversation's last reply,
and deleted with the conversation (``/forget``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import RedisError

from honeychat.core.memory.retrieval import TokenCounter, split_lines
from honeychat.core.memory.stores import StoreUnavailable
from honeychat.core.types import ConversationKey, Summary, utc_now

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from honeychat.core.turn import Turn


_T = TypeVar("_T")


async def _redis(call: Awaitable[_T]) -> _T:
    try:
        return await call
    except (RedisError, OSError) as exc:
        raise StoreUnavailable("hot", f"provenance trails: {exc}") from exc


def _memory_entry(summary: Summary, count: TokenCounter, *, latest: bool) -> dict[str, Any]:
    lines = split_lines(summary.text)
    sources = summary.line_sources if summary.line_sources is not None else None
    scores = summary.line_scores
    summary_lines = len(lines) if summary.summary_lines is None else summary.summary_lines
    return {
        "id": summary.doc_id,
        "window": [summary.first_seq, summary.last_seq],
        "latest": latest,
        "score": summary.score,
        "lines": [
            {
                "text": line,
                "sources": (list(sources[i]) if sources is not None and i < len(sources) else None),
                "score": scores[i] if scores is not None and i < len(scores) else None,
                "tokens": count(line),
                "kind": "message"
                if i >= summary_lines or summary.kind == "verbatim"
                else "summary",
            }
            for i, line in enumerate(lines)
        ],
    }


def build_trail(
    turn: Turn, *, reply_seq: int | None, user_seq: int | None, count: TokenCounter
) -> dict[str, Any]:
    """The provenance trail of one answered turn (JSON-ready)."""
    context = turn.context
    memory = []
    if context.latest_summary is not None:
        memory.append(_memory_entry(context.latest_summary, count, latest=True))
    memory += [_memory_entry(s, count, latest=False) for s in context.relevant]
    recent = [
        {"seq": m.seq, "role": m.role.value, "tokens": count(m.text)}
        for m in context.recent
        if user_seq is None or m.seq != user_seq
    ]
    lorebook = [dict(entry) for entry in turn.extras.get("lorebook_fired") or ()]
    tools = [{**record, "tokens": count(str(record.get("result", "")))} for record in turn.tools]
    return {
        "reply_seq": reply_seq,
        "user_seq": user_seq,
        "at": utc_now().isoformat(),
        "model": turn.model,
        "memory": memory,
        "recent": recent,
        "lorebook": lorebook,
        "tools": tools,
        "tokens": {
            "memory": sum(line["tokens"] for entry in memory for line in entry["lines"]),
            "recent": sum(m["tokens"] for m in recent),
            "lorebook": sum(int(entry.get("tokens") or 0) for entry in lorebook),
            "tools": sum(record["tokens"] for record in tools),
        },
        "unavailable": list(context.unavailable),
    }


class TrailStore:
    """Provenance trails in Redis: a hash per conversation, field = the reply's sequence number."""

    def __init__(
        self, redis: aioredis.Redis, *, prefix: str, ttl_seconds: float, keep: int = 200
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.keep = keep

    def key(self, conversation: ConversationKey) -> str:
        return f"{self.prefix}:trail:{conversation.id}"

    async def record(self, conversation: ConversationKey, trail: dict[str, Any]) -> None:
        """Keep ``trail`` under its ``reply_seq``; drop the oldest beyond ``keep``."""
        seq = trail.get("reply_seq")
        if seq is None:
            return
        key = self.key(conversation)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, str(seq), json.dumps(trail, separators=(",", ":")))
        pipe.pexpire(key, int(self.ttl_seconds * 1000))
        pipe.hkeys(key)
        *_, fields = await _redis(pipe.execute())
        if len(fields) > self.keep:
            ordered = sorted(int(f) for f in fields)
            stale = [str(f) for f in ordered[: len(ordered) - self.keep]]
            await _redis(self.redis.hdel(key, *stale))

    async def list(
        self, conversation: ConversationKey, seqs: Sequence[int] | None = None
    ) -> list[dict[str, Any]]:
        """Trails of ``conversation`` (those of the replies ``seqs``, or all), oldest first."""
        key = self.key(conversation)
        if seqs is None:
            raw = list((await _redis(self.redis.hgetall(key))).values())
        else:
            found = await _redis(self.redis.hmget(key, [str(s) for s in seqs]))
            raw = [r for r in found if r]
        trails = [json.loads(r) for r in raw]
        return sorted(trails, key=lambda t: int(t.get("reply_seq") or 0))

    async def clear(self, conversation: ConversationKey) -> None:
        await _redis(self.redis.delete(self.key(conversation)))


__all__ = ["TrailStore", "build_trail"]
