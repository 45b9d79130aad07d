"""Telegram media: downloading what users send (getFile), and sending spoken replies.

Downloads follow the Bot API: ``getFile`` gives a ``file_path``, then the
bytes come from ``{api}/file/bot<token>/<file_path>`` (bots may download up to
20 MB). The URL holds the bot token, so it is never logged and errors are
reported by type only. Spoken replies go out with ``sendVoice`` (an OGG/Opus
file shows as a playable voice note) or, for other formats, ``sendAudio``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from aiogram import Bot as AiogramBot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import BufferedInputFile, Message

from honeychat.core.media.download import read_capped
from honeychat.core.media.errors import MediaDownloadFailed, MediaTooLarge
from honeychat.core.media.items import SpeechAudio
from honeychat.core.types import AttachmentFetcher, IncomingMessage, SentMessage

if TYPE_CHECKING:
    from honeychat.adapters.telegram.channel import TelegramChannel

log = logging.getLogger(__name__)

BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024
"""The Bot API serves bots files of up to 20 MB."""


def _file_ids(message: Message) -> dict[str, tuple[str, float | None]]:
    """File id (and duration) of each downloadable attachment kind of ``message``."""
    found: dict[str, tuple[str, float | None]] = {}
    if message.photo:
        found["photo"] = (message.photo[-1].file_id, None)
    if message.voice:
        found["voice"] = (message.voice.file_id, float(message.voice.duration))
    if message.audio:
        found["audio"] = (message.audio.file_id, float(message.audio.duration))
    if message.document and not message.animation:
        found["file"] = (message.document.file_id, None)
    return found


def with_downloads(incoming: IncomingMessage, message: Message, tg: AiogramBot) -> IncomingMessage:
    """``incoming`` with a downloader on each attachment Telegram lets the bot download."""
    ids = _file_ids(message)
    if not ids:
        return incoming
    attachments = []
    for attachment in incoming.attachments:
        known = ids.get(attachment.kind)
        if known is not None:
            file_id, duration = known
            attachment = dataclasses.replace(
                attachment, duration=duration, fetch=_fetcher(tg, file_id)
            )
        attachments.append(attachment)
    return dataclasses.replace(incoming, attachments=tuple(attachments))


def _fetcher(tg: AiogramBot, file_id: str) -> AttachmentFetcher:
    async def fetch(limit: int) -> bytes:
        return await download(tg, file_id, limit)

    return fetch


async def download(tg: AiogramBot, file_id: str, limit: int) -> bytes:
    """The bytes of a file, at most ``limit`` (and the Bot API's 20 MB)."""
    limit = min(limit, BOT_API_DOWNLOAD_LIMIT)
    try:
        file = await tg.get_file(file_id)
    except TelegramBadRequest as exc:
        if "too big" in exc.message.lower():
            raise MediaTooLarge("telegram: file is too big for getFile") from None
        raise MediaDownloadFailed(f"telegram getFile failed: {exc.message}") from None
    if file.file_size is not None and file.file_size > limit:
        raise MediaTooLarge(f"telegram file of {file.file_size} bytes > {limit}")
    if not file.file_path:
        raise MediaDownloadFailed("telegram getFile gave no file_path")
    url = tg.session.api.file_url(tg.token, file.file_path)
    chunks = tg.session.stream_content(url=url, timeout=60, raise_for_status=True)
    return await read_capped(chunks, limit)


async def send_audio(channel: TelegramChannel, audio: SpeechAudio) -> SentMessage | None:
    """Send a spoken reply: a voice note when it is OGG/Opus, else an audio file."""
    if channel.chat_id in channel.blocked:
        return None
    upload = BufferedInputFile(audio.data, filename=audio.filename)
    try:
        if audio.mime_type == "audio/ogg":
            sent = await channel.tg.send_voice(
                channel.chat_id, upload, message_thread_id=channel.thread_id
            )
        else:
            sent = await channel.tg.send_audio(
                channel.chat_id, upload, message_thread_id=channel.thread_id
            )
    except TelegramForbiddenError as exc:
        channel.blocked.block(channel.chat_id, exc.message)
        return None
    except TelegramAPIError as exc:
        log.warning("telegram: voice reply to %s failed: %s", channel.chat_id, exc.message)
        return None
    return SentMessage(message_id=str(sent.message_id), chat_id=str(channel.chat_id))
