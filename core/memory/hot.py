"""The hot memory layer on Redis: a bounded buffer of recent messages per conversation.

Keys of one conversation (``<id>`` is :attr:`ConversationKey.id`, wrapped in a
Redis Cluster hash tag so all of them live in one slot)::

    {prefix}:conv:{<id>}:buf      list of message JSON, oldest first        (expires)
    {prefix}:conv:{<id>}:summary  JSON of the latest summary (a cache)       (expires)
    {prefix}:conv:{<id>}:seq      last sequence number handed out           (durable)
    {prefix}:conv:{<id>}:wm       watermark: last sequence number summarized (durable)
    {prefix}:conv:{<id>}:epoch    generation, bumped by every clear          (durable)
    {prefix}:conv:{<id>}:fail     the failing window and its attempts        (durable)
    {prefix}:conv:{<id>}:authored hash seq -> speaker id, in spaces           (durable)

``authored`` remembers who wrote each message of a space after the message
left the buffer, so a member can later clear every summary line that came
from them (:meth:`RedisHotStore.forget_speaker`).

and, for all conversations, ``{prefix}:summaries:pending`` (complete windows
waiting) and ``{prefix}:conversations:active`` (a sorted set: each
conversation's last activity, Unix time to within :data:`ACTIVITY_RESOLUTION`
seconds; what retention reads).

Only the recent buffer and the summary cache expire (every write refreshes
their TTL): losing them loses nothing that memory depends on. The sequence
number, watermark and generation never carry a TTL (a write removes one left
by an older version). If Redis loses them anyway (a flush, a server without
persistence), :meth:`RedisHotStore.append` raises :class:`StateMissing` and the
memory service rebuilds them from the cold store before writing
(:meth:`RedisHotStore.restore_state`). Writes that read and modify state are
Lua scripts, so each is atomic and one round trip.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import redis
import redis.asyncio

from honeychat.core.memory.stores import StateMissing, StoreUnavailable, WindowFailure
from honeychat.core.sanitize import clean_text
from honeychat.core.types import ConversationKey, Role, StoredMessage, Summary

log = logging.getLogger(__name__)

# Order of KEYS passed to every script: buf, seq, wm, epoch, summary, fail, authored.
# Only buf (1) and summary (5) expire; seq, wm, epoch, fail and authored are durable.
_SCRIPT_KEYS = ("buf", "seq", "wm", "epoch", "summary", "fail", "authored")

_TOUCH = """
local function touch(ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[5], ttl)
end
local function durable()
  for i = 2, 4 do redis.call('PERSIST', KEYS[i]) end
end
local function num(key)
  return tonumber(redis.call('GET', key) or '0')
end
"""

# ARGV: message JSON without "seq" (starts with "{"), buffer_size, ttl_ms, require_state,
# speaker id ("" for none) -> the new seq, or -1 (nothing written) when state is required
# and missing
_APPEND = (
    _TOUCH
    + """
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local seq = redis.call('INCR', KEYS[2])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[7], seq, ARGV[5]) end
redis.call('RPUSH', KEYS[1], '{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2))
local keep = math.max(tonumber(ARGV[2]), seq - num(KEYS[3]))
redis.call('LTRIM', KEYS[1], -keep, -1)
durable()
touch(ARGV[3])
return seq
"""
)

# ARGV: last summarized seq, generation -> 1 restored, 0 the state was there already
_RESTORE = (
    _TOUCH
    + """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local seq = tonumber(ARGV[1])
redis.call('SET', KEYS[2], seq)
redis.call('SET', KEYS[3], math.max(seq, num(KEYS[3])))
redis.call('SET', KEYS[4], math.max(tonumber(ARGV[2]), num(KEYS[4])))
redis.call('DEL', KEYS[1], KEYS[5], KEYS[6])
return 1
"""
)

# ARGV: expected, new, epoch, buffer_size, ttl_ms -> 1 moved, 0 refused, -1 beyond last seq
# (refused too when the state is gone: the conversation was erased meanwhile)
_ADVANCE = (
    _TOUCH
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if num(KEYS[3]) ~= tonumber(ARGV[1]) or num(KEYS[4]) ~= tonumber(ARGV[3]) then
  return 0
end
local seq = num(KEYS[2])
local new = tonumber(ARGV[2])
if new > seq then return -1 end
redis.call('SET', KEYS[3], ARGV[2])
local keep = math.max(tonumber(ARGV[4]), seq - new)
redis.call('LTRIM', KEYS[1], -keep, -1)
durable()
touch(ARGV[5])
return 1
"""
)

# ARGV: ttl_ms
_CLEAR = (
    _TOUCH
    + """
redis.call('DEL', KEYS[1], KEYS[5], KEYS[6], KEYS[7])
redis.call('SET', KEYS[3], num(KEYS[2]))
redis.call('INCR', KEYS[4])
durable()
return 1
"""
)

# ARGV: epoch, summary JSON, ttl_ms
_CACHE_SUMMARY = (
    _TOUCH
    + """
if num(KEYS[4]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[5], ARGV[2])
touch(ARGV[3])
return 1
"""
)

# KEYS: fail; ARGV: first_seq, retry_at -> attempts at that window so far
_RECORD_FAILURE = """
if redis.call('HGET', KEYS[1], 'first') ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'first', ARGV[1])
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'retry_at', ARGV[2])
return attempts
"""

# KEYS: buf, summary; ARGV: speaker id -> how many buffered messages were removed.
# Drops the speaker's messages from the buffer (keeping its TTL) and the summary cache.
_FORGET_SPEAKER = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local kept = {}
local removed = 0
for _, item in ipairs(items) do
  local ok, message = pcall(cjson.decode, item)
  if ok and type(message) == 'table' and message['speaker_id'] == ARGV[1] then
    removed = removed + 1
  else
    kept[#kept + 1] = item
  end
end
redis.call('DEL', KEYS[2])
if removed == 0 then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
for i = 1, #kept, 500 do
  redis.call('RPUSH', KEYS[1], unpack(kept, i, math.min(i + 499, #kept)))
end
if ttl > 0 and #kept > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return removed
"""

# KEYS: buf, summary -> records upgraded. Format 1 to 2 adds only "v" (docs/memory-format.md):
# a record without it gets it in front, every other byte kept (fields unknown here too).
_UPGRADE_FORMAT_1 = """
local function upgraded(raw, required)
  if string.sub(raw, 1, 1) ~= '{' then return nil end
  local ok, record = pcall(cjson.decode, raw)
  if not ok or type(record) ~= 'table' or record['v'] ~= nil or record[required] == nil then
    return nil
  end
  return '{"v":2,' .. string.sub(raw, 2)
end
local count = 0
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i, raw in ipairs(items) do
  local new = upgraded(raw, 'seq')
  if new then
    redis.call('LSET', KEYS[1], i - 1, new)
    count = count + 1
  end
end
local cached = redis.call('GET', KEYS[2])
if cached then
  local new = upgraded(cached, 'conversation_id')
  if new then
    redis.call('SET', KEYS[2], new, 'KEEPTTL')
    count = count + 1
  end
end
return count
"""
ACTIVITY_RESOLUTION = 3600.0
"""A conversation's last activity is written at most this often (seconds) by one process."""
_ACTIVITY_MEMO_MAX = 100_000

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """Turn "cannot reach Redis" errors into :class:`StoreUnavailable`."""
    try:
        yield
    except (
        redis.ConnectionError,
        redis.TimeoutError,
        redis.exceptions.ReadOnlyError,
        OSError,
    ) as exc:
        raise StoreUnavailable("hot", exc) from exc


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int:
    return int(_str(value)) if value is not None else 0


def _message_json(message: StoredMessage) -> str:
    """The stored JSON of a message minus its ``seq``, which the append script adds.

    Its ``text`` must already be clean (see :func:`honeychat.core.sanitize.clean_text`).
    """
    data = message.to_dict()
    del data["seq"]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def summary_to_json(summary: Summary) -> str:
    """The cached form of a summary (without its search ``score``)."""
    return json.dumps(summary.to_dict(), ensure_ascii=True, separators=(",", ":"))


def summary_from_json(raw: str) -> Summary:
    """Inverse of :func:`summary_to_json`. Raises ``ValueError`` on malformed input."""
    try:
        return Summary.from_dict(json.loads(raw))
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed cached summary: {exc}") from exc


class RedisHotStore:
    """:class:`~honeychat.core.memory.stores.HotStore` on Redis (or Valkey).

    ``buffer_size`` is how many messages are kept once summarized; messages
    after the watermark are kept however many there are. ``ttl_seconds`` is
    how long an idle conversation's buffer and summary cache live. With
    ``require_state`` (what the memory service uses), :meth:`append` raises
    :class:`StateMissing` for a conversation without state, so that it can be
    rebuilt from the cold store; without it, such a conversation starts at
    sequence number 1. The client is usually shared
    (see :class:`~honeychat.core.memory.redis_server.RedisConnection`), so
    :meth:`close` closes it only with ``owns_client=True``. Every method raises
    :class:`StoreUnavailable` when Redis cannot be reached.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str,
        buffer_size: int,
        ttl_seconds: float,
        owns_client: bool = False,
        require_state: bool = False,
    ) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"key prefix must be non-empty and without braces: {prefix!r}")
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1, got {buffer_size}")
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self.client = client
        self.owns_client = owns_client
        self.prefix = prefix
        self.buffer_size = buffer_size
        self.ttl_ms = max(1, round(ttl_seconds * 1000))
        self.require_state = require_state
        self._append = client.register_script(_APPEND)
        self._restore = client.register_script(_RESTORE)
        self._advance = client.register_script(_ADVANCE)
        self._clear = client.register_script(_CLEAR)
        self._cache_summary = client.register_script(_CACHE_SUMMARY)
        self._record_failure = client.register_script(_RECORD_FAILURE)
        self._forget_speaker = client.register_script(_FORGET_SPEAKER)
        self._upgrade_format_1 = client.register_script(_UPGRADE_FORMAT_1)
        self._pending_key = f"{prefix}:summaries:pending"
        self.activity_key = f"{prefix}:conversations:active"
        self._noted: dict[str, float] = {}
        glob_prefix = _GLOB_SPECIAL.sub(r"\\\1", prefix)
        self._buffer_pattern = f"{glob_prefix}:conv:{{*}}:buf"

    # Keys

    def _base(self, conversation_id: str) -> str:
        return f"{self.prefix}:conv:{{{conversation_id}}}"

    def key(self, conversation: ConversationKey, name: str) -> str:
        """The Redis key ``name`` (``buf``, ``seq``, ``wm``, ...) of a conversation."""
        return f"{self._base(conversation.id)}:{name}"

    def _keys(self, conversation: ConversationKey) -> list[str]:
        return [self.key(conversation, name) for name in _SCRIPT_KEYS]

    # HotStore

    async def append(
        self,
        conversation: ConversationKey,
        role: Role,
        text: str,
        at: datetime,
        *,
        tools: Sequence[dict[str, Any]] = (),
        speaker: str | None = None,
        speaker_id: str | None = None,
        attachments: Sequence[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> StoredMessage:
        """Store one message in a single round trip; return it with its sequence number.

        ``speaker``, ``attachments`` and ``extra`` (optional fields of the
        stored format, see ``docs/memory-format.md``) are stored as given.
        With ``require_state``, raises :class:`StateMissing` (and stores
        nothing) when the conversation has no sequence number in Redis: new,
        or lost by Redis. The caller then calls :meth:`restore_state` and
        appends again.
        """
        message = StoredMessage(
            seq=0,
            role=Role(role),
            text=clean_text(text),
            at=at,
            speaker=None if speaker is None else clean_text(speaker),
            speaker_id=speaker_id,
            attachments=tuple(attachments),
            tools=tuple(tools),
            extra=dict(extra or {}),
        )
        body = _message_json(message)
        with _unavailable():
            seq = _int(
                await self._append(
                    keys=self._keys(conversation),
                    args=[
                        body,
                        self.buffer_size,
                        self.ttl_ms,
                        int(self.require_state),
                        speaker_id or "",
                    ],
                )
            )
        if seq < 0:
            raise StateMissing(conversation)
        await self._note_activity(conversation, at)
        return replace(message, seq=seq)

    async def _note_activity(self, conversation: ConversationKey, at: datetime) -> None:
        """Record the conversation's last activity, once per :data:`ACTIVITY_RESOLUTION`."""
        when = at.timestamp()
        noted = self._noted.get(conversation.id)
        if noted is not None and when - noted < ACTIVITY_RESOLUTION:
            return
        if len(self._noted) >= _ACTIVITY_MEMO_MAX:
            self._noted.clear()
        try:
            with _unavailable():
                await self.client.zadd(self.activity_key, {conversation.id: when}, gt=True)
        except StoreUnavailable:
            return  # the message is stored; the next one notes the activity
        self._noted[conversation.id] = when

    async def idle_conversations(self, before: float, count: int = 100) -> list[str]:
        """Ids of up to ``count`` conversations whose last activity is before ``before``."""
        with _unavailable():
            found = await self.client.zrangebyscore(
                self.activity_key, "-inf", f"({before!r}", start=0, num=count
            )
        return [_str(item) for item in found]

    async def note_known(self, conversation_id: str, since: float) -> None:
        """Give a conversation without a recorded activity (older data) one: ``since``."""
        with _unavailable():
            await self.client.zadd(self.activity_key, {conversation_id: since}, nx=True)

    async def forget(self, conversation: ConversationKey) -> None:
        """Delete every key of the conversation, state included (erasure, retention).

        Call after :meth:`clear` (whose new generation makes a summary still
        in flight discard itself). Its next message starts it afresh.
        """
        names = (*_SCRIPT_KEYS, "lease")
        with _unavailable():
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.delete(*(self.key(conversation, name) for name in names))
                pipe.zrem(self._pending_key, conversation.id)
                pipe.zrem(self.activity_key, conversation.id)
                await pipe.execute()
        self._noted.pop(conversation.id, None)

    async def restore_state(
        self, conversation: ConversationKey, last_summarized: int, generation: int
    ) -> bool:
        """Set a conversation's missing state: sequence number and watermark to
        ``last_summarized``, generation to at least ``generation``.

        Does nothing (returns ``False``) when the state exists: of two
        processes restoring at once, the first wins and both then append.
        """
        with _unavailable():
            done = await self._restore(
                keys=self._keys(conversation), args=[last_summarized, generation]
            )
        return _int(done) == 1

    async def recent(self, conversation: ConversationKey, limit: int) -> list[StoredMessage]:
        """The newest ``limit`` messages, oldest first."""
        if limit <= 0:
            return []
        with _unavailable():
            items = await self.client.lrange(self.key(conversation, "buf"), -limit, -1)
        return self._decode(items)

    async def window(
        self, conversation: ConversationKey, first_seq: int, last_seq: int
    ) -> list[StoredMessage]:
        """The buffered messages whose sequence number is in ``first_seq..last_seq``."""
        if last_seq < first_seq:
            return []
        with _unavailable():
            items = await self.client.lrange(self.key(conversation, "buf"), 0, -1)
        return [m for m in self._decode(items) if first_seq <= m.seq <= last_seq]

    async def last_seq(self, conversation: ConversationKey) -> int:
        """The sequence number of the newest message (0 when there is none)."""
        return await self._get_int(self.key(conversation, "seq"))

    async def watermark(self, conversation: ConversationKey) -> int:
        """The last sequence number already summarized (0 when none)."""
        return await self._get_int(self.key(conversation, "wm"))

    async def epoch(self, conversation: ConversationKey) -> int:
        """A number that changes every time the conversation is cleared."""
        return await self._get_int(self.key(conversation, "epoch"))

    async def advance_watermark(
        self, conversation: ConversationKey, expected: int, new: int, epoch: int
    ) -> bool:
        """Move the watermark from ``expected`` to ``new`` if nothing changed meanwhile.

        Returns ``False`` (and changes nothing) when the watermark is not
        ``expected`` or the epoch is not ``epoch`` any more. Raises
        ``ValueError`` if ``new`` is before ``expected`` or after the last
        message. Messages now summarized become trimmable down to ``buffer_size``.
        """
        if new < expected:
            raise ValueError(f"watermark cannot move back from {expected} to {new}")
        with _unavailable():
            result = _int(
                await self._advance(
                    keys=self._keys(conversation),
                    args=[expected, new, epoch, self.buffer_size, self.ttl_ms],
                )
            )
        if result < 0:
            raise ValueError(f"watermark {new} is after the last message of {conversation.id}")
        return result == 1

    async def cached_summary(self, conversation: ConversationKey) -> Summary | None:
        """The cached latest summary, or ``None`` on a miss (a corrupt entry counts as one)."""
        with _unavailable():
            raw = await self.client.get(self.key(conversation, "summary"))
        if raw is None:
            return None
        try:
            return summary_from_json(_str(raw))
        except ValueError:
            log.warning("ignoring a malformed cached summary of %s", conversation.id)
            return None

    async def cache_summary(
        self, conversation: ConversationKey, summary: Summary, epoch: int
    ) -> bool:
        """Cache ``summary`` as the latest unless the epoch changed; returns whether it did."""
        with _unavailable():
            done = await self._cache_summary(
                keys=self._keys(conversation),
                # The cache serves the prompt's "latest summary": the summarizer's lines only.
                args=[epoch, summary_to_json(summary.without_messages()), self.ttl_ms],
            )
        return _int(done) == 1

    async def clear(self, conversation: ConversationKey) -> None:
        """Forget the buffer and the cached summary, set the watermark to the last sequence
        number and change the epoch. Sequence numbers keep counting up."""
        with _unavailable():
            await self._clear(keys=self._keys(conversation), args=[self.ttl_ms])
            await self.client.zrem(self._pending_key, conversation.id)

    async def forget_speaker(
        self, conversation: ConversationKey, speaker_id: str
    ) -> tuple[int, set[int]]:
        """Drop a member's messages from a space's buffer and the summary cache.

        Returns how many buffered messages went, and the sequence numbers of
        every message the member wrote that memory still knows of (for the
        summaries; see :meth:`forget_authored`).
        """
        with _unavailable():
            removed = _int(
                await self._forget_speaker(
                    keys=[self.key(conversation, "buf"), self.key(conversation, "summary")],
                    args=[speaker_id],
                )
            )
            seqs: set[int] = set()
            async for seq, who in self.client.hscan_iter(self.key(conversation, "authored")):
                if _str(who) == speaker_id:
                    seqs.add(int(seq))
        return removed, seqs

    async def forget_authored(self, conversation: ConversationKey, seqs: set[int]) -> None:
        """Drop the authorship of ``seqs`` (their summary lines are gone)."""
        if not seqs:
            return
        with _unavailable():
            await self.client.hdel(self.key(conversation, "authored"), *map(str, sorted(seqs)))

    async def window_failure(self, conversation: ConversationKey) -> WindowFailure | None:
        """The failed attempts at the conversation's next window, if any."""
        with _unavailable():
            data = await self.client.hgetall(self.key(conversation, "fail"))
        if not data:
            return None
        fields = {_str(k): _str(v) for k, v in data.items()}
        try:
            return WindowFailure(
                int(fields["first"]), int(fields.get("attempts", 0)), float(fields["retry_at"])
            )
        except (KeyError, ValueError):
            return None

    async def record_window_failure(
        self, conversation: ConversationKey, first_seq: int, retry_at: float
    ) -> int:
        """Count one more failed attempt at the window starting at ``first_seq``."""
        with _unavailable():
            attempts = await self._record_failure(
                keys=[self.key(conversation, "fail")], args=[first_seq, repr(retry_at)]
            )
        return _int(attempts)

    async def forget_window_failure(self, conversation: ConversationKey) -> None:
        """Drop the failure record (the window was stored)."""
        with _unavailable():
            await self.client.delete(self.key(conversation, "fail"))

    async def mark_pending(self, conversation: ConversationKey, since: float) -> None:
        """Note that a complete window waits since ``since``; an earlier note stays."""
        with _unavailable():
            await self.client.zadd(self._pending_key, {conversation.id: since}, nx=True)

    async def mark_done(self, conversation: ConversationKey) -> None:
        """Note that no complete window of the conversation waits any more."""
        with _unavailable():
            await self.client.zrem(self._pending_key, conversation.id)

    async def backlog(self) -> tuple[int, float | None]:
        """How many conversations have a complete window waiting, and since when (oldest)."""
        with _unavailable():
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.zcard(self._pending_key)
                pipe.zrange(self._pending_key, 0, 0, withscores=True)
                count, oldest = await pipe.execute()
        return int(count), (float(oldest[0][1]) if oldest else None)

    async def conversations(
        self, cursor: int = 0, count: int = 100, *, with_state: bool = False
    ) -> tuple[int, list[str]]:
        """Page through the ids of conversations that have a buffer: ``(next_cursor, ids)``.

        With ``with_state``, those that have a sequence number instead (every
        conversation Redis knows, including idle ones whose buffer expired).
        A page may be empty while the cursor is not 0 yet (``SCAN`` semantics);
        an id may show up on two pages if keys change meanwhile.
        """
        suffix = "seq" if with_state else "buf"
        with _unavailable():
            next_cursor, keys = await self.client.scan(
                cursor=cursor, match=self._buffer_pattern[: -len("buf")] + suffix, count=count
            )
        head = len(self.prefix) + len(":conv:{")
        ids = dict.fromkeys(_str(raw)[head : -len("}:") - len(suffix)] for raw in keys)
        return int(next_cursor), list(ids)

    async def upgrade_records(self, page: int = 200) -> int:
        """Upgrade every buffered message and cached summary of format 1 in place.

        One script per conversation, so each conversation is upgraded atomically
        and a message appended meanwhile is never lost; running it again (or in
        two processes at once) changes nothing more. Returns how many records
        were upgraded. Readers accept format 1 anyway: this only brings stored
        records up to date (see ``docs/memory-format.md``).
        """
        cursor, upgraded = 0, 0
        while True:
            cursor, ids = await self.conversations(cursor, page)
            for conversation_id in ids:
                base = self._base(conversation_id)
                with _unavailable():
                    count = await self._upgrade_format_1(keys=[f"{base}:buf", f"{base}:summary"])
                upgraded += _int(count)
            if cursor == 0:
                return upgraded

    async def close(self) -> None:
        """Close the client if the store owns it; a shared client is left to its owner."""
        if not self.owns_client:
            return
        with contextlib.suppress(redis.RedisError, OSError):
            await self.client.aclose()

    # Helpers

    async def _get_int(self, key: str) -> int:
        with _unavailable():
            value = await self.client.get(key)
        return _int(value)

    def _decode(self, items: list[Any]) -> list[StoredMessage]:
        messages: list[StoredMessage] = []
        for raw in items:
            try:
                messages.append(StoredMessage.from_dict(json.loads(_str(raw))))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("skipping a malformed buffered message: %s", exc)
        return messages
