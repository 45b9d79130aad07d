"""Erasing a user leaves nothing of them in any store: the enumeration that keeps it total.

A user with a unique id talks with two characters on two platforms (summaries,
line vectors, provenance trails, quota counters, a chosen character), then is
erased. Every Redis key and value, every Chroma collection's documents and
metadata, and every file under the data directory (except the stores' own
data files) is then read: none may hold the user's id or words. A store added
later that keeps user content without joining the erasure fails this test.
A bystander's memory is untouched.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import chromadb
import pytest
from inspector_helpers import TOKEN, client, running_inspector
from test_cli_slips import Run, llm, run  # noqa: F401  (fixtures of the CLI tests)

from honeychat.core.bot import Bot
from honeychat.core.erase import UserRef, erase_user
from honeychat.core.memory.redis_server import EmbeddedRedis
from honeychat.core.memory.stores import StoreUnavailable
from honeychat.core.types import ConversationKey, IncomingMessage
from honeychat.testing.pytest_plugin import BotFactory, send
from honeychat.testing.responders import keeping_user_lines


async def redis_dump(bot: Bot) -> list[str]:
    """Every key of the database with its whole value, as text."""
    assert bot.redis is not None
    found: list[str] = []
    async for raw in bot.redis.scan_iter(count=500):
        key = str(raw)
        kind = await bot.redis.type(key)
        if kind == "string":
            value: Any = await bot.redis.get(key)
        elif kind == "list":
            value = await bot.redis.lrange(key, 0, -1)
        elif kind == "hash":
            value = await bot.redis.hgetall(key)
        elif kind == "zset":
            value = await bot.redis.zrange(key, 0, -1)
        elif kind == "set":
            value = await bot.redis.smembers(key)
        elif kind == "stream":
            value = await bot.redis.xrange(key)
        else:
            raise AssertionError(f"{key}: a Redis type this test does not read: {kind}")
        found.append(f"{key} => {value!r}")
    return found


def chroma_dump(path: Path) -> list[str]:
    """Every document with its metadata, in every collection of the embedded Chroma."""
    client = chromadb.PersistentClient(path=str(path))
    found = []
    for listed in client.list_collections():
        collection = client.get_collection(listed.name)
        data = collection.get(include=["documents", "metadatas"])
        for doc_id, document, metadata in zip(
            data["ids"], data["documents"] or [], data["metadatas"] or [], strict=True
        ):
            found.append(f"{listed.name} {doc_id} {document!r} {metadata!r}")
    return found


def data_files(data_dir: Path) -> list[str]:
    """The text of every file under the data directory, outside the stores' own data files."""
    found = []
    for path in data_dir.rglob("*"):
        parts = path.relative_to(data_dir).parts
        if path.is_file() and parts[0] not in ("redis", "chroma"):
            found.append(f"{path}: {path.read_bytes().decode('utf-8', 'replace')}")
    return found


def holding(items: list[str], *needles: str) -> list[str]:
    return [item for item in items if any(n in item for n in needles)]


async def test_erasing_a_user_leaves_nothing_of_them_anywhere(bot_factory: BotFactory) -> None:
    user = f"u{uuid.uuid4().hex[:10]}"
    secret = f"zebracorn{uuid.uuid4().hex[:8]}"
    bot = await bot_factory(summary_window=1, hot_buffer_size=2)
    bot_factory.llm.responder = keeping_user_lines(lambda r: "I'll remember that.")
    for platform in ("test", "telegram"):
        await send(bot, f"my password hint is {secret} one", user=user, platform=platform)
        message = IncomingMessage(platform, user, user, "", is_direct=True)
        await bot.run_command(message, "character", "marcus")
        await send(bot, f"{secret} two, told to Marcus", user=user, platform=platform)
    await send(bot, "bystander remembers tangerines", user="bystander")
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(30)
    chroma_path = bot.settings.data_dir / "chroma"
    before = await redis_dump(bot) + chroma_dump(chroma_path)
    kinds = {item.split(" ")[0].split(":")[1] for item in holding(await redis_dump(bot), user)}
    assert {"conv", "user", "trail"} <= kinds, kinds  # the stores this test must see emptied
    assert holding(chroma_dump(chroma_path), secret), "summaries were written"
    assert holding(before, "tangerines")

    erasure = await erase_user(bot, UserRef(user))

    assert len(erasure.conversations) == 4  # two characters on two platforms
    left = await redis_dump(bot) + chroma_dump(chroma_path) + data_files(bot.settings.data_dir)
    assert holding(left, user, secret) == []
    bystander = ConversationKey("test", "bystander", bot.characters.default.id)
    assert await bot.memory.hot.recent(bystander, 10)  # type: ignore[union-attr]
    assert holding(left, "tangerines")
    # The user can start again, from nothing.
    await send(bot, "hello again", user=user)
    prompt = " ".join(str(m["content"]) for m in bot_factory.llm.chat_requests[-1].messages)
    assert secret not in prompt


async def test_erasing_with_redis_down_changes_nothing(bot_factory: BotFactory) -> None:
    bot = await bot_factory(redis_timeout=0.5)
    await send(bot, "keep me", user="frank")
    server = EmbeddedRedis(bot.settings.data_dir)
    server.stop()
    try:
        with pytest.raises(StoreUnavailable, match="hot"):
            await erase_user(bot, UserRef("frank"))
        server.start()
        key = ConversationKey("test", "frank", bot.characters.default.id)
        assert bot.memory is not None and bot.memory.hot is not None
        assert [m.text for m in await bot.memory.hot.recent(key, 10)][:1] == ["keep me"]
    finally:
        await bot.stop()
        server.stop()


async def test_forget_everything_asks_then_erases_every_character_on_this_platform(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory()
    await send(bot, "luna hears about kiwis", user="gil")
    await send(bot, "/character pixel", user="gil")
    await send(bot, "pixel hears about kiwis", user="gil")
    await send(bot, "on another platform", user="gil", platform="discord")
    ask = await send(bot, "/forget everything", user="gil")
    choices = ask.replies[-1].choices
    assert [c.label for c in choices] == ["Yes, erase everything", "Cancel"]
    message = IncomingMessage("test", "gil", "gil", "", is_direct=True)
    cancelled = await bot.run_command(
        message, choices[1].command, choices[1].value, from_choice=True
    )
    assert "keep remembering" in cancelled.text
    assert await holds(bot, ConversationKey("test", "gil", "pixel"))
    done = await bot.run_command(message, choices[0].command, choices[0].value, from_choice=True)
    assert "Everything about you is erased (2 conversations)" in done.text
    for character in ("luna", "pixel"):
        assert not await holds(bot, ConversationKey("test", "gil", character))
    assert await holds(bot, ConversationKey("discord", "gil", "luna")), "another platform's user"
    assert (await bot.current_character("test", "gil")).id == bot.characters.default.id


async def holds(bot: Bot, key: ConversationKey) -> bool:
    assert bot.memory is not None and bot.memory.hot is not None
    return bool(await bot.memory.hot.recent(key, 10))


async def test_the_inspector_erases_a_user_on_every_platform(bot_factory: BotFactory) -> None:
    bot = await bot_factory(inspector_token=TOKEN)
    await send(bot, "hello", user="hana")
    await send(bot, "hello there", user="hana", platform="slack")
    await send(bot, "bystander", user="ivan")
    async with running_inspector(bot) as url, client(url) as http:
        response = await http.delete("/api/users/test/hana", params={"every_platform": "true"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["platform"] is None
        assert sorted(body["conversations"]) == ["slack:hana:luna", "test:hana:luna"]
        listed = (await http.get("/api/conversations", params={"limit": 500})).json()
        assert [i["user_id"] for i in listed["items"]] == ["ivan"]
        again = await http.delete("/api/users/test/hana")
        assert again.status_code == 200 and again.json()["conversations"] == []


def test_memory_clear_all_erases_the_user_from_the_command_line(run: Run) -> None:  # noqa: F811
    assert run("chat", "--user", "jo", stdin="I like plums\n")[0] == 0
    assert run("chat", "--user", "jo", "--character", "marcus", stdin="hi Marcus\n")[0] == 0
    code, _, err = run("memory", "clear", "--user", "jo", "--all", "--character", "luna")
    assert code == 2 and "leave out --character" in err
    code, out, _ = run("memory", "clear", "--user", "jo", "--all")
    assert code == 0, out
    assert out.startswith("Erased 2 conversation(s) of user 'jo' on every platform")
    for character in ("luna", "marcus"):
        code, out, _ = run("memory", "show", "--user", "jo", "--character", character)
        assert " 0 summaries and 0 recent messages" in out.splitlines()[0], out
