"""Clearing a conversation: the one path `/forget`, `honeychat memory clear` and the
inspector's DELETE all take, so every caller gets the same guarantees."""

from __future__ import annotations

from typing import TYPE_CHECKING

from honeychat.core.media.keep import forget_images

if TYPE_CHECKING:
    from honeychat.core.bot import Bot
    from honeychat.core.types import ConversationKey


async def clear_conversation(bot: Bot, conversation: ConversationKey) -> None:
    """Clear through the memory hooks, then notify plugins that keep their own state.

    Store failures propagate (as ``StoreUnavailable``) so the caller can tell the user.
    """
    await bot.plugins.call(
        "honeychat_clear_memory", conversation=conversation, bot=bot, strict=True
    )
    forget_images(bot.settings.data_dir, conversation)
    await bot.plugins.call("honeychat_conversation_cleared", conversation=conversation, bot=bot)


async def forget_contributions(bot: Bot, space: ConversationKey, user_id: str) -> int:
    """Forget what one member said in a space: their messages, and every summary line
    whose provenance includes one of them. Returns how many messages and lines went.

    Raises ``StoreUnavailable`` when memory cannot be reached (or is switched off).
    """
    from honeychat.core.memory.stores import StoreUnavailable

    if bot.memory is None:
        raise StoreUnavailable("hot", "memory is switched off")
    return await bot.memory.forget_speaker(space, user_id)
