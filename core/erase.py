"""Erasing everything about a user, and the registry of every place that holds it.

`/forget everything`, ``honeychat memory clear --user ID --all`` and the
inspector's ``DELETE /api/users/...`` all call :func:`erase_user`. It finds the
user's conversations (every character, every platform unless one is named)
wherever they are known, clears each one through the memory hooks (both
layers, the summary cache, line vectors, provenance trails, and plugins'
own state through ``honeychat_conversation_cleared``), then runs every
:class:`Eraser` in :data:`ERASERS`:

- **Redis keys**: every key of a :class:`UserKeys` family whose name names the
  user or one of their conversations (:data:`USER_KEYS`: the conversation's
  keys, including the sequence number, watermark and generation that a clear
  keeps; the chosen character; provenance trails; turn ordering; plugins add
  theirs with :func:`register_user_keys`, as the quota plugin does for its
  counters), and the conversations' entries in :data:`CONVERSATION_SETS`;
- **this process's memory**: its copy of the user's chosen character, and the
  messages of the user waiting in the spool for Redis (other processes keep
  own in-memory copy of the chosen character until they restart);
- **terminal history**: what the user typed in ``honeychat chat``.

Not erased, because it holds nothing of the user: the choice codec's long
button payloads (``command:value`` pairs made by commands), event dedupe
markers (platform event ids), and intake stream entries, which exist only
until their event is handled (seconds). Attachments are never kept: only the
text made from them is, in the messages above. ``tests/test_erase_user.py``
proves the list complete: after a full conversation and an erasure, no Redis
key or value, no Chroma document or metadata and no file under the data
directory holds the user's id or words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from honeychat.core.forget import clear_conversation
from honeychat.core.memory.stores import StoreUnavailable
from honeychat.core.types import ConversationKey

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

log = logging.getLogger(__name__)

LIST_TIMEOUT = 120.0
"""Seconds finding a user's documents in the cold store may take (one query per collection)."""


@dataclass(frozen=True, slots=True)
class UserRef:
    """Whose data: ``user_id`` on ``platform``, or on every platform (``None``)."""

    user_id: str
    platform: str | None = None

    def __post_init__(self) -> None:
        if not self.user_id:
            raise ValueError("a user id cannot be empty")

    def owns(self, conversation: ConversationKey) -> bool:
        """Whether ``conversation`` is one of this user's."""
        return conversation.user_id == self.user_id and (
            self.platform is None or conversation.platform == self.platform
        )


@dataclass(frozen=True, slots=True)
class UserKeys:
    """A family of Redis keys whose names carry a user, directly or in a conversation id.

    ``pattern`` is matched against the whole key after ``<KEY_PREFIX>:``. It
    has either a group ``conversation`` (a :attr:`ConversationKey.id`) or the
    groups ``platform`` and ``user`` (percent-encoded as in a conversation id).
    """

    name: str
    holds: str
    pattern: re.Pattern[str]

    def owner(self, key: str) -> ConversationKey | tuple[str, str] | None:
        """The conversation, or ``(platform, user)``, that ``key`` belongs to; ``None``
        if the key is not of this family."""
        match = self.pattern.fullmatch(key)
        if match is None:
            return None
        groups = match.groupdict()
        if groups.get("conversation") is not None:
            try:
                return ConversationKey.parse(groups["conversation"])
            except ValueError:
                return None
        user = ConversationKey.parse(f"{groups['platform']}:{groups['user']}:-")
        return (user.platform, user.user_id)


_BUILT_IN_KEYS = (
    (
        "conversation",
        "the recent messages, the cached latest summary, sequence number, watermark, "
        "generation, a failing window's record and the summary lease",
        r"conv:\{(?P<conversation>[^{}]+)\}:[a-z]+",
    ),
    (
        "character choice",
        "the character the user talks to",
        r"user:(?P<platform>[^:]+):(?P<user>[^:]+):character",
    ),
    (
        "provenance trail",
        "what went into each reply's prompt",
        r"trail:(?P<conversation>[^:]+:[^:]+:[^:]+)",
    ),
    (
        "memory sharing",
        "whether the user lets spaces see their private memory (/memory share), per character",
        r"share:(?P<platform>[^:]+):(?P<user>[^:]+):[^:]+",
    ),
    (
        "turn ordering",
        "the conversation's queue of waiting turns and the lease of the process serving it",
        r"order:(?:queue|lease):(?P<conversation>[^:]+:[^:]+:[^:]+)",
    ),
)
USER_KEYS: list[UserKeys] = [UserKeys(n, h, re.compile(p)) for n, h, p in _BUILT_IN_KEYS]
"""Families of Redis keys that name a user; see :func:`register_user_keys`."""

CONVERSATION_SETS = ("summaries:pending", "summaries:active", "conversations:active")
"""Sorted sets (after ``<KEY_PREFIX>:``) whose members are conversation ids."""


def register_user_keys(family: UserKeys) -> None:
    """Add a family of keys a plugin keeps per user, so that erasing a user deletes them."""
    if all(f.name != family.name for f in USER_KEYS):
        USER_KEYS.append(family)


@dataclass(slots=True)
class Erasure:
    """What an erasure found and removed, by store."""

    user: UserRef
    conversations: list[str] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for people: how many conversations and items, by store."""
        parts = ", ".join(f"{name}: {count}" for name, count in self.removed.items() if count)
        where = self.user.platform or "every platform"
        return (
            f"erased {len(self.conversations)} conversation(s) of user {self.user.user_id!r} "
            f"on {where}" + (f" ({parts})" if parts else "")
        )


Eraser = Callable[["Bot", UserRef, list[ConversationKey]], Awaitable[int]]


async def _redis_keys(bot: Bot, user: UserRef, conversations: list[ConversationKey]) -> int:
    if bot.redis is None:
        return 0
    prefix = f"{bot.settings.key_prefix}:"
    doomed: list[str] = []
    try:
        async for raw in bot.redis.scan_iter(match=_glob_escape(prefix) + "*", count=500):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            if _names_user(key[len(prefix) :], user):
                doomed.append(key)
        for start in range(0, len(doomed), 500):
            await bot.redis.delete(*doomed[start : start + 500])
        ids = [c.id for c in conversations]
        for name in CONVERSATION_SETS:
            if ids:
                await bot.redis.zrem(prefix + name, *ids)
    except Exception as exc:  # redis errors and OSError: the erasure is incomplete
        raise StoreUnavailable("hot", f"erasing the user's Redis keys: {exc}") from exc
    return len(doomed)


def _names_user(key: str, user: UserRef) -> bool:
    for family in USER_KEYS:
        owner = family.owner(key)
        if owner is None:
            continue
        if isinstance(owner, ConversationKey):
            return user.owns(owner)
        platform, user_id = owner
        return user.owns(ConversationKey(platform, user_id, "-"))
    return False


async def _process_memory(bot: Bot, user: UserRef, conversations: list[ConversationKey]) -> int:
    return bot.forget_character_choice(user.user_id, user.platform)


async def _spool(bot: Bot, user: UserRef, conversations: list[ConversationKey]) -> int:
    if bot.memory is None:
        return 0
    return bot.memory.spool.discard_user(user.platform, user.user_id)


async def _terminal_history(bot: Bot, user: UserRef, conversations: list[ConversationKey]) -> int:
    if user.platform not in (None, "terminal"):
        return 0
    from honeychat.adapters.terminal import history_path

    path = history_path(bot.settings.data_dir, user.user_id)
    if not path.exists():
        return 0
    path.unlink(missing_ok=True)
    return 1


@dataclass(frozen=True, slots=True)
class Store:
    """One place that holds user content, and how to erase a user from it."""

    name: str
    erase: Eraser


ERASERS: list[Store] = [
    Store("redis keys", _redis_keys),
    Store("character choice in this process", _process_memory),
    Store("spool", _spool),
    Store("terminal history", _terminal_history),
]
"""Run in this order after every conversation of the user was cleared."""


async def find_conversations(bot: Bot, user: UserRef) -> list[ConversationKey]:
    """Every conversation of ``user`` that Redis or the cold store knows (sorted by id).

    Raises ``StoreUnavailable`` when a layer cannot be read: an erasure must
    not miss conversations because a store was down.
    """
    found: set[ConversationKey] = set()
    memory = bot.memory
    if bot.redis is not None:
        prefix = f"{bot.settings.key_prefix}:"
        try:
            async for raw in bot.redis.scan_iter(match=_glob_escape(prefix) + "*", count=500):
                key = (raw.decode() if isinstance(raw, bytes) else str(raw))[len(prefix) :]
                for family in USER_KEYS:
                    owner = family.owner(key)
                    if isinstance(owner, ConversationKey) and user.owns(owner):
                        found.add(owner)
            for name in CONVERSATION_SETS:
                async for member, _ in bot.redis.zscan_iter(prefix + name, count=500):
                    with contextlib.suppress(ValueError):
                        listed = ConversationKey.parse(
                            member.decode() if isinstance(member, bytes) else str(member)
                        )
                        if user.owns(listed):
                            found.add(listed)
        except Exception as exc:
            raise StoreUnavailable("hot", f"listing the user's conversations: {exc}") from exc
    cold = memory.cold if memory is not None else None
    listing = getattr(cold, "conversations_of", None)
    if listing is not None:
        try:
            ids: list[str] = await asyncio.wait_for(
                listing(user.user_id, user.platform), LIST_TIMEOUT
            )
        except TimeoutError as exc:
            raise StoreUnavailable("cold", f"no answer within {LIST_TIMEOUT:g}s") from exc
        for conversation_id in ids:
            with contextlib.suppress(ValueError):
                found.add(ConversationKey.parse(conversation_id))
    if memory is not None:
        found.update(c for c in memory.spool.conversations() if user.owns(c))
    return sorted(found, key=lambda c: c.id)


async def erase_user(bot: Bot, user: UserRef) -> Erasure:
    """Erase everything about ``user``: every conversation, then every store in :data:`ERASERS`.

    Raises ``StoreUnavailable`` if a store cannot be reached before anything
    was changed (finding the conversations reads both layers first), and
    :class:`ErasureIncomplete` if one fails later. Running it again finishes
    it: every step is idempotent.
    """
    conversations = await find_conversations(bot, user)
    result = Erasure(user, [c.id for c in conversations])
    try:
        for conversation in conversations:
            await clear_conversation(bot, conversation)
        result.removed["conversations"] = len(conversations)
        for store in ERASERS:
            result.removed[store.name] = await store.erase(bot, user, conversations)
    except StoreUnavailable as exc:
        raise ErasureIncomplete(exc.layer, exc.cause) from exc
    log.warning("%s", result.describe())
    return result


class ErasureIncomplete(StoreUnavailable):
    """A store failed after the erasure had begun: part of the user's data is gone.

    Running :func:`erase_user` again, once the store is back, finishes it.
    """


_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def _glob_escape(text: str) -> str:
    return _GLOB_SPECIAL.sub(r"\\\1", text)
