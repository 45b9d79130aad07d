"""Translating discord.py messages and interactions into honeychat's IncomingMessage."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import discord

from honeychat.core.types import Attachment, IncomingMessage

PLATFORM = "discord"
_ANSWERABLE_TYPES = (discord.MessageType.default, discord.MessageType.reply)


def is_from_bot(message: discord.Message) -> bool:
    """Whether a bot, a webhook or the system wrote the message (we never answer those)."""
    return (
        message.author.bot
        or message.webhook_id is not None
        or message.type not in _ANSWERABLE_TYPES
    )


def channel_allowed(channel: object, allowed: list[str]) -> bool:
    """Whether the allow-list (channel ids; empty means all) admits a guild channel.

    A thread is admitted when its parent channel is.
    """
    if not allowed:
        return True
    ids = {str(getattr(channel, "id", ""))}
    parent_id = getattr(channel, "parent_id", None)
    if parent_id is not None:
        ids.add(str(parent_id))
    return bool(ids & set(allowed))


def _mentions_me(message: discord.Message, me: discord.abc.User) -> bool:
    if any(user.id == me.id for user in message.mentions):
        return True
    # Mentioning the bot's own managed role counts as mentioning the bot.
    return any(
        role.tags is not None and role.tags.bot_id == me.id for role in message.role_mentions
    )


def _replies_to_me(message: discord.Message, me: discord.abc.User) -> bool:
    if message.reference is None:
        return False
    resolved = message.reference.resolved
    return isinstance(resolved, discord.Message) and resolved.author.id == me.id


def strip_mentions_of(text: str, me: discord.abc.User) -> str:
    """Remove ``<@id>`` / ``<@!id>`` mentions of the bot and tidy the spaces left behind."""
    return re.sub(rf"<@!?{me.id}>", " ", text).strip()


def _attachment(item: discord.Attachment) -> Attachment:
    mime = item.content_type or ""
    if item.is_voice_message():
        kind = "voice"
    elif mime.startswith("image/"):
        kind = "photo"
    elif mime.startswith("video/"):
        kind = "video"
    elif mime.startswith("audio/"):
        kind = "audio"
    else:
        kind = "file"
    return Attachment(
        kind=kind, name=item.filename, mime_type=item.content_type, size=item.size, url=item.url
    )


def space_ids(channel: object, in_guild: bool) -> tuple[str | None, str | None]:
    """``(space_id, thread_id)`` of a guild channel: a thread belongs to its parent's space."""
    if not in_guild:
        return None, None
    channel_id = str(getattr(channel, "id", ""))
    parent_id = getattr(channel, "parent_id", None)
    if isinstance(channel, discord.Thread) and parent_id is not None:
        return str(parent_id), channel_id
    return channel_id, None


def administers(permissions: discord.Permissions) -> bool:
    """Whether resolved permissions make a member a space admin: Manage Server or Manage
    Channels (Administrator implies both)."""
    return permissions.manage_guild or permissions.manage_channels


def _admin_check(message: discord.Message) -> Callable[[], Awaitable[bool]] | None:
    channel, author = message.channel, message.author
    if message.guild is None or not isinstance(author, discord.Member):
        return None

    async def check() -> bool:
        # From the gateway's cache (roles, overwrites): no request needed.
        return administers(channel.permissions_for(author))

    return check


def to_incoming(message: discord.Message, me: discord.abc.User) -> IncomingMessage:
    """The IncomingMessage for a user's message; ``chat_id`` is the channel or thread."""
    mentions_bot = _mentions_me(message, me)
    space_id, thread_id = space_ids(message.channel, message.guild is not None)
    return IncomingMessage(
        platform=PLATFORM,
        user_id=str(message.author.id),
        chat_id=str(message.channel.id),
        text=strip_mentions_of(message.content, me) if mentions_bot else message.content,
        user_name=message.author.display_name,
        message_id=str(message.id),
        is_direct=message.guild is None,
        mentions_bot=mentions_bot,
        replies_to_bot=_replies_to_me(message, me),
        attachments=tuple(_attachment(a) for a in message.attachments),
        sent_at=message.created_at,
        space_id=space_id,
        thread_id=thread_id,
        is_space_admin=_admin_check(message),
    )


def interaction_incoming(interaction: discord.Interaction, text: str) -> IncomingMessage:
    """An IncomingMessage standing for a slash command or a component click."""
    space_id, thread_id = space_ids(interaction.channel, interaction.guild_id is not None)
    if interaction.guild_id is not None and space_id in (None, ""):
        space_id = str(interaction.channel_id)
    permissions = interaction.permissions

    async def check() -> bool:
        return administers(permissions)  # resolved by Discord for this member and channel

    return IncomingMessage(
        platform=PLATFORM,
        user_id=str(interaction.user.id),
        chat_id=str(interaction.channel_id or interaction.user.id),
        text=text,
        user_name=interaction.user.display_name,
        message_id=str(interaction.id),
        is_direct=interaction.guild_id is None,
        sent_at=interaction.created_at,
        space_id=space_id,
        thread_id=thread_id,
        is_space_admin=None if interaction.guild_id is None else check,
    )
