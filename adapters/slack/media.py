"""Slack media: downloading shared files, and uploading spoken replies.

A ``message`` event with ``subtype: file_share`` lists its files; each has a
``url_private`` that only answers with the bot token as a bearer header (the
app needs the ``files:read`` scope). Without it Slack serves its login page:
the core's type check by content turns that into a clear refusal. The token
is only ever sent to Slack's own hosts (``*.slack.com``, or the host of
``SLACK_API_URL``). Spoken replies are uploaded with ``files_upload_v2``
(``files.getUploadURLExternal``, the upload, ``files.completeUploadExternal``;
the app needs ``files:write``), in the conversation's thread.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from slack_sdk.web.async_client import AsyncWebClient

from honeychat.core.media.download import get_capped
from honeychat.core.media.items import SpeechAudio
from honeychat.core.types import AttachmentFetcher, IncomingMessage, SentMessage

if TYPE_CHECKING:
    from honeychat.adapters.slack.channel import SlackChannel

log = logging.getLogger(__name__)


def slack_host(url: str, api_url: str | None) -> bool:
    """Whether ``url`` is served by Slack (so the bot token may be sent to it)."""
    host = urlparse(url).hostname or ""
    if api_url and host == urlparse(api_url).hostname:
        return True
    return host == "slack.com" or host.endswith(".slack.com")


def with_downloads(incoming: IncomingMessage, token: str, api_url: str | None) -> IncomingMessage:
    """``incoming`` with a downloader on each file whose private URL is on Slack."""
    if not any(a.url for a in incoming.attachments):
        return incoming
    attachments = tuple(
        dataclasses.replace(a, fetch=_fetcher(a.url, token))
        if a.url and slack_host(a.url, api_url)
        else a
        for a in incoming.attachments
    )
    return dataclasses.replace(incoming, attachments=attachments)


def _fetcher(url: str, token: str) -> AttachmentFetcher:
    async def fetch(limit: int) -> bytes:
        headers = {"Authorization": f"Bearer {token}"}
        return await get_capped(url, limit, what="slack file download", headers=headers)

    return fetch


async def send_audio(channel: SlackChannel, audio: SpeechAudio) -> SentMessage | None:
    """Upload a spoken reply as a file in the conversation (its thread, if any)."""
    client: AsyncWebClient = channel.client
    response = await channel.api.call(
        "files.upload",
        lambda: client.files_upload_v2(
            channel=channel.channel,
            file=audio.data,
            filename=audio.filename,
            title=audio.filename,
            thread_ts=channel.thread_ts,
        ),
    )
    if response is None:
        return None
    file = response.get("file") or {}
    return SentMessage(message_id=str(file.get("id", "")), chat_id=channel.channel)
