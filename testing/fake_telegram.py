"""A fake Telegram Bot API server on loopback, for driving aiogram's real HTTP session.

It speaks the wire protocol the real Bot API speaks to aiogram: ``POST
/bot<TOKEN>/<method>`` with form fields, JSON answers ``{"ok": true, "result":
...}`` or ``{"ok": false, "error_code": ..., "description": ..., "parameters":
...}``. Tests script updates with :meth:`FakeTelegram.push_update`, script
failures with :meth:`FakeTelegram.fail`, and read what the bot did from
:attr:`FakeTelegram.calls` and :attr:`FakeTelegram.chats`.

Files: :meth:`FakeTelegram.add_file` hosts bytes the way the Bot API does
(``getFile`` gives a ``file_path``, the bytes come from
``GET /file/bot<TOKEN>/<file_path>``); voice notes and audio the bot sends
(``sendVoice``, ``sendAudio``, multipart uploads) land in :attr:`FakeTelegram.uploads`.

``getUpdates`` follows Telegram's offset rules: an update is confirmed (and
never delivered again) once ``getUpdates`` is called with a higher offset,
and a long poll waits up to ``timeout`` seconds for new updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

# Form fields aiogram sends JSON-encoded, and fields that hold integers.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "commands",
        "scope",
        "link_preview_options",
        "entities",
        "reply_parameters",
    }
)
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "user_id",
        "message_thread_id",
        "cache_time",
        "max_connections",
    }
)
_BOOL_FIELDS = frozenset({"drop_pending_updates", "show_alert", "disable_notification"})

_TELEGRAM_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)

DEFAULT_TOKEN = "123456:TEST-token_abc"


@dataclass(frozen=True, slots=True)
class Call:
    """One request the bot made: the API method and its decoded parameters."""

    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class _Failure:
    status: int
    description: str
    retry_after: int | None
    times: int
    when: Callable[[dict[str, Any]], bool] | None


@dataclass(slots=True)
class FakeChat:
    """What a chat shows: the current text of every message the bot sent, by id."""

    messages: dict[int, str] = field(default_factory=dict)
    parse_modes: dict[int, str | None] = field(default_factory=dict)

    @property
    def texts(self) -> list[str]:
        """The texts of the bot's messages, oldest first."""
        return [self.messages[k] for k in sorted(self.messages)]


class FakeTelegram:
    """A loopback Bot API server. Use as ``async with FakeTelegram() as tg: ...``."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_id: int = 777000111,
        username: str = "honey_test_bot",
        first_name: str = "Honey",
    ) -> None:
        self.token = token
        self.bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[Call] = []
        self.chats: dict[int, FakeChat] = {}
        self.webhook: dict[str, Any] | None = None
        self.commands: list[dict[str, Any]] = []
        self.confirmed_offset = 0
        """Every update with a lower id has been confirmed by the bot."""
        self._pending: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._failures: dict[str, list[_Failure]] = {}
        self._changed = asyncio.Condition()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.files: dict[str, bytes] = {}
        """Hosted files by ``file_id`` (see :meth:`add_file`)."""
        self.file_downloads: list[str] = []
        """The ``file_path`` of every download the bot made."""
        self.uploads: list[dict[str, Any]] = []
        """Files the bot sent: ``{"method", "chat_id", "field", "filename", "data"}``."""
        self._file_ids = itertools.count(1)
        self.fail_downloads = 0
        """Answer the next this-many file downloads with HTTP 500."""
        self.chat_admins: dict[int, dict[int, str]] = {}
        """Per chat id: user id -> ``creator`` or ``administrator`` (getChatMember answers
        ``member`` for everyone else)."""

    # Lifecycle

    async def start(self) -> FakeTelegram:
        """Listen on a free port of 127.0.0.1; :attr:`base_url` is then set."""
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        """Wake every long poll and stop the server."""
        self._closing = True
        async with self._changed:
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # Scripting

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for ``getUpdates`` (an ``update_id`` is assigned if absent)."""
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        self._pending.append(update)
        self._notify()
        return int(update["update_id"])

    def fail(
        self,
        method: str,
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (matching ``when``) with an error."""
        self._failures.setdefault(method, []).append(
            _Failure(status, description, retry_after, times, when)
        )

    def clear_failures(self) -> None:
        """Forget every scripted failure not used yet."""
        self._failures.clear()

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        """Parameters of every call of ``method``, oldest first (failed calls included)."""
        return [c.params for c in self.calls if c.method == method]

    def chat(self, chat_id: int) -> FakeChat:
        """The bot's messages in a chat."""
        return self.chats.setdefault(chat_id, FakeChat())

    async def wait_until(self, condition: Callable[[], bool], within: float = 10.0) -> None:
        """Wait until ``condition()`` holds; TimeoutError after ``within`` seconds.

        Re-checked after every request the server answers and every 50 ms, so
        conditions on the client's own state work too.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not condition():
            if loop.time() >= deadline:
                raise TimeoutError(f"condition not met within {within}s")
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)

    def add_file(self, data: bytes, *, size: int | None = None) -> dict[str, Any]:
        """Host ``data``; returns the ``file_id``/``file_unique_id``/``file_size`` fields of
        a ``PhotoSize``, ``Voice``, ``Audio`` or ``Document`` (``size`` overrides the size
        reported, as for a file Telegram says is bigger than it is)."""
        number = next(self._file_ids)
        file_id = f"file-{number}"
        self.files[file_id] = data
        return {
            "file_id": file_id,
            "file_unique_id": f"u{number}",
            "file_size": len(data) if size is None else size,
        }

    # Update builders

    def user(
        self, user_id: int, first_name: str = "Ann", username: str | None = None
    ) -> dict[str, Any]:
        """A ``User`` object."""
        data: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            data["username"] = username
        return data

    def message(
        self,
        text: str | None,
        *,
        user_id: int = 42,
        chat_id: int | None = None,
        chat_type: str = "private",
        reply_to: dict[str, Any] | None = None,
        entities: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A ``Message`` object from a user; groups get ``chat_type='supergroup'``."""
        chat_id = user_id if chat_id is None else chat_id
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = "Ann"
        else:
            chat["title"] = "Test group"
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": self.user(user_id),
        }
        if text is not None:
            msg["text"] = text
        if entities is None and text and text.startswith("/"):
            entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if entities:
            msg["entities"] = entities
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        msg.update(extra)
        return msg

    def bot_message(self, chat_id: int, message_id: int, text: str = "earlier") -> dict[str, Any]:
        """A ``Message`` the bot itself sent (for replies to the bot)."""
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "supergroup", "title": "Test group"},
            "from": self.bot_user,
            "text": text,
        }

    def callback_query(
        self, data: str, *, user_id: int = 42, message: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A ``CallbackQuery`` for a button with ``data``, pressed under ``message``."""
        if message is None:
            message = self.bot_message(user_id, 1)
            message["chat"] = {"id": user_id, "type": "private", "first_name": "Ann"}
        return {
            "id": f"cbq{next(self._update_ids)}",
            "from": self.user(user_id),
            "chat_instance": "ci1",
            "message": message,
            "data": data,
        }

    # The server

    def _notify(self) -> None:
        async def _go() -> None:
            async with self._changed:
                self._changed.notify_all()

        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(_go())

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = _decode(dict(await request.post()))
        self.calls.append(Call(method, params))
        try:
            failure = self._take_failure(method, params)
            if failure is not None:
                return failure
            handler = getattr(self, f"_m_{method.lower()}", None)
            if handler is None:
                return _error(404, "Not Found: method not found")
            result = await handler(params)
            if isinstance(result, web.Response):
                return result
            return web.json_response({"ok": True, "result": result})
        finally:
            self._notify()

    def _take_failure(self, method: str, params: dict[str, Any]) -> web.Response | None:
        for failure in self._failures.get(method, []):
            if failure.times > 0 and (failure.when is None or failure.when(params)):
                failure.times -= 1
                extra = {"retry_after": failure.retry_after} if failure.retry_after else None
                return _error(failure.status, failure.description, extra)
        return None

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401, text="Unauthorized")
        path = request.match_info["path"]
        self.file_downloads.append(path)
        self._notify()
        file_id = path.rsplit("/", 1)[-1].split(".", 1)[0]
        if self.fail_downloads > 0:
            self.fail_downloads -= 1
            return web.Response(status=500, text="Internal Server Error")
        if file_id not in self.files:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    async def _m_getfile(self, params: dict[str, Any]) -> Any:
        file_id = str(params.get("file_id", ""))
        data = self.files.get(file_id)
        if data is None:
            return _error(400, "Bad Request: invalid file_id")
        if len(data) > 20 * 1024 * 1024:
            return _error(400, "Bad Request: file is too big")
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(data),
            "file_path": f"media/{file_id}.bin",
        }

    async def _upload(self, method: str, field_name: str, params: dict[str, Any]) -> Any:
        upload = params.get(field_name)
        if isinstance(upload, str) and upload.startswith("attach://"):
            upload = params.get(upload.removeprefix("attach://"))  # how aiogram uploads files
        if not isinstance(upload, web.FileField):
            return _error(400, f"Bad Request: there is no {field_name} in the request")
        chat_id = int(params["chat_id"])
        self.uploads.append(
            {
                "method": method,
                "chat_id": chat_id,
                "field": field_name,
                "filename": upload.filename,
                "data": upload.file.read(),
            }
        )
        message_id = next(self._message_ids)
        result = self._message_result(chat_id, message_id, params)
        del result["text"]
        return result

    async def _m_sendvoice(self, params: dict[str, Any]) -> Any:
        return await self._upload("sendVoice", "voice", params)

    async def _m_sendaudio(self, params: dict[str, Any]) -> Any:
        return await self._upload("sendAudio", "audio", params)

    async def _m_getme(self, params: dict[str, Any]) -> Any:
        return self.bot_user

    async def _m_getchatmember(self, params: dict[str, Any]) -> Any:
        """A ``ChatMember``: ``ChatMemberOwner``, ``ChatMemberAdministrator`` or ``ChatMemberMember``."""
        user_id = params["user_id"]
        status = self.chat_admins.get(params["chat_id"], {}).get(user_id, "member")
        member: dict[str, Any] = {"status": status, "user": self.user(user_id)}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                dict.fromkeys(
                    (
                        "can_be_edited",
                        "is_anonymous",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_change_info",
                        "can_invite_users",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                        "can_send_welcome_messages",
                    ),
                    False,
                ),
                can_manage_chat=True,
            )
        return member

    async def _m_getupdates(self, params: dict[str, Any]) -> Any:
        if self.webhook is not None:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        if offset > 0:
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)

        def ready() -> bool:
            return self._closing or any(u["update_id"] >= offset for u in self._pending)

        if not ready() and timeout > 0:
            with contextlib.suppress(TimeoutError):
                await self.wait_until(ready, timeout)
        return [u for u in self._pending if u["update_id"] >= offset][:limit]

    def _new_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        chat = self.chat(chat_id)
        message_id = next(self._message_ids)
        chat.messages[message_id] = str(params.get("text", ""))
        chat.parse_modes[message_id] = params.get("parse_mode")
        return self._message_result(chat_id, message_id, params)

    def _message_result(
        self, chat_id: int, message_id: int, params: dict[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": self.bot_user,
            "text": self.chat(chat_id).messages.get(message_id, ""),
        }
        if params.get("reply_markup"):
            result["reply_markup"] = params["reply_markup"]
        return result

    async def _m_sendmessage(self, params: dict[str, Any]) -> Any:
        if params.get("parse_mode") == "HTML" and (problem := html_problem(str(params["text"]))):
            return _error(400, f"Bad Request: can't parse entities: {problem}")
        if not str(params.get("text", "")).strip():
            return _error(400, "Bad Request: message text is empty")
        if len(str(params["text"])) > 4096:
            return _error(400, "Bad Request: message is too long")
        return self._new_message(params)

    async def _m_editmessagetext(self, params: dict[str, Any]) -> Any:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        chat = self.chat(chat_id)
        if message_id not in chat.messages:
            return _error(400, "Bad Request: message to edit not found")
        text = str(params.get("text", ""))
        if params.get("parse_mode") == "HTML" and (problem := html_problem(text)):
            return _error(400, f"Bad Request: can't parse entities: {problem}")
        if len(text) > 4096:
            return _error(400, "Bad Request: message is too long")
        if chat.messages[message_id] == text and chat.parse_modes[message_id] == params.get(
            "parse_mode"
        ):
            return _error(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        chat.messages[message_id] = text
        chat.parse_modes[message_id] = params.get("parse_mode")
        return self._message_result(chat_id, message_id, params)

    async def _m_deletemessage(self, params: dict[str, Any]) -> Any:
        chat = self.chat(int(params["chat_id"]))
        if chat.messages.pop(int(params["message_id"]), None) is None:
            return _error(400, "Bad Request: message to delete not found")
        return True

    async def _m_sendchataction(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_setmycommands(self, params: dict[str, Any]) -> Any:
        self.commands = list(params.get("commands") or [])
        return True

    async def _m_setwebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = dict(params)
        return True

    async def _m_deletewebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True


class _HTMLChecker(HTMLParser):
    """Checks text against the subset of HTML the Bot API accepts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.problem: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TELEGRAM_TAGS:
            self.problem = self.problem or f'unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problem = self.problem or f'unmatched end tag "{tag}"'
        else:
            self.stack.pop()

    def handle_entityref(self, name: str) -> None:
        if name not in {"lt", "gt", "amp", "quot"}:
            self.problem = self.problem or f'unsupported entity "&{name};"'


def html_problem(text: str) -> str | None:
    """Why the Bot API would reject ``text`` with ``parse_mode=HTML``, or None."""
    if re.search(r"&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;)", text):
        return "bare ampersand"
    checker = _HTMLChecker()
    checker.feed(text)
    checker.close()
    if checker.problem:
        return checker.problem
    if checker.stack:
        return f'unclosed tag "{checker.stack[-1]}"'
    if "<" in re.sub(r"<[^<>]*>", "", text):
        return "unescaped <"
    return None


def _decode(form: dict[str, Any]) -> dict[str, Any]:
    """Turn aiogram's form fields back into Python values."""
    out: dict[str, Any] = {}
    for key, value in form.items():
        if not isinstance(value, str):
            out[key] = value
        elif key in _JSON_FIELDS:
            out[key] = json.loads(value)
        elif key in _INT_FIELDS:
            try:
                out[key] = int(value)
            except ValueError:
                out[key] = value
        elif key in _BOOL_FIELDS:
            out[key] = value.lower() == "true"
        else:
            out[key] = value
    return out


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)
