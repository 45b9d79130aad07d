"""The Telegram adapter: aiogram 3 in long polling (default) or webhook mode.

Every update goes through :meth:`TelegramAdapter.submit`: the core's
``bot.handle_event`` deduplicates it (so a redelivered update after a restart
or a webhook retry is answered once), then an aiogram ``Dispatcher`` routes it
to the message, button and membership handlers below, which translate and call
the core. Handling runs in the core's :class:`~honeychat.core.inflight.InflightTasks`,
one chat at a time in arrival order, so :meth:`TelegramAdapter.stop` can let
in-flight replies finish.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiogram import Bot as AiogramBot
from aiogram import Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramUnauthorizedError
from aiogram.types import BotCommand, CallbackQuery, ChatMemberUpdated, Message, Update, User

from honeychat.adapters.telegram.blocked import BlockedChats
from honeychat.adapters.telegram.channel import TelegramChannel
from honeychat.adapters.telegram.keyboard import ChoiceCodec
from honeychat.adapters.telegram.media import with_downloads
from honeychat.adapters.telegram.polling import Poller
from honeychat.adapters.telegram.retry import RetryMiddleware
from honeychat.adapters.telegram.settings import TelegramSettings
from honeychat.adapters.telegram.updates import PLATFORM, to_incoming
from honeychat.adapters.telegram.webhook import WebhookServer, is_valid_secret
from honeychat.core.inflight import InflightTasks
from honeychat.core.intake import EventIntake
from honeychat.core.types import IncomingMessage, Reply

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

log = logging.getLogger(__name__)

_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_EXPIRED_BUTTON = "This button has expired. Please run the command again."
_NOT_YOURS = "These buttons answer someone else's command. Send the command yourself to get yours."


class TelegramStartError(RuntimeError):
    """The adapter could not start; the message says why in plain words."""


class TelegramAdapter:
    """Connects one honeychat :class:`~honeychat.core.bot.Bot` to Telegram."""

    name = PLATFORM

    def __init__(
        self,
        bot: Bot,
        *,
        poll_timeout: int = 25,
        retry: RetryMiddleware | None = None,
        shutdown_timeout: float = 30.0,
        webhook_port: int | None = None,
        settings: TelegramSettings | None = None,
    ) -> None:
        """``settings`` default to the ``telegram`` plugin's validated config."""
        settings = settings if settings is not None else bot.plugins.config(PLATFORM)
        if not settings.telegram_bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self.bot = bot
        self.settings: TelegramSettings = settings
        self.poll_timeout = poll_timeout
        self.shutdown_timeout = shutdown_timeout
        session = (
            AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
            if settings.telegram_api_base
            else AiohttpSession()
        )
        self._api_base = settings.telegram_api_base or "https://api.telegram.org"
        session.middleware(retry or RetryMiddleware())
        self.tg = AiogramBot(settings.telegram_bot_token, session=session)
        self.dispatcher = Dispatcher()
        self.dispatcher.message.register(self._on_message)
        self.dispatcher.callback_query.register(self._on_callback)
        self.dispatcher.my_chat_member.register(self._on_membership)
        self.codec = ChoiceCodec(bot)
        self.blocked = BlockedChats()
        self.me: User | None = None
        self.poller: Poller | None = None
        self.webhook: WebhookServer | None = None
        self._webhook_port = webhook_port
        self.inflight = InflightTasks("telegram")
        self.intake = EventIntake(bot, PLATFORM, self._handle_recorded, self.inflight)
        self._chat_locks: dict[int, _ChatLock] = {}

    # Lifecycle

    async def start(self) -> None:
        """Check the token, register commands, then start polling or the webhook.

        Raises :class:`TelegramStartError` with a plain explanation when the
        token is refused or the Bot API cannot be reached.
        """
        try:
            await self._start()
        except Exception as exc:
            await self.tg.session.close()
            if isinstance(exc, TelegramUnauthorizedError):
                raise TelegramStartError(
                    "Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized): copy the token "
                    "again from @BotFather"
                ) from exc
            if isinstance(exc, TelegramNetworkError):
                raise TelegramStartError(
                    f"cannot reach the Telegram Bot API at {self._api_base}: {exc.message}"
                ) from exc
            raise

    async def _start(self) -> None:
        self.me = await self.tg.get_me()
        log.info("telegram: connected as @%s", self.me.username)
        await self._register_commands()
        settings = self.settings
        if settings.telegram_webhook_url:
            secret = settings.telegram_webhook_secret or secrets.token_urlsafe(32)
            if not is_valid_secret(secret):
                raise ValueError(
                    "TELEGRAM_WEBHOOK_SECRET may only hold A-Z, a-z, 0-9, _ and - (1-256)"
                )
            if not settings.telegram_webhook_secret:
                log.info(
                    "telegram: no TELEGRAM_WEBHOOK_SECRET set; using a random one for this run"
                )
            await self.intake.start()
            self.webhook = WebhookServer(
                self.tg,
                self.dispatcher,
                self.accept,
                url=settings.telegram_webhook_url,
                secret=secret,
                host=settings.telegram_webhook_host,
                port=self._webhook_port
                if self._webhook_port is not None
                else settings.telegram_webhook_port,
            )
            await self.webhook.start()
        else:
            await self.tg.delete_webhook(drop_pending_updates=False)
            self.poller = Poller(self.tg, self.submit, timeout=self.poll_timeout)
            self.poller.start()
            log.info("telegram: long polling started")

    async def stop(self) -> None:
        """Stop receiving, let in-flight replies finish, confirm the offset, disconnect."""
        if self.poller is not None:
            await self.poller.stop()
        if self.webhook is not None:
            await self.webhook.stop()
        await self.intake.stop()
        await self.drain(self.shutdown_timeout)
        if self.poller is not None:
            await self.poller.commit()
            self.poller = None
        self.webhook = None
        await self.tg.session.close()
        log.info("telegram: stopped")

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` s for in-flight updates; cancel what is left after that."""
        await self.inflight.drain(grace)

    @property
    def in_flight(self) -> int:
        """Updates received and not yet fully handled."""
        return len(self.inflight)

    # Receiving

    def submit(self, update: Update) -> None:
        """Handle ``update`` in the background (tracked, so shutdown can wait for it)."""
        self.inflight.spawn(self._process(update), name=f"telegram-update-{update.update_id}")

    async def accept(self, update: Update, raw: dict[str, Any]) -> None:
        """Webhook mode: dedupe, then record the update in Redis; the caller acknowledges after."""
        await self.bot.handle_event(PLATFORM, str(update.update_id), self.intake.submit(raw))

    async def _handle_recorded(self, raw: dict[str, Any]) -> None:
        """Handle an update recorded by :meth:`accept` (on whichever replica reads it)."""
        update = Update.model_validate(raw, context={"bot": self.tg})
        await self._process(update, claimed=True)

    async def _process(self, update: Update, *, claimed: bool = False) -> None:
        # The chat's lock is taken first, so a chat's updates run strictly in arrival order
        # (tasks start in creation order and asyncio.Lock wakes waiters first-come first-served).
        try:
            chat_id = _chat_of(update)
            if chat_id is None:
                await self._dispatch(update, claimed)
                return
            entry = self._chat_locks.setdefault(chat_id, _ChatLock())
            entry.users += 1
            try:
                async with entry.lock:
                    await self._dispatch(update, claimed)
            finally:
                entry.users -= 1
                if entry.users == 0:
                    self._chat_locks.pop(chat_id, None)
        except Exception:
            log.exception("telegram: update %s could not be handled", update.update_id)

    async def _dispatch(self, update: Update, claimed: bool) -> None:
        if claimed:  # deduplicated when it was accepted
            await self.dispatcher.feed_update(self.tg, update)
            return
        await self.bot.handle_event(
            PLATFORM, str(update.update_id), self.dispatcher.feed_update(self.tg, update)
        )

    async def _on_message(self, message: Message) -> None:
        if self.me is None:
            return
        incoming = to_incoming(message, self.me, self.bot.commands.keys())
        if incoming is None:
            return
        incoming = with_downloads(incoming, message, self.tg)
        if not incoming.is_direct:
            incoming = replace(
                incoming,
                is_space_admin=self._admin_check(
                    message.chat.id, message.from_user.id if message.from_user else None
                ),
            )
        chat_id = message.chat.id
        if chat_id in self.blocked:
            if not incoming.text.startswith("/start"):
                return
            self.blocked.unblock(chat_id)
        channel = self._channel(message.chat.id, message)
        await self.bot.handle_message(incoming, channel)

    async def _on_callback(self, query: CallbackQuery) -> None:
        picked = await self.codec.decode(query.data or "")
        source = query.message
        refusal = None if picked else _EXPIRED_BUTTON
        if picked and isinstance(source, Message) and not _owns_buttons(source, query.from_user):
            picked, refusal = None, _NOT_YOURS
        try:
            await self.tg.answer_callback_query(
                query.id, text=refusal, show_alert=refusal is not None
            )
        except TelegramAPIError as exc:
            log.debug("telegram: answerCallbackQuery failed: %s", exc.message)
        if picked is None:
            return
        command, value = picked
        chat_id = source.chat.id if source is not None else query.from_user.id
        if chat_id in self.blocked:
            return
        incoming = IncomingMessage(
            platform=PLATFORM,
            user_id=str(query.from_user.id),
            chat_id=str(chat_id),
            text="",
            user_name=query.from_user.full_name or query.from_user.username,
            message_id=str(source.message_id) if source is not None else None,
            is_direct=source is None or source.chat.type == "private",
            space_id=None if source is None or source.chat.type == "private" else str(chat_id),
            is_space_admin=self._admin_check(chat_id, query.from_user.id),
        )
        try:
            reply = await self.bot.run_command(incoming, command, value, from_choice=True)
        except Exception:
            log.exception("telegram: choice %s:%s failed", command, value)
            reply = Reply(text="Sorry, that did not work. Please try again.")
        channel = self._channel(chat_id, None)
        # A message too old to edit has date 0 (InaccessibleMessage): answer with a new one.
        if isinstance(source, Message):
            await channel.replace(source.message_id, reply)
        else:
            await channel.send(reply)

    async def _on_membership(self, event: ChatMemberUpdated) -> None:
        if self.me is None or event.new_chat_member.user.id != self.me.id:
            return
        status = event.new_chat_member.status
        if status in ("kicked", "left"):
            self.blocked.block(event.chat.id, f"bot status is now {status}")
        elif status in ("member", "administrator"):
            self.blocked.unblock(event.chat.id)

    # Helpers

    def _admin_check(self, chat_id: int, user_id: int | None) -> Callable[[], Awaitable[bool]]:
        """The check that ``user_id`` administers the group: getChatMember says
        ``creator`` or ``administrator``."""

        async def check() -> bool:
            if user_id is None:
                return False
            member = await self.tg.get_chat_member(chat_id, user_id)
            return member.status in ("creator", "administrator")

        return check

    def _channel(self, chat_id: int, message: Message | None) -> TelegramChannel:
        thread_id = None
        reply_to = None
        if message is not None:
            thread_id = message.message_thread_id if message.is_topic_message else None
            if message.chat.type != "private":
                reply_to = message.message_id
        return TelegramChannel(
            self.tg,
            chat_id,
            codec=self.codec,
            blocked=self.blocked,
            thread_id=thread_id,
            reply_to=reply_to,
        )

    async def _register_commands(self) -> None:
        commands = [
            BotCommand(command=name, description=(command.description or name)[:256])
            for name, command in self.bot.commands.items()
            if _COMMAND_NAME.match(name)
        ]
        try:
            await self.tg.set_my_commands(commands)
        except TelegramAPIError as exc:
            log.warning(
                "telegram: setMyCommands failed (%s); commands still work when typed", exc.message
            )


class _ChatLock:
    """Serializes one chat's updates; dropped when no update of the chat is waiting."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


def _owns_buttons(keyboard: Message, user: User) -> bool:
    """In groups, only the user whose command the keyboard answers may press its buttons."""
    if keyboard.chat.type == "private":
        return True
    asked = keyboard.reply_to_message
    if asked is None or asked.from_user is None:
        return True
    return asked.from_user.id == user.id


def _chat_of(update: Update) -> int | None:
    if update.message is not None:
        return update.message.chat.id
    if update.callback_query is not None and update.callback_query.message is not None:
        return update.callback_query.message.chat.id
    if update.my_chat_member is not None:
        # In order with the chat's messages: an unblock must apply before the next message.
        return update.my_chat_member.chat.id
    return None
