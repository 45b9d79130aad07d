"""The HotStore contract, checked on every real Redis-protocol backend available.

``redis_client`` (tests/conftest.py) runs each test on the embedded valkey
and, when REDIS_URL is set, on that server too.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from honeychat.core.memory.hot import RedisHotStore
from honeychat.core.memory.stores import HotStore, StoreUnavailable
from honeychat.core.types import ConversationKey, Role, Summary

HotStoreFactory = Callable[..., RedisHotStore]

ALICE = ConversationKey("telegram", "1001", "luna")
BOB = ConversationKey("telegram", "1002", "luna")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(i: int) -> datetime:
    return T0 + timedelta(seconds=i)


async def fill(store: RedisHotStore, conv: ConversationKey, n: int, start: int = 1) -> None:
    for i in range(start, start + n):
        role = Role.USER if i % 2 else Role.ASSISTANT
        await store.append(conv, role, f"message {i}", at(i))


def summary(conv: ConversationKey, first: int, last: int, text: str = "they talked") -> Summary:
    return Summary(
        conversation_id=conv.id,
        text=text,
        first_seq=first,
        last_seq=last,
        first_at=at(first),
        last_at=at(last),
        model="test/model",
    )


def test_implements_the_protocol(hot_store: RedisHotStore) -> None:
    assert isinstance(hot_store, HotStore)


async def test_append_numbers_messages_per_conversation(hot_store: RedisHotStore) -> None:
    first = await hot_store.append(ALICE, Role.USER, "hi", at(1))
    second = await hot_store.append(ALICE, Role.ASSISTANT, "hello!", at(2))
    other = await hot_store.append(BOB, Role.USER, "hey", at(3))

    assert (first.seq, second.seq, other.seq) == (1, 2, 1)
    assert (first.role, first.text, first.at) == (Role.USER, "hi", at(1))
    assert await hot_store.last_seq(ALICE) == 2
    assert await hot_store.last_seq(BOB) == 1
    assert [m.text for m in await hot_store.recent(ALICE, 10)] == ["hi", "hello!"]


async def test_empty_conversation_defaults(hot_store: RedisHotStore) -> None:
    assert await hot_store.last_seq(ALICE) == 0
    assert await hot_store.watermark(ALICE) == 0
    assert await hot_store.epoch(ALICE) == 0
    assert await hot_store.recent(ALICE, 5) == []
    assert await hot_store.window(ALICE, 1, 10) == []
    assert await hot_store.cached_summary(ALICE) is None


async def test_buffer_is_bounded_once_summarized(hot_store_factory: HotStoreFactory) -> None:
    store = hot_store_factory(buffer_size=10)
    for i in range(1, 101):
        await store.append(ALICE, Role.USER, f"m{i}", at(i))
        assert await store.advance_watermark(ALICE, i - 1, i, 0)

    recent = await store.recent(ALICE, 1000)
    assert [m.seq for m in recent] == list(range(91, 101))
    assert await store.client.llen(store.key(ALICE, "buf")) == 10


async def test_unsummarized_messages_are_never_trimmed(hot_store_factory: HotStoreFactory) -> None:
    store = hot_store_factory(buffer_size=10)
    await fill(store, ALICE, 100)

    assert [m.seq for m in await store.recent(ALICE, 1000)] == list(range(1, 101))

    # Summarizing the first 95 lets the buffer shrink back to buffer_size.
    assert await store.advance_watermark(ALICE, 0, 95, 0)
    assert [m.seq for m in await store.recent(ALICE, 1000)] == list(range(91, 101))
    await fill(store, ALICE, 8, start=101)
    # 13 messages are unsummarized now (96..108): more than buffer_size, all kept.
    assert [m.seq for m in await store.recent(ALICE, 1000)] == list(range(96, 109))


async def test_only_the_buffer_and_the_cache_expire(hot_store_factory: HotStoreFactory) -> None:
    store = hot_store_factory(ttl_seconds=600)
    await fill(store, ALICE, 3)
    assert await store.advance_watermark(ALICE, 0, 2, 0)
    assert await store.cache_summary(ALICE, summary(ALICE, 1, 2), 0)
    await store.clear(ALICE)
    await fill(store, ALICE, 2, start=4)
    assert await store.cache_summary(ALICE, summary(ALICE, 3, 3), 1)

    keys = [k async for k in store.client.scan_iter(match="hctest:conv:*")]
    names = sorted(k.rsplit(":", 1)[1] for k in keys)
    assert names == ["buf", "epoch", "seq", "summary", "wm"]
    for key in keys:
        ttl = await store.client.pttl(key)
        if key.endswith((":seq", ":wm", ":epoch")):
            assert ttl == -1, (key, ttl)  # durable: memory depends on them
        else:
            assert 0 < ttl <= 600_000, (key, ttl)


async def test_recent_returns_the_newest_oldest_first(hot_store: RedisHotStore) -> None:
    await fill(hot_store, ALICE, 7)

    recent = await hot_store.recent(ALICE, 3)
    assert [m.seq for m in recent] == [5, 6, 7]
    assert [m.text for m in recent] == ["message 5", "message 6", "message 7"]
    assert [m.role for m in recent] == [Role.USER, Role.ASSISTANT, Role.USER]
    assert [m.at for m in recent] == [at(5), at(6), at(7)]
    assert await hot_store.recent(ALICE, 0) == []
    assert len(await hot_store.recent(ALICE, 100)) == 7


async def test_window_selects_by_sequence_number(hot_store: RedisHotStore) -> None:
    await fill(hot_store, ALICE, 12)

    assert [m.seq for m in await hot_store.window(ALICE, 3, 6)] == [3, 4, 5, 6]
    assert [m.seq for m in await hot_store.window(ALICE, 11, 20)] == [11, 12]
    assert [m.seq for m in await hot_store.window(ALICE, 5, 5)] == [5]
    assert await hot_store.window(ALICE, 13, 20) == []
    assert await hot_store.window(ALICE, 6, 3) == []


async def test_advance_watermark_is_compare_and_set(hot_store: RedisHotStore) -> None:
    await fill(hot_store, ALICE, 10)

    assert not await hot_store.advance_watermark(ALICE, 3, 5, 0)  # wrong expected
    assert not await hot_store.advance_watermark(ALICE, 0, 5, 1)  # wrong epoch
    assert await hot_store.watermark(ALICE) == 0

    assert await hot_store.advance_watermark(ALICE, 0, 5, 0)
    assert await hot_store.watermark(ALICE) == 5
    assert not await hot_store.advance_watermark(ALICE, 0, 8, 0)  # someone else moved it
    assert await hot_store.advance_watermark(ALICE, 5, 10, 0)
    assert await hot_store.watermark(ALICE) == 10


async def test_advance_watermark_rejects_impossible_moves(hot_store: RedisHotStore) -> None:
    await fill(hot_store, ALICE, 4)
    with pytest.raises(ValueError, match="after the last message"):
        await hot_store.advance_watermark(ALICE, 0, 5, 0)
    with pytest.raises(ValueError, match="cannot move back"):
        await hot_store.advance_watermark(ALICE, 3, 2, 0)
    assert await hot_store.watermark(ALICE) == 0


async def test_concurrent_advances_let_exactly_one_win(hot_store: RedisHotStore) -> None:
    await fill(hot_store, ALICE, 10)
    results = await asyncio.gather(
        *(hot_store.advance_watermark(ALICE, 0, n, 0) for n in range(1, 11))
    )
    assert sum(results) == 1
    winner = results.index(True) + 1
    assert await hot_store.watermark(ALICE) == winner


async def test_clear_bumps_epoch_and_keeps_counting(hot_store: RedisHotStore) -> None:
    await fill(hot_store, ALICE, 6)
    assert await hot_store.advance_watermark(ALICE, 0, 2, 0)
    assert await hot_store.cache_summary(ALICE, summary(ALICE, 1, 2), 0)
    await fill(hot_store, BOB, 2)

    await hot_store.clear(ALICE)

    assert await hot_store.recent(ALICE, 10) == []
    assert await hot_store.cached_summary(ALICE) is None
    assert await hot_store.watermark(ALICE) == 6
    assert await hot_store.epoch(ALICE) == 1
    assert await hot_store.last_seq(ALICE) == 6
    message = await hot_store.append(ALICE, Role.USER, "fresh start", at(7))
    assert message.seq == 7
    assert [m.seq for m in await hot_store.recent(ALICE, 10)] == [7]
    # Other conversations are untouched.
    assert [m.seq for m in await hot_store.recent(BOB, 10)] == [1, 2]
    assert await hot_store.epoch(BOB) == 0

    await hot_store.clear(ALICE)
    assert await hot_store.epoch(ALICE) == 2
    assert await hot_store.watermark(ALICE) == 7


async def test_work_from_before_a_clear_is_refused(hot_store: RedisHotStore) -> None:
    await fill(hot_store, ALICE, 4)
    epoch = await hot_store.epoch(ALICE)
    await hot_store.clear(ALICE)

    assert not await hot_store.cache_summary(ALICE, summary(ALICE, 1, 4), epoch)
    assert await hot_store.cached_summary(ALICE) is None
    assert not await hot_store.advance_watermark(ALICE, 4, 4, epoch)


async def test_summary_cache_round_trips(hot_store: RedisHotStore) -> None:
    await fill(hot_store, ALICE, 4)
    cached = summary(ALICE, 1, 4, text="Ana loves 🐈 and «jazz»\nnew line")
    assert await hot_store.cache_summary(ALICE, cached, 0)
    assert await hot_store.cached_summary(ALICE) == cached

    bare = Summary(conversation_id=ALICE.id, text="no dates", first_seq=1, last_seq=2)
    assert await hot_store.cache_summary(ALICE, bare, 0)
    assert await hot_store.cached_summary(ALICE) == bare


async def test_corrupt_summary_cache_is_a_miss(hot_store: RedisHotStore) -> None:
    await hot_store.client.set(hot_store.key(ALICE, "summary"), "{not json")
    assert await hot_store.cached_summary(ALICE) is None


async def test_conversations_pages_through_every_id(hot_store: RedisHotStore) -> None:
    keys = [ConversationKey("discord", f"user {i}", "luna") for i in range(25)]
    keys.append(ConversationKey("slack", "T1:U:2", "ember"))
    for key in keys:
        await hot_store.append(key, Role.USER, "hi", at(0))
    # Not a buffer of this store: another prefix, and a cleared conversation.
    await hot_store.client.set("other:conv:{x:y:z}:buf", "1")
    await hot_store.append(ALICE, Role.USER, "bye", at(0))
    await hot_store.clear(ALICE)

    seen: list[str] = []
    cursor, pages = 0, 0
    while True:
        cursor, ids = await hot_store.conversations(cursor, count=5)
        seen.extend(ids)
        pages += 1
        if cursor == 0:
            break
        assert pages < 1000
    assert pages > 1
    assert set(seen) == {key.id for key in keys}
    assert sorted(ConversationKey.parse(i) for i in set(seen)) == sorted(keys)


async def test_texts_round_trip_exactly(hot_store: RedisHotStore) -> None:
    texts = [
        "Привет, как дела? 你好 🌸👩‍👩‍👧‍👦",
        "control\x00chars\x07\x1b[31m\r\n\ttab and \u2028 separator",
        'quotes " \' \\ and json {"seq": 99, "text": "x"}',
        "x" * 100_000 + "🎉",
        "",
    ]
    for text in texts:
        await hot_store.append(ALICE, Role.USER, text, at(1))
    stored = await hot_store.recent(ALICE, len(texts))
    assert [m.text for m in stored] == texts
    assert [m.seq for m in stored] == list(range(1, len(texts) + 1))


async def test_text_utf8_cannot_hold_is_stored_as_replacement_characters(
    hot_store: RedisHotStore,
) -> None:
    text = "lone \ud800 and \udcff, pair \ud83d\ude00"
    returned = await hot_store.append(ALICE, Role.USER, text, at(1))
    [stored] = await hot_store.recent(ALICE, 1)
    assert stored.text == returned.text == "lone \ufffd and \ufffd, pair \U0001f600"
    stored.text.encode("utf-8")  # every later JSON/HTTP encoding works


async def test_non_utc_times_round_trip(hot_store: RedisHotStore) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    await hot_store.append(ALICE, Role.ASSISTANT, "hi", when)
    [message] = await hot_store.recent(ALICE, 1)
    assert message.at == when and message.at.utcoffset() == timedelta(hours=5, minutes=30)


async def test_ids_with_separators_do_not_collide(hot_store: RedisHotStore) -> None:
    tricky = [
        ConversationKey("slack", "T1:U2", "luna"),
        ConversationKey("slack", "T1", "U2:luna"),
        ConversationKey("slack:T1", "U2", "luna"),
        ConversationKey("slack", "user with spaces", "luna"),
        ConversationKey("slack", "user%20with%20spaces", "luna"),
        ConversationKey("slack", "{brace}", "luna"),
    ]
    assert len({key.id for key in tricky}) == len(tricky)
    for n, key in enumerate(tricky, start=1):
        for _ in range(n):
            await hot_store.append(key, Role.USER, key.id, at(n))
    for n, key in enumerate(tricky, start=1):
        stored = await hot_store.recent(key, 100)
        assert [m.text for m in stored] == [key.id] * n
        assert await hot_store.last_seq(key) == n


async def test_close_leaves_a_shared_client_open(hot_store_factory: HotStoreFactory) -> None:
    shared = hot_store_factory()
    await shared.append(ALICE, Role.USER, "hi", at(1))
    await shared.close()
    assert await shared.client.ping()  # still usable by its owner
    assert await shared.last_seq(ALICE) == 1


async def test_prefixes_separate_deployments(hot_store_factory: HotStoreFactory) -> None:
    one = hot_store_factory(prefix="one")
    two = hot_store_factory(prefix="one:two")
    await one.append(ALICE, Role.USER, "from one", at(1))
    await two.append(ALICE, Role.USER, "from two", at(1))
    assert [m.text for m in await one.recent(ALICE, 5)] == ["from one"]
    assert [m.text for m in await two.recent(ALICE, 5)] == ["from two"]
    _, ids = await one.conversations(0, count=1000)
    assert ids == [ALICE.id]


def test_rejects_bad_configuration(redis_client: redis.asyncio.Redis) -> None:
    with pytest.raises(ValueError, match="prefix"):
        RedisHotStore(redis_client, prefix="a{b}", buffer_size=5, ttl_seconds=1)
    with pytest.raises(ValueError, match="buffer_size"):
        RedisHotStore(redis_client, prefix="a", buffer_size=0, ttl_seconds=1)
    with pytest.raises(ValueError, match="ttl_seconds"):
        RedisHotStore(redis_client, prefix="a", buffer_size=5, ttl_seconds=0)


def _refused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_server_raises_store_unavailable() -> None:
    client = redis.asyncio.Redis(
        host="127.0.0.1",
        port=_refused_port(),
        socket_connect_timeout=1,
        socket_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )
    store = RedisHotStore(client, prefix="hc", buffer_size=5, ttl_seconds=60, owns_client=True)
    calls = [
        store.append(ALICE, Role.USER, "hi", at(1)),
        store.recent(ALICE, 5),
        store.window(ALICE, 1, 2),
        store.last_seq(ALICE),
        store.watermark(ALICE),
        store.epoch(ALICE),
        store.advance_watermark(ALICE, 0, 1, 0),
        store.cached_summary(ALICE),
        store.cache_summary(ALICE, summary(ALICE, 1, 2), 0),
        store.clear(ALICE),
        store.conversations(),
    ]
    try:
        for call in calls:
            with pytest.raises(StoreUnavailable) as caught:
                await asyncio.wait_for(call, timeout=10)
            assert caught.value.layer == "hot"
    finally:
        await store.close()
