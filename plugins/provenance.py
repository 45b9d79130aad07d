"""Built-in plugin: a provenance trail for every reply ("why did it say that?").

After each answered turn it records what went into the prompt (see
:mod:`honeychat.core.provenance`) in Redis for ``PROVENANCE_TTL_HOURS``; the
inspector serves it (``GET /api/conversations/.../trail``) and shows it next
to each reply. Clearing a conversation deletes its trails too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from honeychat import hookimpl
from honeychat.core.memory.tokens import count_tokens
from honeychat.core.provenance import TrailStore, build_trail
from honeychat.core.types import ConversationKey, Role

if TYPE_CHECKING:
    from honeychat.core.bot import Bot
    from honeychat.core.turn import Turn

log = logging.getLogger(__name__)


class ProvenancePlugin:
    """Records each reply's provenance trail; deletes trails with their conversation."""

    def __init__(self) -> None:
        self.store: TrailStore | None = None

    @hookimpl
    async def honeychat_startup(self, bot: Bot) -> None:
        ttl = bot.settings.provenance_ttl_hours * 3600
        if bot.redis is not None and ttl > 0:
            self.store = TrailStore(bot.redis, prefix=bot.settings.key_prefix, ttl_seconds=ttl)
        bot.trails = self.store

    @hookimpl
    async def honeychat_turn_complete(self, turn: Turn) -> None:
        memory = turn.bot.memory
        if self.store is None or memory is None or memory.hot is None:
            return
        try:
            # The reply was stored last; turns of one conversation are ordered.
            newest = await memory.hot.recent(turn.conversation, 2)
            reply = next((m for m in reversed(newest) if m.role is Role.ASSISTANT), None)
            user = next((m for m in reversed(newest) if m.role is Role.USER), None)
            trail = build_trail(
                turn,
                reply_seq=reply.seq if reply else None,
                user_seq=user.seq if user else None,
                count=count_tokens,
            )
            await self.store.record(turn.conversation, trail)
        except Exception as exc:  # an explanation is a cache: never fail a turn for it
            log.warning("provenance trail of %s not kept: %s", turn.conversation.id, exc)

    @hookimpl
    async def honeychat_clear_memory(self, conversation: ConversationKey, bot: Bot) -> None:
        if self.store is not None:
            await self.store.clear(conversation)
