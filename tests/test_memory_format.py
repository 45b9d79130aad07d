"""Memory's stored format is versioned, keeps what it does not know, and upgrades in place.

The migration test writes records exactly as format 1 (the format before
versions, what honeychat wrote until then) into real embedded valkey and
embedded Chroma, starts a bot on them, and checks that everything is read,
upgraded, nothing dropped, and that running the pass again, or in two
processes at once, changes nothing more.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from honeychat.core.bot import Bot
from honeychat.core.memory import line_vectors
from honeychat.core.memory.cold import COSINE_CONFIGURATION, ChromaColdStore
from honeychat.core.memory.hot import RedisHotStore
from honeychat.core.memory.migration import marker_key, upgrade_memory
from honeychat.core.types import (
    MEMORY_FORMAT,
    Attachment,
    ConversationKey,
    Role,
    StoredMessage,
    Summary,
)
from honeychat.testing.pytest_plugin import BotFactory, send

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_messages_read_every_format_and_keep_unknown_fields() -> None:
    v1 = {"seq": 3, "role": "user", "text": "hi", "at": T0.isoformat()}
    message = StoredMessage.from_dict(v1)
    assert (message.seq, message.role, message.speaker, message.attachments) == (
        3,
        Role.USER,
        None,
        (),
    )
    assert message.to_dict() == {**v1, "v": MEMORY_FORMAT}

    newer = {**v1, "v": MEMORY_FORMAT + 1, "speaker": "Ana", "attachments": ["photo"]}
    newer["tool_calls"] = [{"name": "weather", "arguments": {"city": "Porto"}}]
    read = StoredMessage.from_dict(newer)
    assert (read.speaker, read.attachments) == ("Ana", ("photo",))
    kept = read.to_dict()
    assert kept["tool_calls"] == newer["tool_calls"], "an unknown optional field survives"
    assert kept["v"] == MEMORY_FORMAT


def test_summaries_read_format_1_and_split_their_kept_messages() -> None:
    v1 = {
        "conversation_id": "test:alice:luna",
        "text": "The user's cat is Miso.",
        "first_seq": 1,
        "last_seq": 4,
        "first_at": None,
        "last_at": None,
        "model": "m",
        "line_sources": [[1]],
        "generation": 0,
        "kind": "summary",
    }
    summary = Summary.from_dict(v1)
    assert (summary.summary_lines, summary.conversation_kind) == (None, "private")
    assert summary.without_messages() is summary
    assert Summary.from_dict(summary.to_dict()) == summary

    both = Summary(
        "test:alice:luna",
        "The user's cat is Miso.\nAlice: my cat Miso\nLuna: cute!",
        1,
        2,
        line_sources=((1,), (1,), (2,)),
        summary_lines=1,
    )
    assert both.keeps_messages
    only = both.without_messages()
    assert (only.text, only.line_sources, only.summary_lines) == (
        "The user's cat is Miso.",
        ((1,),),
        None,
    )


def _v1_message(seq: int, role: str, text: str) -> str:
    """A buffered message exactly as format 1 stored it (the append script's output)."""
    body = json.dumps(
        {"role": role, "text": text, "at": T0.isoformat()},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return '{"seq":' + str(seq) + "," + body[1:]


V1_MESSAGES = [
    (1, "user", "My cat is called Pumpernickel."),
    (2, "assistant", "What a name!"),
    (3, "user", "I live in Gdańsk, by the sea."),
    (4, "assistant", "Lovely."),
    (5, "user", "My sister Ana plays the cello."),
    (6, "assistant", "Nice."),
    (7, "user", "She moved to Porto."),
    (8, "assistant", "Oh!"),
]


async def _write_format_1(bot: Bot, key: ConversationKey) -> dict[str, dict[str, object]]:
    """Redis and Chroma records of one conversation as format 1 wrote them."""
    assert bot.memory is not None and bot.redis is not None
    hot, cold = bot.memory.hot, bot.memory.cold
    assert isinstance(hot, RedisHotStore) and isinstance(cold, ChromaColdStore)
    redis = bot.redis
    await redis.rpush(hot.key(key, "buf"), *(_v1_message(*m) for m in V1_MESSAGES))
    for name, value in (("seq", 8), ("wm", 8), ("epoch", 0)):
        await redis.set(hot.key(key, name), value)
    cached = {
        "conversation_id": key.id,
        "text": "The user's sister Ana plays the cello.\nAna moved to Porto.",
        "first_seq": 5,
        "last_seq": 8,
        "first_at": T0.isoformat(),
        "last_at": T0.isoformat(),
        "model": "m",
        "line_sources": [[5], [7]],
        "generation": 0,
        "kind": "summary",
    }
    await redis.set(hot.key(key, "summary"), json.dumps(cached, separators=(",", ":")))

    base = {
        "conversation": key.id,
        "platform": key.platform,
        "user_id": key.user_id,
        "character": key.character_id,
        "model": "m",
    }
    lines = ["The user's cat is called Pumpernickel.", "The user lives in Gdańsk."]
    # Format 1 as last written: kind, generation, line provenance and line vectors.
    recent = {
        **base,
        "first_seq": 1,
        "last_seq": 4,
        "generation": 0,
        "kind": "summary",
        "line_sources": "[[1],[3]]",
        "first_at": T0.isoformat(),
        "last_at": T0.isoformat(),
        line_vectors.FIELD: line_vectors.encode(cold._embedding_function(lines)),
        "x_added_by_a_plugin": "kept",
    }
    # Format 1 as first written: no kind, generation, provenance or line vectors.
    oldest = {**base, "first_seq": 5, "last_seq": 8}
    client = cold._connect()
    collection = client.get_or_create_collection(
        cold.collection_name(key.id),
        configuration=COSINE_CONFIGURATION,
        metadata={"honeychat_layout": cold.layout},
        embedding_function=None,
    )
    texts = ["\n".join(lines), cached["text"]]
    ids = [f"{key.id}:000000001-000000004", f"{key.id}:000000005-000000008"]
    collection.add(
        ids=ids,
        embeddings=cold._embedding_function(texts),
        documents=texts,
        metadatas=[recent, oldest],
    )
    return {ids[0]: recent, ids[1]: oldest}


async def _bot_with_format_1_data(
    bot_factory: BotFactory,
) -> tuple[Bot, ConversationKey, dict[str, dict[str, object]]]:
    """A started bot (its own pass finished) whose stores then got format-1 records."""
    bot = await bot_factory(summary_window=2)
    assert bot.memory is not None and bot.memory.format_upgrade is not None
    await bot.memory.format_upgrade
    key = ConversationKey("test", "alice", bot.characters.default.id)
    return bot, key, await _write_format_1(bot, key)


async def test_format_1_data_is_read_and_upgraded_in_place_on_start(
    bot_factory: BotFactory,
) -> None:
    first, key, written = await _bot_with_format_1_data(bot_factory)
    assert first.redis is not None
    await first.redis.delete(marker_key(first.settings.key_prefix))  # as before versions
    await first.stop()

    # A restart on the same valkey and Chroma data, with this version.
    bot = await bot_factory(summary_window=2, key_prefix=first.settings.key_prefix)
    assert bot.memory is not None and bot.memory.format_upgrade is not None
    report = await asyncio.wait_for(bot.memory.format_upgrade, 30)
    assert report is not None and (report.hot, report.cold) == (len(V1_MESSAGES) + 1, 2)

    hot, cold = bot.memory.hot, bot.memory.cold
    assert isinstance(hot, RedisHotStore) and isinstance(cold, ChromaColdStore)
    assert bot.redis is not None
    raw = await bot.redis.lrange(hot.key(key, "buf"), 0, -1)
    assert raw == ['{"v":2,' + _v1_message(*m)[1:] for m in V1_MESSAGES], "only v was added"
    recent = await hot.recent(key, 20)
    assert [(m.seq, m.role.value, m.text) for m in recent] == V1_MESSAGES
    cached = json.loads(await bot.redis.get(hot.key(key, "summary")))
    assert cached["v"] == MEMORY_FORMAT and cached["line_sources"] == [[5], [7]]

    collection = cold._connect().get_collection(cold.collection_name(key.id))
    stored = collection.get(include=["metadatas", "documents"])
    assert sorted(stored["ids"]) == sorted(written), "no document dropped"
    metadata = dict(zip(stored["ids"], stored["metadatas"] or [], strict=True))
    for doc_id, before in written.items():
        after = metadata[doc_id]
        assert after["v"] == MEMORY_FORMAT and after["conversation_kind"] == "private"
        assert {k: after[k] for k in before} == before, "every field it had is unchanged"
    oldest = metadata[f"{key.id}:000000005-000000008"]
    assert (oldest["kind"], oldest["generation"]) == ("summary", 0)
    assert line_vectors.decode(oldest[line_vectors.FIELD]) is not None, "line vectors added"

    found = await cold.search(key.id, "Where did Ana move?", 2)
    assert found[0].text.endswith("Ana moved to Porto.") and found[0].line_scores is not None
    await send(bot, "What is my cat called?")
    history = [m["content"] for m in bot_factory.last_prompt()[1:-1]]
    assert history[-len(V1_MESSAGES) :] == [text for _, _, text in V1_MESSAGES]
    # The new message is stored in the current format beside the upgraded ones.
    newest = (await hot.recent(key, 2))[0]
    assert (newest.seq, newest.text) == (9, "What is my cat called?")
    assert json.loads((await bot.redis.lrange(hot.key(key, "buf"), -2, -2))[0])["v"] == 2

    # Once done, later starts skip it; forced again in two processes at once, one does
    # the (now empty) work, the other steps aside, and nothing changes.
    again = await upgrade_memory(hot, cold, bot.redis, prefix=bot.settings.key_prefix)
    assert again.skipped == "already at the current format"
    await bot.redis.delete(marker_key(bot.settings.key_prefix))
    before = await bot.redis.lrange(hot.key(key, "buf"), 0, -1)
    one, two = await asyncio.gather(
        upgrade_memory(hot, cold, bot.redis, prefix=bot.settings.key_prefix),
        upgrade_memory(hot, cold, bot.redis, prefix=bot.settings.key_prefix),
    )
    assert sorted([one.skipped or "", two.skipped or ""]) == ["", "another process is upgrading"]
    assert {(one.hot, one.cold), (two.hot, two.cold)} == {(0, 0), (None, None)}
    assert await bot.redis.lrange(hot.key(key, "buf"), 0, -1) == before


async def test_a_document_cleared_during_the_pass_is_not_written_back(
    bot_factory: BotFactory,
) -> None:
    bot, key, _ = await _bot_with_format_1_data(bot_factory)
    assert bot.memory is not None
    cold = bot.memory.cold
    assert isinstance(cold, ChromaColdStore)
    collection = cold._connect().get_collection(cold.collection_name(key.id))
    stale = collection.get(include=["documents", "metadatas"])
    patches = cold._format_1_patches(
        [
            (i, d or "", dict(m or {}))
            for i, d, m in zip(
                stale["ids"], stale["documents"] or [], stale["metadatas"] or [], strict=True
            )
        ]
    )
    await cold.delete(key.id)  # /forget between the pass's read and its write
    collection.update(ids=stale["ids"], metadatas=patches)  # type: ignore[arg-type]
    assert await cold.all(key.id) == []


async def test_speaker_and_attachment_kinds_are_taken_from_the_turn(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory()
    await send(bot, "Luna: look at this", user_name="Alice", attachments=(Attachment("photo"),))
    assert bot.memory is not None and bot.memory.hot is not None
    key = ConversationKey("test", "alice", bot.characters.default.id)
    user, reply = await bot.memory.hot.recent(key, 2)
    assert (user.role, user.speaker, user.attachments) == (Role.USER, "Alice", ("photo",))
    assert user.text.startswith("Luna: look at this"), "a name in the text stays text"
    assert (reply.role, reply.speaker, reply.attachments) == (Role.ASSISTANT, "Luna", ())
