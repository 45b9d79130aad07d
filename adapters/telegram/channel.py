"""The :class:`~honeychat.core.types.Channel` for one Telegram chat.

The core hands Markdown; this turns it into Telegram HTML, splits what is too
long, renders choices as an inline keyboard, and absorbs Telegram's errors:
rejected entities are resent as plain text, a 403 marks the chat blocked
(later calls do nothing), and other API errors are logged, never raised into
the core. 429 and 5xx are retried below, by :class:`.retry.RetryMiddleware`.
"""

from __future__ import annotations

import logging

from aiogram import Bot as AiogramBot
from aiogram.enums import ChatAction, ParseMode
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import InlineKeyboardMarkup, ReplyParameters

from honeychat.adapters.telegram.blocked import BlockedChats
from honeychat.adapters.telegram.formatting import (
    TELEGRAM_MAX_TEXT,
    markdown_to_html,
    split_html,
    telegram_length,
)
from honeychat.adapters.telegram.keyboard import ChoiceCodec
from honeychat.adapters.telegram.media import send_audio
from honeychat.core.media.items import SpeechAudio
from honeychat.core.types import ChannelLimits, Reply, SentMessage

log = logging.getLogger(__name__)

LIMITS = ChannelLimits(max_text_length=TELEGRAM_MAX_TEXT, edit_interval=1.0, typing_interval=4.0)
"""About one edit per second per chat, a typing action every 4 s (Telegram shows it for 5)."""

_EMPTY = "…"


def _is_entity_error(exc: TelegramBadRequest) -> bool:
    return "can't parse entities" in exc.message.lower() or "can't find end" in exc.message.lower()


class TelegramChannel:
    """Delivers one conversation's replies to a Telegram chat (optionally a forum topic)."""

    limits = LIMITS

    def __init__(
        self,
        tg: AiogramBot,
        chat_id: int,
        *,
        codec: ChoiceCodec,
        blocked: BlockedChats,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> None:
        self.tg = tg
        self.chat_id = chat_id
        self.codec = codec
        self.blocked = blocked
        self.thread_id = thread_id
        self.reply_to = reply_to
        """In groups the first message answers the user's message, so the thread is clear."""
        self._shown: dict[int, tuple[str, bool]] = {}
        """What each sent message shows now: (text, is_html), to skip no-op edits."""
        self._continuations: dict[int, list[int]] = {}
        """Extra messages a long edited message overflowed into."""

    # Channel protocol

    async def typing(self) -> None:
        """Send the ``typing`` chat action (Telegram shows it for about 5 s)."""
        if self.chat_id in self.blocked:
            return
        try:
            await self.tg.send_chat_action(
                self.chat_id, ChatAction.TYPING, message_thread_id=self.thread_id
            )
        except TelegramForbiddenError as exc:
            self.blocked.block(self.chat_id, exc.message)
        except TelegramAPIError as exc:
            log.debug("telegram typing action failed in %s: %s", self.chat_id, exc.message)

    async def send(self, reply: Reply) -> SentMessage:
        """Send ``reply`` (split if needed; the keyboard goes under the last part)."""
        chunks = split_html(reply.text) or [_EMPTY]
        markup = self.codec.markup(reply.choices)
        first_id: int | None = None
        for index, chunk in enumerate(chunks):
            if self.chat_id in self.blocked:
                break
            last = index == len(chunks) - 1
            message_id = await self._send_one(chunk, markup if last else None)
            if first_id is None:
                first_id = message_id
            elif message_id is not None and first_id is not None:
                self._continuations.setdefault(first_id, []).append(message_id)
        return SentMessage(message_id=str(first_id or ""), chat_id=str(self.chat_id))

    async def edit(self, message: SentMessage, text: str) -> None:
        """Show ``text`` in ``message`` (and its continuations, if it outgrew one message)."""
        if not message.message_id or self.chat_id in self.blocked:
            return
        head = int(message.message_id)
        chunks = split_html(text) or [_EMPTY]
        await self._edit_one(head, chunks[0])
        extra = self._continuations.setdefault(head, [])
        for index, chunk in enumerate(chunks[1:]):
            if index < len(extra):
                await self._edit_one(extra[index], chunk)
            elif (new_id := await self._send_one(chunk, None)) is not None:
                extra.append(new_id)
        for stale in extra[len(chunks) - 1 :]:
            await self._call(self.tg.delete_message(self.chat_id, stale))
        del extra[len(chunks) - 1 :]

    # Beyond the protocol: spoken replies (honeychat.core.media.items.AudioChannel)

    audio_format = "opus"
    """Telegram plays OGG/Opus as a voice note, so speech is asked for in ``opus``."""

    async def send_audio(self, audio: SpeechAudio) -> SentMessage | None:
        """Send a spoken reply as a voice note (see :mod:`.media`)."""
        return await send_audio(self, audio)

    # Beyond the protocol: used for picked choices

    async def replace(self, message_id: int, reply: Reply) -> None:
        """Replace a keyboard message with ``reply`` (and its keyboard, if any); else send anew."""
        if self.chat_id in self.blocked:
            return
        chunks = split_html(reply.text) or [_EMPTY]
        markup = self.codec.markup(reply.choices)
        if len(chunks) == 1 and await self._edit_one(message_id, chunks[0], markup, force=True):
            return
        await self.send(reply)

    # Internals

    async def _send_one(self, markdown: str, markup: InlineKeyboardMarkup | None) -> int | None:
        rendered = markdown_to_html(markdown) or _EMPTY
        reply_parameters = None
        if self.reply_to is not None:
            reply_parameters = ReplyParameters(
                message_id=self.reply_to, allow_sending_without_reply=True
            )
            self.reply_to = None
        for text, mode in ((rendered, ParseMode.HTML), (markdown, None)):
            try:
                sent = await self.tg.send_message(
                    self.chat_id,
                    text,
                    parse_mode=mode,
                    reply_markup=markup,
                    message_thread_id=self.thread_id,
                    reply_parameters=reply_parameters,
                )
            except TelegramBadRequest as exc:
                if mode is not None and _is_entity_error(exc):
                    log.warning(
                        "telegram rejected our HTML (%s); resending as plain text", exc.message
                    )
                    continue
                log.error("telegram refused a message to %s: %s", self.chat_id, exc.message)
                return None
            except TelegramForbiddenError as exc:
                self.blocked.block(self.chat_id, exc.message)
                return None
            except TelegramAPIError as exc:
                log.error("telegram send to %s failed: %s", self.chat_id, exc.message)
                return None
            self._shown[sent.message_id] = (text, mode is not None)
            return sent.message_id
        return None

    async def _edit_one(
        self,
        message_id: int,
        markdown: str,
        markup: InlineKeyboardMarkup | None = None,
        *,
        force: bool = False,
    ) -> bool:
        """Edit one message; True when it shows ``markdown`` afterwards."""
        rendered = markdown_to_html(markdown) or _EMPTY
        if not force and self._shown.get(message_id) == (rendered, True):
            return True
        if telegram_length(rendered) > TELEGRAM_MAX_TEXT:
            rendered = rendered[:TELEGRAM_MAX_TEXT]  # unreachable after split_html; belt and braces
        for text, mode in ((rendered, ParseMode.HTML), (markdown, None)):
            if not force and self._shown.get(message_id) == (text, mode is not None):
                return True
            try:
                await self.tg.edit_message_text(
                    text=text,
                    chat_id=self.chat_id,
                    message_id=message_id,
                    parse_mode=mode,
                    reply_markup=markup,
                )
            except TelegramBadRequest as exc:
                if "message is not modified" in exc.message:
                    self._shown[message_id] = (text, mode is not None)
                    return True
                if mode is not None and _is_entity_error(exc):
                    log.warning(
                        "telegram rejected our HTML (%s); editing as plain text", exc.message
                    )
                    continue
                log.warning("telegram edit in %s failed: %s", self.chat_id, exc.message)
                return False
            except TelegramForbiddenError as exc:
                self.blocked.block(self.chat_id, exc.message)
                return False
            except TelegramAPIError as exc:
                log.warning("telegram edit in %s failed: %s", self.chat_id, exc.message)
                return False
            self._shown[message_id] = (text, mode is not None)
            return True
        return False

    async def _call(self, request: object) -> None:
        """Await a best-effort API call, logging failures."""
        try:
            await request  # type: ignore[misc]
        except TelegramForbiddenError as exc:
            self.blocked.block(self.chat_id, exc.message)
        except TelegramAPIError as exc:
            log.debug("telegram call in %s failed: %s", self.chat_id, exc.message)
