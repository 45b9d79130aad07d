"""The Telegram transport layer through aiogram's real HTTP session against the fake Bot API.

Covers the outgoing side (the Channel: HTML, fallback, split, edits, 429, 5xx,
403), polling (offset semantics, a malformed update) and the webhook server
(secret checks, bad bodies). The end-to-end tests with the core are in
test_telegram_e2e.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot as AiogramBot
from aiogram import Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Update

from honeychat.adapters.telegram.blocked import BlockedChats
from honeychat.adapters.telegram.channel import TelegramChannel
from honeychat.adapters.telegram.keyboard import ChoiceCodec
from honeychat.adapters.telegram.polling import Poller
from honeychat.adapters.telegram.retry import RetryMiddleware
from honeychat.adapters.telegram.webhook import SECRET_HEADER, WebhookServer
from honeychat.core.types import Choice, Reply, SentMessage
from honeychat.testing.fake_telegram import FakeTelegram, html_problem

CHAT = 4242


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def aiobot(tg: FakeTelegram) -> AsyncIterator[AiogramBot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))
    session.middleware(RetryMiddleware(backoff_base=0.01, max_retries=3))
    bot = AiogramBot(tg.token, session=session)
    yield bot
    await bot.session.close()


@pytest.fixture
def channel(aiobot: AiogramBot) -> TelegramChannel:
    return TelegramChannel(aiobot, CHAT, codec=ChoiceCodec(), blocked=BlockedChats())


# The channel


async def test_send_converts_markdown_to_html(tg: FakeTelegram, channel: TelegramChannel) -> None:
    sent = await channel.send(Reply(text="Hello **you** & <friends>"))
    (call,) = tg.calls_of("sendMessage")
    assert call["parse_mode"] == "HTML"
    assert call["text"] == "Hello <b>you</b> &amp; &lt;friends&gt;"
    assert sent.chat_id == str(CHAT)
    assert tg.chat(CHAT).messages[int(sent.message_id)] == call["text"]


async def test_choices_become_an_inline_keyboard(
    tg: FakeTelegram, channel: TelegramChannel
) -> None:
    choices = (Choice("Luna", "character", "luna"), Choice("Kai", "character", "kai"))
    await channel.send(Reply(text="Pick one", choices=choices))
    (call,) = tg.calls_of("sendMessage")
    rows = call["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for row in rows for b in row] == ["character:luna", "character:kai"]
    assert [b["text"] for row in rows for b in row] == ["Luna", "Kai"]


async def test_entity_error_resends_as_plain_text(
    tg: FakeTelegram, channel: TelegramChannel
) -> None:
    tg.fail("sendMessage", 400, "Bad Request: can't parse entities: unsupported start tag")
    sent = await channel.send(Reply(text="Some **bold** text"))
    first, second = tg.calls_of("sendMessage")
    assert first["parse_mode"] == "HTML"
    assert "parse_mode" not in second
    assert second["text"] == "Some **bold** text"
    assert tg.chat(CHAT).messages[int(sent.message_id)] == "Some **bold** text"


async def test_edit_skips_no_op_edits_and_falls_back_on_entity_errors(
    tg: FakeTelegram, channel: TelegramChannel
) -> None:
    sent = await channel.send(Reply(text="Hel"))
    await channel.edit(sent, "Hello")
    await channel.edit(sent, "Hello")  # no change: no request
    await channel.edit(sent, "Hello")
    assert len(tg.calls_of("editMessageText")) == 1
    tg.fail("editMessageText", 400, "Bad Request: can't parse entities: can't find end tag")
    await channel.edit(sent, "Hello *there*")
    edits = tg.calls_of("editMessageText")
    assert len(edits) == 3 and "parse_mode" not in edits[-1]
    assert tg.chat(CHAT).messages[int(sent.message_id)] == "Hello *there*"


async def test_429_is_retried_after_retry_after(tg: FakeTelegram, channel: TelegramChannel) -> None:
    tg.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    sent = await asyncio.wait_for(channel.send(Reply(text="patience")), 10)
    calls = [c for c in tg.calls if c.method == "sendMessage"]
    assert len(calls) == 2
    assert calls[1].at - calls[0].at >= 0.9  # honoured, not a performance assertion
    assert tg.chat(CHAT).messages[int(sent.message_id)] == "patience"


async def test_5xx_is_retried_with_backoff(tg: FakeTelegram, channel: TelegramChannel) -> None:
    tg.fail("sendMessage", 502, "Bad Gateway", times=2)
    sent = await asyncio.wait_for(channel.send(Reply(text="eventually")), 10)
    assert len(tg.calls_of("sendMessage")) == 3
    assert tg.chat(CHAT).messages[int(sent.message_id)] == "eventually"


async def test_5xx_that_persists_is_logged_not_raised(
    tg: FakeTelegram, channel: TelegramChannel
) -> None:
    tg.fail("sendMessage", 500, "Internal Server Error", times=10)
    sent = await asyncio.wait_for(channel.send(Reply(text="lost cause")), 10)
    assert sent.message_id == ""
    assert len(tg.calls_of("sendMessage")) == 4  # first try and three retries


async def test_403_blocks_the_chat_quietly(tg: FakeTelegram, channel: TelegramChannel) -> None:
    tg.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    sent = await channel.send(Reply(text="hello?"))
    assert sent.message_id == ""
    assert CHAT in channel.blocked
    await channel.typing()
    await channel.send(Reply(text="anyone?"))
    await channel.edit(sent, "still?")
    assert [c.method for c in tg.calls] == ["sendMessage"]


async def test_typing_sends_the_chat_action(tg: FakeTelegram, channel: TelegramChannel) -> None:
    await channel.typing()
    (call,) = tg.calls_of("sendChatAction")
    assert call == {"chat_id": CHAT, "action": "typing"}


async def test_long_reply_is_split_into_valid_messages(
    tg: FakeTelegram, channel: TelegramChannel
) -> None:
    paragraph = "Sentence number one is here. And a <second> one & more. " * 10
    code = "```\n" + "\n".join(f"line {i} <x>" for i in range(150)) + "\n```"
    text = "\n\n".join([paragraph] * 5 + [code] + [paragraph] * 5)
    await channel.send(Reply(text=text, choices=(Choice("OK", "noop", "1"),)))
    calls = tg.calls_of("sendMessage")
    assert len(calls) >= 3
    for call in calls:
        assert len(call["text"]) <= 4096
        assert html_problem(call["text"]) is None
    assert "reply_markup" in calls[-1] and all("reply_markup" not in c for c in calls[:-1])
    shown = "".join(tg.chat(CHAT).texts)
    assert "line 0 &lt;x&gt;" in shown and "line 149 &lt;x&gt;" in shown


async def test_edit_that_outgrows_a_message_continues_and_shrinks_back(
    tg: FakeTelegram, channel: TelegramChannel
) -> None:
    sent = await channel.send(Reply(text="start"))
    long_text = "A fairly long sentence for the overflow test. " * 150
    await channel.edit(sent, long_text)
    assert len(tg.chat(CHAT).messages) == 2
    await channel.edit(sent, "short again")
    assert tg.chat(CHAT).texts == ["short again"]
    assert len(tg.calls_of("deleteMessage")) == 1


async def test_replace_edits_the_keyboard_message(
    tg: FakeTelegram, channel: TelegramChannel
) -> None:
    sent = await channel.send(Reply(text="Sure?", choices=(Choice("Yes", "forget", "yes"),)))
    await channel.replace(int(sent.message_id), Reply(text="Done."))
    (edit,) = tg.calls_of("editMessageText")
    assert edit["text"] == "Done." and "reply_markup" not in edit
    assert tg.chat(CHAT).texts == ["Done."]


async def test_replace_sends_anew_when_the_message_cannot_be_edited(
    tg: FakeTelegram, channel: TelegramChannel
) -> None:
    await channel.replace(99999, Reply(text="Fresh"))
    assert tg.chat(CHAT).texts == ["Fresh"]


# Polling


async def _collect(poller_updates: list[Update], count: int, tg: FakeTelegram) -> None:
    await tg.wait_until(lambda: len(poller_updates) >= count, within=10)


async def test_polling_offsets_are_confirmed_and_not_redelivered(
    tg: FakeTelegram, aiobot: AiogramBot
) -> None:
    got: list[Update] = []
    ids = [tg.push_update({"message": tg.message(f"m{i}")}) for i in range(3)]
    poller = Poller(aiobot, got.append, timeout=1)
    poller.start()
    await _collect(got, 3, tg)
    await poller.stop()
    await poller.commit()
    assert [u.update_id for u in got] == ids
    assert tg.confirmed_offset == ids[-1] + 1
    # A new process (new poller, no memory) sees only what came later.
    later = tg.push_update({"message": tg.message("after restart")})
    again: list[Update] = []
    second = Poller(aiobot, again.append, timeout=1)
    second.start()
    await _collect(again, 1, tg)
    await second.stop()
    assert [u.update_id for u in again] == [later]


async def test_polling_skips_a_malformed_update(tg: FakeTelegram, aiobot: AiogramBot) -> None:
    got: list[Update] = []
    bad = tg.push_update({"message": {"message_id": "not-a-number", "chat": "nope"}})
    good = tg.push_update({"message": tg.message("fine")})
    poller = Poller(aiobot, got.append, timeout=1)
    poller.start()
    await _collect(got, 1, tg)
    await poller.stop()
    assert [u.update_id for u in got] == [good]
    assert poller.offset == good + 1 and bad < good


async def test_polling_backs_off_on_server_errors(tg: FakeTelegram, aiobot: AiogramBot) -> None:
    tg.fail("getUpdates", 502, "Bad Gateway", times=2)
    got: list[Update] = []
    uid = tg.push_update({"message": tg.message("after outage")})
    poller = Poller(aiobot, got.append, timeout=1, backoff_base=0.01)
    poller.start()
    await _collect(got, 1, tg)
    await poller.stop()
    assert [u.update_id for u in got] == [uid]
    assert len(tg.calls_of("getUpdates")) >= 3


# Webhook


@pytest.fixture
async def webhook(
    tg: FakeTelegram, aiobot: AiogramBot
) -> AsyncIterator[tuple[WebhookServer, list[Update]]]:
    got: list[Update] = []

    async def accept(update: Update, raw: dict[str, object]) -> None:
        assert raw["update_id"] == update.update_id
        got.append(update)

    server = WebhookServer(
        aiobot,
        Dispatcher(),
        accept,
        url="https://bot.example.test/tg/hook",
        secret="s3cret_token-1",
        host="127.0.0.1",
        port=0,
    )
    await server.start()
    yield server, got
    await server.stop()


async def _post(server: WebhookServer, body: bytes, secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    url = f"http://127.0.0.1:{server.port}{server.path}"
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.post(url, data=body, headers=headers) as response,
    ):
        return response.status


async def test_webhook_is_registered_with_its_secret(
    tg: FakeTelegram, webhook: tuple[WebhookServer, list[Update]]
) -> None:
    (call,) = tg.calls_of("setWebhook")
    assert call["url"] == "https://bot.example.test/tg/hook"
    assert call["secret_token"] == "s3cret_token-1"
    assert call["allowed_updates"] == ["message", "callback_query", "my_chat_member"]


async def test_webhook_checks_the_secret(
    tg: FakeTelegram, webhook: tuple[WebhookServer, list[Update]]
) -> None:
    server, got = webhook
    body = json.dumps({"update_id": 1, "message": tg.message("hi")}).encode()
    assert await _post(server, body, "wrong") == 401
    assert await _post(server, body, None) == 401
    assert await _post(server, body, "") == 401
    assert got == []
    assert await _post(server, body, "s3cret_token-1") == 200
    assert [u.update_id for u in got] == [1]
    assert got[0].message is not None and got[0].message.text == "hi"


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"update_id": "x", "message": 5}', b""],
    ids=["broken-json", "array", "wrong-types", "empty"],
)
async def test_webhook_refuses_malformed_bodies(
    webhook: tuple[WebhookServer, list[Update]], body: bytes
) -> None:
    server, got = webhook
    assert await _post(server, body, "s3cret_token-1") == 400
    assert got == []


async def test_sessions_stay_usable_after_errors(
    tg: FakeTelegram, channel: TelegramChannel
) -> None:
    tg.fail("sendMessage", 400, "Bad Request: chat not found")
    failed = await channel.send(Reply(text="x"))
    ok = await channel.send(Reply(text="y"))
    assert failed == SentMessage(message_id="", chat_id=str(CHAT))
    assert ok.message_id
