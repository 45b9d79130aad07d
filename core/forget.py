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
