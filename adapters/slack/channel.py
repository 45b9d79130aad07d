"""The :class:`Channel` the core answers through: chat.postMessage, chat.update, ephemerals."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from honeychat.adapters.slack.blocks import render_reply
from honeychat.adapters.slack.media import send_audio
from honeychat.adapters.slack.mrkdwn import to_mrkdwn
from honeychat.core.choices import ChoiceCodec
from honeychat.core.media.items import SpeechAudio
from honeychat.core.textsplit import split_text
from honeychat.core.types import ChannelLimits, Reply, SentMessage

log = logging.getLogger(__name__)

SLACK_LIMITS = ChannelLimits(max_text_length=3500, edit_interval=1.2, typing_interval=0)
"""Markdown chunks below Slack's ~4,000-character message text; chat.update is
Tier 3 (about 50 calls a minute), so streaming edits come at most every 1.2 s;
bots have no typing indicator outside assistant threads."""

MAX_MRKDWN_LENGTH = 3900
"""Hard cap on converted text per message (escaping can make text longer)."""

MAX_RETRIES = 3
MAX_RETRY_AFTER = 30.0
"""Longest Retry-After we wait inside one call; beyond it the call is given up."""


class SlackApiCaller:
    """Calls the Web API, honouring 429 Retry-After and turning errors into log lines."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def call(
        self, what: str, call: Callable[[], Awaitable[AsyncSlackResponse]]
    ) -> AsyncSlackResponse | None:
        """Run ``call`` with up to :data:`MAX_RETRIES` retries on 429; ``None`` on failure."""
        for attempt in range(MAX_RETRIES + 1):
            try:
                return await call()
            except SlackApiError as exc:
                response = exc.response
                if response.status_code == 429 and attempt < MAX_RETRIES:
                    delay = _retry_after(response.headers)
                    if delay <= MAX_RETRY_AFTER:
                        log.info("slack %s rate limited; retrying in %.1fs", what, delay)
                        await asyncio.sleep(delay)
                        continue
                log.warning(
                    "slack %s failed: %s", what, response.get("error") or response.status_code
                )
                return None
            except Exception:
                log.exception("slack %s failed", what)
                return None
        return None


def _retry_after(headers: Any) -> float:
    value = None
    if headers:
        for key, raw in dict(headers).items():
            if str(key).lower() == "retry-after":
                value = raw[0] if isinstance(raw, list) else raw
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


class SlackChannel:
    """Answers one Slack message: in its channel, in a thread when ``thread_ts`` is set.

    ``user`` is the Slack user id (without team) to show ephemeral replies to.
    """

    limits = SLACK_LIMITS

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        *,
        thread_ts: str | None = None,
        user: str | None = None,
        codec: ChoiceCodec | None = None,
    ) -> None:
        self.codec = codec
        self.api = SlackApiCaller(client)
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.user = user

    async def typing(self) -> None:
        """Slack has no typing indicator for bots in channels and DMs; nothing to do."""

    async def send(self, reply: Reply) -> SentMessage:
        """Post the reply (ephemerally when asked and possible); long text becomes several posts.

        A failed post is logged; the returned handle then has an empty id and
        later edits of it are skipped.
        """
        first: SentMessage | None = None
        pieces = _fit(reply.text)
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            part = Reply(
                text=piece, choices=reply.choices if last else (), ephemeral=reply.ephemeral
            )
            sent = await self._post(part)
            first = first or sent
        return first or SentMessage(message_id="", chat_id=self.channel)

    async def _post(self, reply: Reply) -> SentMessage:
        kwargs = render_reply(reply, self.codec)
        if self.thread_ts:
            kwargs["thread_ts"] = self.thread_ts
        if reply.ephemeral and self.user:
            response = await self.api.call(
                "chat.postEphemeral",
                lambda: self.client.chat_postEphemeral(
                    channel=self.channel, user=self.user or "", **kwargs
                ),
            )
            if response is None:
                log.info("slack ephemeral reply to %s in %s not delivered", self.user, self.channel)
            # Ephemeral messages cannot be updated: an empty id makes edits no-ops.
            return _no_handle(self.channel)
        response = await self.api.call(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(
                channel=self.channel, unfurl_links=False, unfurl_media=False, **kwargs
            ),
        )
        if response is None:
            return _no_handle(self.channel)
        return SentMessage(
            message_id=str(response.get("ts", "")),
            chat_id=str(response.get("channel", self.channel)),
        )

    audio_format = "mp3"
    """Spoken replies are uploaded as MP3 files (see :mod:`.media`)."""

    async def send_audio(self, audio: SpeechAudio) -> SentMessage | None:
        """Upload a spoken reply as an audio file in this conversation."""
        return await send_audio(self, audio)

    async def edit(self, message: SentMessage, text: str) -> None:
        """Replace a posted message's text with chat.update (retrying 429s)."""
        if not message.message_id:
            return
        mrkdwn = to_mrkdwn(text)
        if len(mrkdwn) > MAX_MRKDWN_LENGTH:
            mrkdwn = to_mrkdwn(_fit(text)[0])
            log.warning("slack edit too long after formatting; cut to its first part")
        await self.api.call(
            "chat.update",
            lambda: self.client.chat_update(
                channel=message.chat_id, ts=message.message_id, text=mrkdwn
            ),
        )


def _fit(markdown: str) -> list[str]:
    """Split Markdown so each piece stays under Slack's limit once converted."""
    if len(to_mrkdwn(markdown)) <= MAX_MRKDWN_LENGTH:
        return [markdown]
    return split_text(markdown, MAX_MRKDWN_LENGTH, measure=lambda s: len(to_mrkdwn(s))) or [
        markdown
    ]


def _no_handle(channel: str) -> SentMessage:
    return SentMessage(message_id="", chat_id=channel)
