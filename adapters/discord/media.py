"""Discord media: downloading attachments from Discord's CDN, and sending spoken replies.

Attachments carry their ``size`` (bytes, as Discord stored them) and, for
voice messages, ``duration_secs``; the core checks both before the download.
The bytes are streamed from the attachment's signed CDN URL and the download
stops at the cap (a file larger than Discord said is never fully fetched). A spoken reply is an audio
file attachment (``discord.File``) sent to the channel.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from typing import TYPE_CHECKING

import discord

from honeychat.core.media.download import get_capped
from honeychat.core.media.errors import MediaTooLarge
from honeychat.core.media.items import SpeechAudio
from honeychat.core.types import AttachmentFetcher, IncomingMessage, SentMessage

if TYPE_CHECKING:
    from .channel import DiscordChannel

log = logging.getLogger(__name__)


def with_downloads(incoming: IncomingMessage, message: discord.Message) -> IncomingMessage:
    """``incoming`` with a downloader (and the voice message duration) on each attachment."""
    if not message.attachments:
        return incoming
    attachments = tuple(
        dataclasses.replace(ours, duration=theirs.duration, fetch=_fetcher(theirs))
        for ours, theirs in zip(incoming.attachments, message.attachments, strict=True)
    )
    return dataclasses.replace(incoming, attachments=attachments)


def _fetcher(attachment: discord.Attachment) -> AttachmentFetcher:
    async def fetch(limit: int) -> bytes:
        if attachment.size > limit:
            raise MediaTooLarge(f"discord attachment of {attachment.size} bytes > {limit}")
        # Streamed and cut at the cap: ``attachment.read()`` would buffer the whole file.
        return await get_capped(attachment.url, limit, what="discord CDN")

    return fetch


async def send_audio(channel: DiscordChannel, audio: SpeechAudio) -> SentMessage | None:
    """Send a spoken reply as an audio attachment in the conversation's channel."""
    upload = discord.File(io.BytesIO(audio.data), filename=audio.filename)
    try:
        message = await channel.target.send(file=upload)
    except discord.Forbidden as error:
        channel.forbidden.report(channel.channel_id, "attach files", error)
        return None
    except discord.HTTPException as error:
        log.warning("sending a voice reply to channel %s failed: %s", channel.channel_id, error)
        return None
    return SentMessage(message_id=str(message.id), chat_id=str(message.channel.id))
