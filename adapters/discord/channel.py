"""The Channel the core answers through: typing, sending and editing Discord messages."""

from __future__ import annotations

import logging

import discord

from honeychat.core.choices import ChoiceCodec
from honeychat.core.media.items import SpeechAudio
from honeychat.core.textsplit import split_text
from honeychat.core.types import ChannelLimits, Reply, SentMessage

from .components import choices_view
from .media import send_audio

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
"""Nothing the bot writes may ping anyone: not @everyone, roles, users nor the replied-to user."""

DISCORD_LIMITS = ChannelLimits(max_text_length=2000, edit_interval=1.0, typing_interval=8.0)
"""2,000 characters per message; about 5 edits per 5 s per channel; typing lasts ~10 s."""

_EMPTY = "…"


class ForbiddenLog:
    """Remembers channels where Discord answered 403, so each is logged once, not on every call."""

    def __init__(self) -> None:
        self._channels: set[int] = set()

    def report(self, channel_id: int, action: str, error: discord.Forbidden) -> None:
        """Log a missing permission the first time a channel shows it."""
        if channel_id in self._channels:
            log.debug("still forbidden to %s in channel %s", action, channel_id)
            return
        self._channels.add(channel_id)
        log.warning(
            "Discord refused to let the bot %s in channel %s (%s); check the bot's permissions there. "
            "Further refusals in this channel are not logged.",
            action,
            channel_id,
            error.text or error.status,
        )

    def __contains__(self, channel_id: int) -> bool:
        return channel_id in self._channels


PRIVATE_NOTE = "I sent you the answer in a direct message."
NO_DM_NOTE = "I couldn't send you a direct message; use the slash command to see that privately."


class DiscordChannel:
    """Delivers one turn's answer into a Discord channel, DM or thread.

    The first message replies to the user's message in guild channels (with
    no ping), so it is clear who is answered in a busy channel. A private
    (ephemeral) reply to a typed command in a server channel goes to the
    user's DMs instead, with a short note in the channel. Platform errors
    are logged and swallowed: a failed send returns a handle with an empty
    id, and edits of such a handle do nothing.
    """

    limits = DISCORD_LIMITS

    def __init__(
        self,
        target: discord.abc.Messageable,
        channel_id: int,
        forbidden: ForbiddenLog,
        *,
        reply_to: discord.Message | None = None,
        codec: ChoiceCodec | None = None,
    ) -> None:
        self._target = target
        self._codec = codec
        self._channel_id = channel_id
        self._forbidden = forbidden
        self._reply_to = reply_to
        self._typing_refused = False
        self._sent_in: dict[str, discord.abc.Messageable] = {}

    async def typing(self) -> None:
        if self._typing_refused:
            return
        try:
            await self._target.typing()
        except discord.Forbidden as error:
            self._typing_refused = True
            self._forbidden.report(self._channel_id, "show typing", error)
        except discord.HTTPException as error:
            log.info("typing indicator failed in channel %s: %s", self._channel_id, error)

    async def send(self, reply: Reply) -> SentMessage:
        if reply.ephemeral and self._reply_to is not None and self._reply_to.guild is not None:
            return await self._send_privately(reply, self._reply_to.author)
        return await self._send_chunks(self._target, reply, reference=self._reply_to)

    async def _send_privately(
        self, reply: Reply, user: discord.User | discord.Member
    ) -> SentMessage:
        try:
            dm = await user.create_dm()
            sent = await self._send_chunks(dm, reply, reference=None, quiet=True)
        except discord.HTTPException as error:
            log.info("could not DM user %s: %s", user.id, error)
            sent = SentMessage(message_id="", chat_id="")
        note = PRIVATE_NOTE if sent.message_id else NO_DM_NOTE
        await self._send_chunks(self._target, Reply(note), reference=self._reply_to)
        return sent

    async def _send_chunks(
        self,
        target: discord.abc.Messageable,
        reply: Reply,
        *,
        reference: discord.Message | None,
        quiet: bool = False,
    ) -> SentMessage:
        chunks = split_text(reply.text, self.limits.max_text_length) or [_EMPTY]
        first: SentMessage | None = None
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            sent = await self._send_one(
                target,
                chunk,
                view=choices_view(reply.choices, self._codec) if last else None,
                reference=reference if index == 0 else None,
                quiet=quiet,
            )
            first = first or sent
        assert first is not None
        return first

    async def _send_one(
        self,
        target: discord.abc.Messageable,
        text: str,
        *,
        view: discord.ui.View | None,
        reference: discord.Message | None,
        quiet: bool,
    ) -> SentMessage:
        kwargs: dict[str, object] = {"allowed_mentions": NO_MENTIONS}
        if view is not None:
            kwargs["view"] = view
        if reference is not None:
            kwargs["reference"] = reference.to_reference(fail_if_not_exists=False)
            kwargs["mention_author"] = False
        try:
            message = await target.send(text, **kwargs)  # type: ignore[call-overload]
        except discord.Forbidden as error:
            if quiet:
                raise
            self._forbidden.report(self._channel_id, "send messages", error)
        except discord.HTTPException as error:
            if quiet:
                raise
            log.warning("sending a message to channel %s failed: %s", self._channel_id, error)
        else:
            self._sent_in[str(message.id)] = target
            return SentMessage(message_id=str(message.id), chat_id=str(message.channel.id))
        return SentMessage(message_id="", chat_id=str(self._channel_id))

    # Spoken replies (honeychat.core.media.items.AudioChannel)

    audio_format = "mp3"

    @property
    def target(self) -> discord.abc.Messageable:
        return self._target

    @property
    def channel_id(self) -> int:
        return self._channel_id

    @property
    def forbidden(self) -> ForbiddenLog:
        return self._forbidden

    async def send_audio(self, audio: SpeechAudio) -> SentMessage | None:
        """Send a spoken reply as an audio attachment (see :mod:`.media`)."""
        return await send_audio(self, audio)

    async def edit(self, message: SentMessage, text: str) -> None:
        target = self._sent_in.get(message.message_id)
        if target is None:
            return  # the send failed (or the message is not ours): nothing to edit
        # Every target we send to (a channel, thread or DM) is a valid PartialMessage channel.
        partial = discord.PartialMessage(channel=target, id=int(message.message_id))  # type: ignore[arg-type]
        try:
            await partial.edit(content=text or _EMPTY, allowed_mentions=NO_MENTIONS)
        except discord.Forbidden as error:
            self._forbidden.report(self._channel_id, "edit its messages", error)
        except discord.HTTPException as error:
            log.warning("editing message %s failed: %s", message.message_id, error)
