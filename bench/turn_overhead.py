"""Turn overhead, prompt growth and Redis memory of the core, with the embedded stores.

Run: ``python bench/turn_overhead.py`` (options: ``--turns``, ``--conversations``,
``--long-turns``; ``--layouts product,summary-only --rounds 2`` measures the product
against the cold layout before #15, ``MEMORY_KEEP_MESSAGES=false``, in the same run,
alternating fresh bots). The fake LLM answers at once over loopback, so what is
measured is honeychat's own work per turn: ingest, persisting the user's
message, the three concurrent memory reads (with the query embedding),
prompt assembly and persisting the reply. Background summarization runs as it
does in production. Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from honeychat import hookimpl
from honeychat.core.bot import Bot
from honeychat.core.memory.embeddings import embed
from honeychat.core.memory.hot import RedisHotStore
from honeychat.core.memory.tokens import TOKENIZER_NAME, count_tokens
from honeychat.core.settings import Settings
from honeychat.core.turn import Turn
from honeychat.core.types import ConversationKey, IncomingMessage
from honeychat.testing.channel import RecordingChannel
from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.responders import is_summary_request, keeping_user_lines

SUBJECTS = [
    "my sister",
    "the dog",
    "my boss",
    "our neighbour",
    "my friend Tom",
    "the cat",
    "my mum",
]
VERBS = ["visited", "painted", "fixed", "forgot", "booked", "cooked", "found", "lost"]
OBJECTS = [
    "the old bicycle",
    "a table in Lisbon",
    "the garden fence",
    "a birthday cake",
    "tickets to Oslo",
    "the blue umbrella",
    "a violin lesson",
    "the kitchen tap",
]


def user_line(rng: random.Random, i: int) -> str:
    return (
        f"Yesterday {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}, "
        f"and on day {i} {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}."
    )


CHAT_REPLY = "That sounds like quite a day. Tell me more about how it went and how you felt."
# Summaries as long as the summarizer's prompt allows (SUMMARY_INSTRUCTIONS: at most 120 words).
responder = keeping_user_lines(CHAT_REPLY, prefix="The user said: ", max_words=120)


class Timings:
    """A bench-only plugin collecting every turn's timings."""

    def __init__(self) -> None:
        self.turns: list[dict[str, float]] = []

    @hookimpl
    def honeychat_turn_complete(self, turn: Turn) -> None:
        self.turns.append(dict(turn.timings))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


LAYOUTS = {"product": True, "summary-only": False}
"""``MEMORY_KEEP_MESSAGES`` of each layout: the product keeps each window's messages."""


async def make_bot(
    data_dir: Path, llm: FakeLLM, timings: Timings, *, keep_messages: bool = True
) -> Bot:
    settings = Settings(
        memory_keep_messages=keep_messages,
        data_dir=data_dir,
        redis_url=None,
        chroma_url=None,
        llm_base_url=llm.base_url,
        llm_api_key="bench",
        openrouter_api_key=None,
        llm_streaming=False,
        user_tiers={},
        default_tier="premium",
    )
    bot = Bot(settings, plugins=[("bench-timings", timings)])
    await bot.start()
    return bot


async def say(bot: Bot, user: str, text: str) -> None:
    message = IncomingMessage("bench", user, user, text, is_direct=True)
    await bot.handle_message(message, RecordingChannel())


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(count_tokens(m["content"]) for m in messages)


async def measure_overhead(
    bot: Bot, timings: Timings, turns: int, conversations: int
) -> dict[str, Any]:
    rng = random.Random(7)
    # Give every conversation history and summaries first, so all three reads do real work.
    for i in range(30):
        for c in range(conversations):
            await say(bot, f"user{c}", user_line(rng, i))
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(600)
    timings.turns.clear()
    for i in range(turns):
        await say(bot, f"user{i % conversations}", user_line(rng, 100 + i))
    await bot.memory.summarizer.wait_idle(600)
    overhead_ms = [t["overhead"] * 1000 for t in timings.turns]

    # Baseline in the same run: embedding one query alone (the largest fixed cost of a turn).
    assert bot.memory.cold is not None
    embedding_fn = bot.memory.cold._embedding_function  # bench-only peek
    embed_ms = []
    for i in range(200):
        started = time.perf_counter()
        await embed(embedding_fn, [user_line(rng, i)])
        embed_ms.append((time.perf_counter() - started) * 1000)
    return {
        "turns": len(overhead_ms),
        "overhead_ms": {
            "p50": round(statistics.median(overhead_ms), 2),
            "p90": round(percentile(overhead_ms, 90), 2),
            "p99": round(percentile(overhead_ms, 99), 2),
            "max": round(max(overhead_ms), 2),
        },
        "baseline_query_embedding_ms_p50": round(statistics.median(embed_ms), 2),
        "overhead_vs_embedding_p50": round(
            statistics.median(overhead_ms) / statistics.median(embed_ms), 2
        ),
    }


async def measure_growth(bot: Bot, llm: FakeLLM, long_turns: int) -> dict[str, Any]:
    rng = random.Random(11)
    checkpoints = {n for n in (50, 200, 1000) if n <= long_turns} | {long_turns}
    tokens_at: dict[str, int] = {}
    history: list[dict[str, Any]] = []
    assert bot.memory is not None and bot.memory.summarizer is not None
    for i in range(1, long_turns + 1):
        text = user_line(rng, i)
        if i in checkpoints:
            await bot.memory.summarizer.wait_idle(600)  # steady state: summaries caught up
        await say(bot, "long", text)
        request = [r for r in llm.chat_requests if not is_summary_request(r.json)][-1]
        history += [{"content": text}, {"content": responder(request.json)}]
        if i in checkpoints:
            tokens_at[str(i)] = prompt_tokens(request.messages)
    await bot.memory.summarizer.wait_idle(600)
    system = request.messages[0]["content"]
    persona_only = bot.characters.default.persona
    full_replay = prompt_tokens([{"content": persona_only}, *history])
    last = str(long_turns)
    first = str(min(checkpoints))
    conversation = ConversationKey("bench", "long", bot.characters.default.id)
    hot = bot.memory.hot
    assert isinstance(hot, RedisHotStore)
    key_bytes = {}
    for name in ("buf", "seq", "wm", "epoch", "summary"):
        key = hot.key(conversation, name)
        usage = await hot.client.memory_usage(key)
        key_bytes[name] = int(usage or 0)
    buffered = len(await hot.recent(conversation, 100_000))
    return {
        "tokenizer": TOKENIZER_NAME,
        "prompt_tokens": tokens_at,
        "growth_first_to_last": round(tokens_at[last] / tokens_at[first] - 1, 4),
        "full_history_replay_tokens": full_replay,
        "prompt_vs_full_replay": round(tokens_at[last] / full_replay, 4),
        "system_prompt_chars": len(system),
        "redis_bytes_per_conversation": sum(key_bytes.values()),
        "redis_bytes_by_key": key_bytes,
        "messages_buffered": buffered,
        "buffer_size": bot.settings.hot_buffer_size,
    }


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500, help="measured turns for the overhead")
    parser.add_argument("--conversations", type=int, default=10)
    parser.add_argument(
        "--long-turns", type=int, default=1000, help="turns of the long conversation"
    )
    parser.add_argument(
        "--layouts",
        default="product",
        help=f"cold layouts to measure, in turn, each on a fresh bot ({', '.join(LAYOUTS)})",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat the layouts this often")
    args = parser.parse_args(argv)
    layouts = [name.strip() for name in args.layouts.split(",") if name.strip()]
    unknown = set(layouts) - set(LAYOUTS)
    if unknown:
        parser.error(f"unknown layouts {sorted(unknown)}; choose from {', '.join(LAYOUTS)}")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in layouts}
    growth: dict[str, Any] = {}
    async with FakeLLM() as llm:
        llm.responder = responder
        for round_ in range(args.rounds):
            # Alternate the order each round, so neither layout always runs on a warmer machine.
            for name in layouts if round_ % 2 == 0 else layouts[::-1]:
                timings = Timings()
                with tempfile.TemporaryDirectory(prefix="honeychat-bench-") as tmp:
                    bot = await make_bot(Path(tmp), llm, timings, keep_messages=LAYOUTS[name])
                    try:
                        result = await measure_overhead(
                            bot, timings, args.turns, args.conversations
                        )
                        runs[name].append(result)
                        print(f"{name} round {round_ + 1}: {json.dumps(result)}", flush=True)
                        if not growth and args.long_turns > 0:
                            growth = await measure_growth(bot, llm, args.long_turns)
                    finally:
                        await bot.stop()
    if len(layouts) > 1:
        compare(runs)
    overhead = runs[layouts[0]][0]
    o = overhead["overhead_ms"]
    print(f"turn overhead over {overhead['turns']} turns ({args.conversations} conversations):")
    print(f"  p50 {o['p50']} ms   p90 {o['p90']} ms   p99 {o['p99']} ms   max {o['max']} ms")
    print(
        f"  baseline, one query embedding alone: p50 {overhead['baseline_query_embedding_ms_p50']} ms "
        f"(overhead/embedding = {overhead['overhead_vs_embedding_p50']}x)"
    )
    if not growth:
        print(json.dumps({"overhead": overhead, "runs": runs}))
        return
    print(f"prompt tokens ({growth['tokenizer']}):")
    for turn, tokens in growth["prompt_tokens"].items():
        print(f"  turn {turn:>5}: {tokens}")
    print(f"  growth first->last checkpoint: {growth['growth_first_to_last']:+.1%}")
    print(
        f"  full-history replay at turn {args.long_turns}: {growth['full_history_replay_tokens']} tokens "
        f"(honeychat's prompt is {growth['prompt_vs_full_replay']:.1%} of it)"
    )
    print(
        f"redis: {growth['redis_bytes_per_conversation']} bytes for the conversation after "
        f"{args.long_turns} turns; {growth['messages_buffered']} messages buffered (buffer size "
        f"{growth['buffer_size']})"
    )
    print(json.dumps({"overhead": overhead, "growth": growth, "runs": runs}))


def compare(runs: dict[str, list[dict[str, Any]]]) -> None:
    """Per layout: the median over rounds of each figure, and the ratio to the first layout."""
    names = list(runs)
    figures = {
        name: {
            q: statistics.median(r["overhead_ms"][q] for r in results)
            for q in ("p50", "p90", "p99", "max")
        }
        for name, results in runs.items()
    }
    for name in names:
        embedding = statistics.median(r["baseline_query_embedding_ms_p50"] for r in runs[name])
        f = figures[name]
        print(
            f"{name:<14} median over {len(runs[name])} rounds: p50 {f['p50']:.2f} ms, "
            f"p90 {f['p90']:.2f} ms, p99 {f['p99']:.2f} ms, max {f['max']:.2f} ms; "
            f"query embedding p50 {embedding:.2f} ms"
        )
    base = names[-1]
    for name in names[:-1]:
        print(
            f"{name} / {base}: "
            + ", ".join(f"{q} x{figures[name][q] / figures[base][q]:.3f}" for q in ("p50", "p99"))
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
