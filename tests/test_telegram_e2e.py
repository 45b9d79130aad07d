"""The Telegram adapter end to end: updates from the fake Bot API, through aiogram's real
session and the real core (embedded stores, FakeLLM), back to the fake as API calls."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from telegram_kit import StartAdapter, adapter_starter

from honeychat.adapters.telegram.adapter import TelegramAdapter
from honeychat.adapters.telegram.formatting import markdown_to_html
from honeychat.adapters.telegram.webhook import SECRET_HEADER
from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.fake_telegram import FakeTelegram, html_problem
from honeychat.testing.pytest_plugin import BotFactory

USER = 42
GROUP = -100777
WAIT = 20.0


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def start_adapter(tg: FakeTelegram, bot_factory: BotFactory) -> AsyncIterator[StartAdapter]:
    async with adapter_starter(tg, bot_factory) as start:
        yield start


async def idle(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    """Wait until the adapter has no update in flight."""
    await tg.wait_until(lambda: adapter.in_flight == 0, within=WAIT)


def texts(tg: FakeTelegram, chat_id: int) -> list[str]:
    return tg.chat(chat_id).texts


# Private chats


async def test_dm_turn_end_to_end(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter()
    tg.push_update({"message": tg.message("Hello there, Luna & co <3")})
    expected = markdown_to_html("I hear you: Hello there, Luna & co <3")
    await tg.wait_until(lambda: texts(tg, USER) == [expected], within=WAIT)
    assert fake_llm.last_messages()[-1]["content"] == "Hello there, Luna & co <3"
    assert {"chat_id": USER, "action": "typing"} in tg.calls_of("sendChatAction")
    assert expected == "I hear you: Hello there, Luna &amp; co &lt;3"
    await idle(tg, adapter)


async def test_commands_are_registered(tg: FakeTelegram, start_adapter: StartAdapter) -> None:
    adapter = await start_adapter()
    names = [c["command"] for c in tg.commands]
    assert names == list(adapter.bot.commands)
    assert {"start", "help", "character", "forget", "memory"} <= set(names)
    assert all(c["description"] for c in tg.commands)
    assert tg.calls_of("deleteWebhook")  # polling mode clears any webhook first


async def test_start_help_and_memory(tg: FakeTelegram, start_adapter: StartAdapter) -> None:
    adapter = await start_adapter()
    greeting = adapter.bot.characters.default.greeting.strip()
    tg.push_update({"message": tg.message("/start")})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 1, within=WAIT)
    assert texts(tg, USER)[0] == markdown_to_html(greeting)
    tg.push_update({"message": tg.message("/help")})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 2, within=WAIT)
    assert "/forget" in texts(tg, USER)[1] and "/character" in texts(tg, USER)[1]
    tg.push_update({"message": tg.message("/memory")})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 3, within=WAIT)
    assert "remember anything" in texts(tg, USER)[2]


async def test_character_keyboard_and_pick(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter()
    bot = adapter.bot
    tg.push_update({"message": tg.message("/character")})
    await tg.wait_until(lambda: len(tg.calls_of("sendMessage")) == 1, within=WAIT)
    (call,) = tg.calls_of("sendMessage")
    buttons = [b for row in call["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["callback_data"] for b in buttons] == [
        f"character:{c.id}" for c in bot.characters.all()
    ]
    assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)
    other = next(c for c in bot.characters.all() if c.id != bot.characters.default.id)

    keyboard_id = max(tg.chat(USER).messages)
    keyboard_message = tg.bot_message(USER, keyboard_id, "Who would you like to talk to?")
    keyboard_message["chat"] = {"id": USER, "type": "private", "first_name": "Ann"}
    query = tg.callback_query(f"character:{other.id}", message=keyboard_message)
    tg.push_update({"callback_query": query})
    await tg.wait_until(
        lambda: tg.chat(USER).messages[keyboard_id].startswith("You're now talking with"),
        within=WAIT,
    )
    assert tg.calls_of("answerCallbackQuery")[0]["callback_query_id"] == query["id"]
    assert other.name in tg.chat(USER).messages[keyboard_id]
    assert (await bot.current_character("telegram", str(USER))).id == other.id


async def test_expired_button_is_answered_without_running_anything(
    tg: FakeTelegram, start_adapter: StartAdapter
) -> None:
    adapter = await start_adapter()
    tg.push_update({"callback_query": tg.callback_query("~0123456789abcdef")})
    await tg.wait_until(lambda: bool(tg.calls_of("answerCallbackQuery")), within=WAIT)
    (answer,) = tg.calls_of("answerCallbackQuery")
    assert "expired" in answer["text"] and answer["show_alert"] is True
    await idle(tg, adapter)
    assert not tg.calls_of("sendMessage") and not tg.calls_of("editMessageText")


async def test_forget_asks_then_forgets(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(llm_streaming=False)
    tg.push_update({"message": tg.message("remember that I love tea")})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 1, within=WAIT)
    tg.push_update({"message": tg.message("/forget")})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 2, within=WAIT)
    ask = tg.calls_of("sendMessage")[-1]
    datas = [b["callback_data"] for row in ask["reply_markup"]["inline_keyboard"] for b in row]
    assert datas == ["forget:confirm", "forget:cancel"]
    ask_id = max(tg.chat(USER).messages)
    message = tg.bot_message(USER, ask_id)
    message["chat"] = {"id": USER, "type": "private", "first_name": "Ann"}
    tg.push_update({"callback_query": tg.callback_query("forget:confirm", message=message)})
    await tg.wait_until(lambda: tg.chat(USER).messages[ask_id].startswith("Done."), within=WAIT)
    tg.push_update({"message": tg.message("/memory")})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 3, within=WAIT)
    assert "remember anything" in texts(tg, USER)[-1]
    await idle(tg, adapter)


# Groups


async def test_group_answers_mentions_replies_and_own_commands_only(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(llm_streaming=False)

    def group(text: str, **kw: Any) -> dict[str, Any]:
        return {"message": tg.message(text, chat_id=GROUP, chat_type="supergroup", **kw)}

    tg.push_update(group("just chatting among humans"))
    tg.push_update(group("/help@some_other_bot"))
    tg.push_update(group("/weather"))  # another bot's command
    mention = group("@honey_test_bot how are you?")
    tg.push_update(mention)
    await tg.wait_until(lambda: len(texts(tg, GROUP)) == 1, within=WAIT)
    assert fake_llm.last_messages()[-1]["content"] == "[Ann] how are you?"
    # The group's talk not meant for the bot is kept in the group's memory, unanswered.
    assert fake_llm.last_messages()[-2]["content"] == "[Ann] just chatting among humans"
    assert len(fake_llm.chat_requests) == 1
    sent = tg.calls_of("sendMessage")[0]
    assert sent["reply_parameters"]["message_id"] == mention["message"]["message_id"]

    earlier = tg.bot_message(GROUP, 1)
    tg.push_update(group("and what about you", reply_to=earlier))
    await tg.wait_until(lambda: len(texts(tg, GROUP)) == 2, within=WAIT)
    assert fake_llm.last_messages()[-1]["content"] == "[Ann] and what about you"
    tg.push_update(group("/help"))
    await tg.wait_until(lambda: len(texts(tg, GROUP)) == 3, within=WAIT)
    assert "/forget" in texts(tg, GROUP)[-1]
    await idle(tg, adapter)
    assert len(fake_llm.chat_requests) == 2


async def test_non_text_updates(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    # Images and voice off: nothing is downloaded (tests/test_media_telegram.py: on).
    adapter = await start_adapter(llm_streaming=False, image_mode="off", stt_enabled=False)
    sticker = {
        "file_id": "s1",
        "file_unique_id": "u1",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "😺",
    }
    tg.push_update({"message": tg.message(None, sticker=sticker)})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 1, within=WAIT)
    assert "sticker" in texts(tg, USER)[0]

    photo = [{"file_id": "p1", "file_unique_id": "pu1", "width": 90, "height": 90}]
    tg.push_update({"message": tg.message(None, photo=photo, caption="look at my cat")})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 2, within=WAIT)
    assert fake_llm.last_messages()[-1]["content"] == "look at my cat"

    voice = {"file_id": "v1", "file_unique_id": "vu1", "duration": 3, "mime_type": "audio/ogg"}
    tg.push_update({"message": tg.message(None, voice=voice)})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 3, within=WAIT)
    assert "voice" in texts(tg, USER)[2]

    # Ignored: edits, channel posts, service messages, other bots.
    tg.push_update({"edited_message": {**tg.message("edited"), "edit_date": 1}})
    channel_post = tg.message("news", chat_id=-100999, chat_type="channel")
    channel_post.pop("from")
    channel_post["sender_chat"] = {"id": -100999, "type": "channel", "title": "News"}
    tg.push_update({"channel_post": channel_post})
    joined = tg.message(
        None, chat_id=GROUP, chat_type="supergroup", new_chat_members=[tg.user(55, "Bob")]
    )
    tg.push_update({"message": joined})
    left = tg.message(None, chat_id=GROUP, chat_type="supergroup", left_chat_member=tg.user(55))
    tg.push_update({"message": left})
    from_bot = tg.message("@honey_test_bot hi", chat_id=GROUP, chat_type="supergroup")
    from_bot["from"] = {"id": 99, "is_bot": True, "first_name": "Other"}
    tg.push_update({"message": from_bot})
    await idle(tg, adapter)
    tg.push_update({"message": tg.message("still there?")})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 4, within=WAIT)
    await idle(tg, adapter)
    assert len(fake_llm.chat_requests) == 2
    assert texts(tg, GROUP) == [] and texts(tg, -100999) == []


# Delivery


async def test_streaming_edits_are_throttled_and_never_no_ops(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter()
    words = [f"word{i}" for i in range(24)]
    reply = "**Streaming** " + " ".join(words) + " & done."
    fake_llm.script([reply])
    fake_llm.chunk_delay = 0.12  # ~3 s of streaming: throttled to about one edit a second
    tg.push_update({"message": tg.message("stream please")})
    final = markdown_to_html(reply)
    await tg.wait_until(lambda: texts(tg, USER) == [final], within=WAIT)
    await idle(tg, adapter)
    sends, edits = tg.calls_of("sendMessage"), tg.calls_of("editMessageText")
    assert len(sends) == 1 and 1 <= len(edits) <= 12  # unthrottled would be ~26
    shown = [sends[0]["text"]] + [e["text"] for e in edits]
    assert all(a != b for a, b in itertools.pairwise(shown))  # no no-op edit
    assert shown[-1] == final
    assert all(html_problem(t) is None for t in shown)


async def test_long_reply_is_split(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(llm_streaming=False)
    paragraph = "A paragraph with <angle> brackets & ampersands, to grow when escaped. " * 8
    code = "```\n" + "\n".join(f"row {i} <ok>" for i in range(100)) + "\n```"
    reply = "\n\n".join([paragraph] * 8 + [code] + [paragraph] * 4 + ["THE END."])
    fake_llm.script([reply])
    tg.push_update({"message": tg.message("tell me everything")})
    await tg.wait_until(lambda: any("THE END." in t for t in texts(tg, USER)), within=WAIT)
    await idle(tg, adapter)
    sent = tg.calls_of("sendMessage")
    assert len(sent) >= 3
    assert all(len(c["text"]) <= 4096 and html_problem(c["text"]) is None for c in sent)
    everything = "\n".join(texts(tg, USER))
    assert "row 0 &lt;ok&gt;" in everything and "row 99 &lt;ok&gt;" in everything


async def test_entity_error_falls_back_to_plain_text(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(llm_streaming=False)
    fake_llm.script(["Some **bold** words"])
    tg.fail(
        "sendMessage",
        400,
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag b",
        when=lambda p: p.get("parse_mode") == "HTML",
    )
    tg.push_update({"message": tg.message("hi")})
    await tg.wait_until(lambda: texts(tg, USER) == ["Some **bold** words"], within=WAIT)
    await idle(tg, adapter)


async def test_429_then_delivered(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(llm_streaming=False)
    tg.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    tg.push_update({"message": tg.message("are you there")})
    await tg.wait_until(lambda: texts(tg, USER) == ["I hear you: are you there"], within=WAIT)
    assert len(tg.calls_of("sendMessage")) == 2
    await idle(tg, adapter)


async def test_blocked_user_is_not_answered_until_they_come_back(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(llm_streaming=False)
    tg.fail(
        "sendMessage",
        403,
        "Forbidden: bot was blocked by the user",
        times=100,
        when=lambda p: p["chat_id"] == USER,
    )
    tg.push_update({"message": tg.message("first")})
    await tg.wait_until(lambda: USER in adapter.blocked, within=WAIT)
    await idle(tg, adapter)
    tg.push_update({"message": tg.message("second")})
    tg.push_update({"message": tg.message("someone else", user_id=7)})
    await tg.wait_until(lambda: len(texts(tg, 7)) == 1, within=WAIT)
    await idle(tg, adapter)
    assert len(fake_llm.chat_requests) == 2  # "first" and "someone else", not "second"
    to_user = [c for c in tg.calls_of("sendMessage") if c["chat_id"] == USER]
    assert len(to_user) == 1, to_user

    # Telegram reports the unblock; the user is answered again.
    tg.clear_failures()
    member = {
        "chat": {"id": USER, "type": "private", "first_name": "Ann"},
        "from": tg.user(USER),
        "date": 1,
        "old_chat_member": {"status": "kicked", "user": tg.bot_user, "until_date": 0},
        "new_chat_member": {"status": "member", "user": tg.bot_user},
    }
    tg.push_update({"my_chat_member": member})
    tg.push_update({"message": tg.message("back again")})
    await tg.wait_until(lambda: texts(tg, USER) == ["I hear you: back again"], within=WAIT)


def _confirming_poll(params: dict[str, Any]) -> bool:
    return bool(params.get("offset"))


def _long_poll_with_offset(params: dict[str, Any]) -> bool:
    return bool(params.get("offset")) and bool(params.get("timeout"))


async def test_duplicate_update_after_a_crash_is_answered_once(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    first = await start_adapter(llm_streaming=False)
    # Telegram's front end fails every later poll, so the update is never confirmed...
    tg.fail("getUpdates", 502, "Bad Gateway", times=1000, when=_confirming_poll)
    tg.push_update({"message": tg.message("only once")})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 1, within=WAIT)
    # ... and the process crashes: no graceful stop, Telegram still holds the update.
    assert first.poller is not None
    await first.poller.stop()
    await first.drain(5)
    await first.tg.session.close()
    assert tg.confirmed_offset == 0
    tg.clear_failures()
    second = await start_adapter(bot=first.bot)
    # The redelivered update comes first; this chat's updates are handled in order.
    tg.push_update({"message": tg.message("something new")})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 2, within=WAIT)
    await idle(tg, second)
    assert texts(tg, USER) == ["I hear you: only once", "I hear you: something new"]
    assert len(fake_llm.chat_requests) == 2


async def test_graceful_stop_finishes_replies_and_commits_offset(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM, bot_factory: BotFactory
) -> None:
    adapter = await start_adapter(llm_streaming=False)
    fake_llm.delay_next(1.5)
    # Long polls after the first fail, so only the shutdown confirms the offset.
    tg.fail("getUpdates", 502, "Bad Gateway", times=1000, when=_long_poll_with_offset)
    last = tg.push_update({"message": tg.message("slow one")})
    await tg.wait_until(lambda: bool(tg.calls_of("sendChatAction")), within=WAIT)
    assert tg.confirmed_offset == 0
    await adapter.stop()
    assert texts(tg, USER) == ["I hear you: slow one"]  # finished before stop returned
    assert tg.confirmed_offset == last + 1
    tg.clear_failures()
    # A new process with fresh memory gets nothing old.
    restarted = await start_adapter()
    tg.push_update({"message": tg.message("new")})
    await tg.wait_until(lambda: len(texts(tg, USER)) == 2, within=WAIT)
    await idle(tg, restarted)
    assert len(fake_llm.chat_requests) == 2


# Webhook mode


async def _post(adapter: TelegramAdapter, body: bytes, secret: str | None) -> int:
    assert adapter.webhook is not None
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    url = f"http://127.0.0.1:{adapter.webhook.port}{adapter.webhook.path}"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.post(url, data=body, headers=headers) as response,
    ):
        return response.status


async def test_webhook_mode(
    tg: FakeTelegram, start_adapter: StartAdapter, fake_llm: FakeLLM
) -> None:
    adapter = await start_adapter(
        llm_streaming=False,
        telegram_webhook_url="https://bot.example.test/hook/tg",
        telegram_webhook_secret="right-secret_1",
    )
    (hook,) = tg.calls_of("setWebhook")
    assert hook["secret_token"] == "right-secret_1" and hook["url"].endswith("/hook/tg")
    assert not tg.calls_of("getUpdates")

    def update(uid: int, text: str) -> bytes:
        return json.dumps({"update_id": uid, "message": tg.message(text)}).encode()

    assert await _post(adapter, update(1, "wrong secret"), "nope") == 401
    assert await _post(adapter, update(2, "no secret"), None) == 401
    assert await _post(adapter, b"{broken", "right-secret_1") == 400
    assert await _post(adapter, b'{"update_id": "x", "message": 1}', "right-secret_1") == 400
    assert await _post(adapter, update(3, "hello hook"), "right-secret_1") == 200
    assert await _post(adapter, update(3, "hello hook"), "right-secret_1") == 200  # a retry
    await tg.wait_until(lambda: len(texts(tg, USER)) >= 1, within=WAIT)
    await idle(tg, adapter)
    assert texts(tg, USER) == ["I hear you: hello hook"]
    assert len(fake_llm.chat_requests) == 1


async def test_group_buttons_answer_only_the_user_who_asked(
    tg: FakeTelegram, start_adapter: StartAdapter
) -> None:
    adapter = await start_adapter()
    ask = tg.message("/forget", chat_id=GROUP, chat_type="supergroup", user_id=USER)
    tg.push_update({"message": ask})
    await tg.wait_until(lambda: len(texts(tg, GROUP)) == 1, within=WAIT)
    prompt_id = max(tg.chat(GROUP).messages)
    prompt = {**tg.bot_message(GROUP, prompt_id), "reply_to_message": ask}

    tg.push_update(
        {"callback_query": tg.callback_query("forget:confirm", user_id=7, message=prompt)}
    )
    await tg.wait_until(lambda: len(tg.calls_of("answerCallbackQuery")) == 1, within=WAIT)
    assert "someone else" in tg.calls_of("answerCallbackQuery")[0]["text"]
    await idle(tg, adapter)
    assert not tg.calls_of("editMessageText")

    tg.push_update({"callback_query": tg.callback_query("forget:cancel", message=prompt)})
    await tg.wait_until(lambda: bool(tg.calls_of("editMessageText")), within=WAIT)
    assert tg.chat(GROUP).messages[prompt_id].startswith("Okay")
