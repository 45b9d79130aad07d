"""Translating Telegram messages into :class:`~honeychat.core.types.IncomingMessage`.

Private chats: every message is for the bot. Groups: a message is for the
bot when it mentions ``@botusername`` (the mention is stripped from the
text), replies to one of the bot's messages, or is one of the bot's commands
(``/help`` or ``/help@botusername``; a command for another bot is ignored).
Service messages (joins, leaves, pins...) and messages from bots or channels
are not messages to answer, and give None. A group is a space (a forum topic
belongs to its group's space); other group messages reach the core too, which
keeps them in the space's memory when the bot receives them (privacy mode off).
"""

from __future__ import annotations

import re
from collections.abc import Collection

from aiogram.types import Message, User

from honeychat.core.types import Attachment, IncomingMessage

PLATFORM = "telegram"

_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{3,64}))?(?=\s|$)")


def attachments_of(message: Message) -> tuple[Attachment, ...]:
    """Metadata of the media in ``message`` (never file URLs: they contain the bot token)."""
    found: list[Attachment] = []
    if message.photo:
        largest = message.photo[-1]
        found.append(Attachment(kind="photo", mime_type="image/jpeg", size=largest.file_size))
    if message.sticker:
        found.append(Attachment(kind="sticker", name=message.sticker.emoji))
    if message.voice:
        found.append(
            Attachment(
                kind="voice", mime_type=message.voice.mime_type, size=message.voice.file_size
            )
        )
    if message.audio:
        audio = message.audio
        found.append(
            Attachment(
                kind="audio", name=audio.file_name, mime_type=audio.mime_type, size=audio.file_size
            )
        )
    if message.video:
        found.append(
            Attachment(
                kind="video", mime_type=message.video.mime_type, size=message.video.file_size
            )
        )
    if message.video_note:
        found.append(Attachment(kind="video", size=message.video_note.file_size))
    if message.animation:
        found.append(Attachment(kind="animation", mime_type=message.animation.mime_type))
    if message.document and not message.animation:
        doc = message.document
        found.append(
            Attachment(kind="file", name=doc.file_name, mime_type=doc.mime_type, size=doc.file_size)
        )
    for kind in ("location", "contact", "poll", "dice", "venue"):
        if getattr(message, kind, None) is not None:
            found.append(Attachment(kind=kind))
    return tuple(found)


def _strip_mention(text: str, username: str) -> tuple[str, bool]:
    pattern = re.compile(rf"\s*@{re.escape(username)}\b[,:]?\s*", re.IGNORECASE)
    stripped, count = pattern.subn(" ", text)
    return stripped.strip(), count > 0


def to_incoming(
    message: Message, me: User, command_names: Collection[str]
) -> IncomingMessage | None:
    """The core's view of ``message``, or None when the bot should not react to it."""
    sender = message.from_user
    if sender is None or sender.is_bot or message.sender_chat is not None:
        return None
    text = message.text or message.caption or ""
    attachments = attachments_of(message)
    if not text.strip() and not attachments:
        return None  # service message: join, leave, pin, title change...
    is_direct = message.chat.type == "private"
    username = me.username or ""
    mentions_bot = False
    command = _COMMAND.match(text)
    if command:
        addressed_to = command.group(2)
        if addressed_to and addressed_to.lower() != username.lower():
            return None  # "/help@otherbot"
        if not is_direct and not addressed_to and command.group(1).lower() not in command_names:
            return None  # another bot's command in a shared group
        mentions_bot = bool(addressed_to) or not is_direct
    elif username:
        if any(
            e.type == "text_mention" and e.user and e.user.id == me.id
            for e in message.entities or ()
        ):
            mentions_bot = True
        text, mentioned = _strip_mention(text, username)
        mentions_bot = mentions_bot or mentioned
    reply = message.reply_to_message
    replies_to_bot = bool(reply and reply.from_user and reply.from_user.id == me.id)
    return IncomingMessage(
        platform=PLATFORM,
        user_id=str(sender.id),
        chat_id=str(message.chat.id),
        text=text,
        user_name=sender.full_name or sender.username,
        message_id=str(message.message_id),
        is_direct=is_direct,
        mentions_bot=mentions_bot,
        replies_to_bot=replies_to_bot,
        attachments=attachments,
        sent_at=message.date,
        space_id=None if is_direct else str(message.chat.id),
        thread_id=str(message.message_thread_id) if message.is_topic_message else None,
    )
