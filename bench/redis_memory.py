"""Measure Redis memory per conversation, to size ``maxmemory`` (docs/deploy.md).

Fills N conversations of T turns (a user message and a reply each) through
:class:`~honeychat.core.memory.hot.RedisHotStore`, the way the bot writes,
advancing the watermark every SUMMARY_WINDOW turns as the summarizer does
(so the buffer is trimmed to HOT_BUFFER_SIZE), and caching a summary. Then
prints ``MEMORY USAGE`` of every key of one conversation and the ``INFO
memory`` delta per conversation.

    python bench/redis_memory.py [--conversations 200] [--turns 1000] [--chars 300]

Uses REDIS_URL when set (a dedicated database: it is flushed), else an
embedded valkey in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import string
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio

from honeychat.core.memory.hot import RedisHotStore
from honeychat.core.memory.redis_server import EmbeddedRedis
from honeychat.core.types import ConversationKey, Role, Summary


def sentence(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append("".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))))
    return " ".join(words)[:chars]


async def fill(
    store: RedisHotStore,
    key: ConversationKey,
    turns: int,
    window: int,
    chars: int,
    rng: random.Random,
) -> None:
    for turn in range(1, turns + 1):
        now = datetime.now(UTC)
        await store.append(key, Role.USER, sentence(rng, chars), now)
        await store.append(key, Role.ASSISTANT, sentence(rng, chars), now)
        if turn % window == 0:
            watermark = await store.watermark(key)
            last = await store.last_seq(key)
            epoch = await store.epoch(key)
            await store.advance_watermark(key, watermark, last, epoch)
            summary = Summary(key.id, sentence(rng, 700), watermark + 1, last, now, now, "bench")
            await store.cache_summary(key, summary, epoch)


async def measure(client: redis.asyncio.Redis, args: argparse.Namespace) -> None:
    await client.flushdb()
    store = RedisHotStore(client, prefix="hc", buffer_size=args.buffer, ttl_seconds=7 * 86400)
    rng = random.Random(7)
    before = int((await client.info("memory"))["used_memory"])
    for n in range(args.conversations):
        key = ConversationKey("telegram", str(100000000 + n), "luna")
        await fill(store, key, args.turns, args.window, args.chars, rng)
    after = int((await client.info("memory"))["used_memory"])
    sample = ConversationKey("telegram", "100000000", "luna")
    print(
        f"{args.conversations} conversations x {args.turns} turns, messages of {args.chars} chars,"
    )
    print(f"HOT_BUFFER_SIZE={args.buffer}, SUMMARY_WINDOW={args.window} turns")
    total = 0
    for name in ("buf", "seq", "wm", "epoch", "summary"):
        usage = int(await client.memory_usage(store.key(sample, name), samples=0) or 0)
        total += usage
        print(f"  MEMORY USAGE {name:<8} {usage:>7} bytes")
    print(f"  MEMORY USAGE total    {total:>7} bytes per conversation")
    print(
        f"  INFO used_memory delta {(after - before) / args.conversations:>9.0f} bytes per conversation"
    )
    await client.flushdb()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--chars", type=int, default=300, help="characters per message")
    parser.add_argument("--buffer", type=int, default=20, help="HOT_BUFFER_SIZE")
    parser.add_argument("--window", type=int, default=10, help="SUMMARY_WINDOW (turns)")
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL")
    if url:
        client = redis.asyncio.from_url(url, decode_responses=True)
        try:
            await measure(client, args)
        finally:
            await client.aclose()
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.start()
        client = server.async_client()
        try:
            await measure(client, args)
        finally:
            await client.aclose()
            server.release_sync()
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
