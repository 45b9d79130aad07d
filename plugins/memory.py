"""Built-in plugin: two-layer memory (Redis hot buffer + Chroma summaries).

Disable it (``DISABLED_PLUGINS=memory``) and implement the memory hooks to
replace memory wholesale, or keep it and answer ``honeychat_hot_store`` /
``honeychat_cold_store`` from another plugin to swap one layer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from honeychat import hookimpl
from honeychat.core.memory.retrieval import RetrievalOptions
from honeychat.core.memory.service import MemoryService
from honeychat.core.memory.stores import ColdStore, HotStore, StoreUnavailable
from honeychat.core.memory.summarizer import Summarizer, llm_summarize_fn
from honeychat.core.types import ConversationKey, MemoryContext, Role, StoredMessage, Summary

if TYPE_CHECKING:
    from honeychat.core.bot import Bot
    from honeychat.core.retention import RetentionSweeper
    from honeychat.core.turn import Turn

log = logging.getLogger(__name__)


class MemoryPlugin:
    """Wires the memory layers into the turn pipeline."""

    def __init__(self) -> None:
        self.service: MemoryService | None = None
        self._last_seq: dict[ConversationKey, int] = {}
        self.retention: RetentionSweeper | None = None

    # Default layers (trylast, so another plugin's answer wins)

    @hookimpl(trylast=True)
    def honeychat_hot_store(self, bot: Bot) -> HotStore | None:
        if bot.redis is None:
            return None
        from honeychat.core.memory.hot import RedisHotStore

        s = bot.settings
        return RedisHotStore(
            bot.redis,
            prefix=s.key_prefix,
            buffer_size=s.hot_buffer_size,
            ttl_seconds=s.hot_buffer_ttl_days * 86400,
            require_state=True,
        )

    @hookimpl(trylast=True)
    async def honeychat_cold_store(self, bot: Bot) -> ColdStore | None:
        from honeychat.core.memory.cold import open_cold_store

        try:
            store = await asyncio.to_thread(open_cold_store, bot.settings)
        except StoreUnavailable as exc:
            log.error("long-term memory disabled: %s", exc)
            return None
        return store

    # Lifecycle

    @hookimpl
    async def honeychat_startup(self, bot: Bot) -> None:
        hot = await bot.plugins.first("honeychat_hot_store", bot=bot)
        cold = await bot.plugins.first("honeychat_cold_store", bot=bot)
        s = bot.settings
        summarizer = None
        if hot is not None and cold is not None and bot.llm is not None:
            if bot.jobs is None:  # summaries are jobs on Redis
                log.error("summaries disabled: they need Redis for their job queue")
            else:
                summarizer = Summarizer(
                    hot,
                    cold,
                    llm_summarize_fn(bot.llm, s.summarizer_model),
                    jobs=bot.jobs,
                    window=s.summary_window_messages,
                    model=s.summarizer_model,
                    character_name=lambda cid: c.name if (c := bot.characters.get(cid)) else cid,
                    max_attempts=s.summary_max_attempts,
                    retry_seconds=s.summary_retry_seconds,
                    idle_seconds=s.memory_idle_summary_minutes * 60,
                )
        self.service = MemoryService(
            hot,
            cold,
            summarizer,
            budget_tokens=s.memory_budget_tokens,
            options=RetrievalOptions(candidates=s.retrieval_candidates),
            read_timeout=s.memory_read_timeout,
            spool_size=s.memory_spool_size,
        )
        bot.memory = self.service
        if bot.redis is not None:
            self.service.start_format_upgrade(bot.redis, s.key_prefix)
        if s.memory_retention_days is not None:
            from honeychat.core.retention import RetentionSweeper

            self.retention = RetentionSweeper(
                bot, s.memory_retention_days, every_seconds=s.retention_sweep_minutes * 60
            )
            self.retention.start()
        warm_up = getattr(cold, "warm_up", None)
        if warm_up is not None:
            try:
                await warm_up()
            except StoreUnavailable as exc:
                self.service.cold_health.failed(exc.cause)

    @hookimpl
    async def honeychat_shutdown(self, bot: Bot) -> None:
        if self.retention is not None:
            await self.retention.stop()
        if self.service is not None:
            await self.service.close()

    # The turn

    @hookimpl
    async def honeychat_persist(
        self, conversation: ConversationKey, role: str, text: str, turn: Turn
    ) -> StoredMessage | None:
        if self.service is None:
            return None
        # Who wrote it comes from the turn, never from the text (see docs/memory-format.md).
        speaker_id = None
        if Role(role) is Role.USER:
            speaker = turn.message.user_name
            attachments = tuple(a.kind for a in turn.message.attachments)
            if conversation.is_space:  # a member's contributions can be forgotten by id
                speaker, speaker_id = turn.message.user_name or "", turn.message.user_id
        else:
            speaker, attachments = turn.character.name, ()
        stored = await self.service.persist(
            conversation,
            Role(role),
            text,
            turn.message.sent_at,
            tools=turn.tools if role == Role.ASSISTANT.value else (),
            speaker=speaker,
            speaker_id=speaker_id,
            attachments=attachments,
        )
        if stored is not None:
            self._last_seq[conversation] = stored.seq
        return stored

    @hookimpl
    async def honeychat_memory_context(self, turn: Turn) -> MemoryContext | None:
        if self.service is None:
            return None
        overrides = turn.character.memory
        recent = (
            overrides.recent_messages
            if overrides.recent_messages is not None
            else turn.tier.recent_messages
        )
        recent = min(recent, turn.bot.settings.hot_buffer_size)
        k = (
            overrides.retrieval_k
            if overrides.retrieval_k is not None
            else turn.bot.settings.retrieval_k
        )
        context = await self.service.context(turn.conversation, turn.text, recent=recent, k=k)
        shared_from = turn.scope.shared_from if turn.scope is not None else None
        if shared_from is None:
            return context
        shared = await self.service.shared(shared_from, turn.text, k=k)
        return replace(context, shared=tuple(shared))

    @hookimpl
    async def honeychat_schedule_summary(self, conversation: ConversationKey) -> None:
        if self.service is not None:
            await self.service.schedule_summary(
                conversation, self._last_seq.pop(conversation, None)
            )

    # Operations

    @hookimpl
    async def honeychat_search_memory(
        self, conversation: ConversationKey, query: str, k: int
    ) -> list[Summary] | None:
        if self.service is None:
            return None
        return await self.service.search(conversation, query, k)

    @hookimpl
    async def honeychat_export_memory(self, conversation: ConversationKey) -> dict[str, Any] | None:
        if self.service is None:
            return None
        return await self.service.export(conversation)

    @hookimpl
    async def honeychat_clear_memory(self, conversation: ConversationKey) -> None:
        if self.service is not None:
            await self.service.clear(conversation)
