"""Answering an interaction (slash command or component click) with a core Reply."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

import discord

from honeychat.core.choices import ChoiceCodec
from honeychat.core.textsplit import split_text
from honeychat.core.types import Reply

from .channel import DISCORD_LIMITS, NO_MENTIONS
from .components import choices_view

log = logging.getLogger(__name__)

DEFER_AFTER = 2.0
"""Discord wants a first response within 3 s; slower commands are deferred (privately)."""


async def reply_when_ready(
    interaction: discord.Interaction,
    pending: Awaitable[Reply],
    *,
    update: bool = False,
    codec: ChoiceCodec | None = None,
) -> None:
    """Await ``pending`` and answer with it, deferring first if it takes long.

    ``update`` replaces the clicked message instead of posting a new one
    (used when a choice was picked on an ephemeral message).
    """
    task = asyncio.ensure_future(pending)
    done, _ = await asyncio.wait({task}, timeout=DEFER_AFTER)
    if not done:
        try:
            # Deferred answers are private: a slow /memory must not end up public.
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException as error:
            log.warning("deferring interaction %s failed: %s", interaction.id, error)
    reply = await task
    await respond(interaction, reply, update=update, codec=codec)


async def respond(
    interaction: discord.Interaction,
    reply: Reply,
    *,
    update: bool = False,
    codec: ChoiceCodec | None = None,
) -> None:
    """Send ``reply`` as the interaction's response, split at 2,000 characters.

    Choices become components on the last part. Errors are logged, never raised.
    """
    chunks = split_text(reply.text, DISCORD_LIMITS.max_text_length) or ["…"]
    view = choices_view(reply.choices, codec)
    try:
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            await _send_part(
                interaction, chunk, reply.ephemeral, view if last else None, update and index == 0
            )
    except discord.HTTPException as error:
        log.warning("answering interaction %s failed: %s", interaction.id, error)


async def _send_part(
    interaction: discord.Interaction,
    text: str,
    ephemeral: bool,
    view: discord.ui.View | None,
    update: bool,
) -> None:
    if not interaction.response.is_done():
        if update:
            # Replacing the clicked message: drop its buttons unless the reply brings new ones.
            await interaction.response.edit_message(
                content=text, view=view, allowed_mentions=NO_MENTIONS
            )
        elif view is not None:
            await interaction.response.send_message(
                text, ephemeral=ephemeral, view=view, allowed_mentions=NO_MENTIONS
            )
        else:
            await interaction.response.send_message(
                text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS
            )
        return
    if view is not None:
        await interaction.followup.send(
            text, ephemeral=ephemeral, view=view, allowed_mentions=NO_MENTIONS
        )
    else:
        await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)
