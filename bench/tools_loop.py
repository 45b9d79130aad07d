"""What a round of tool calls adds to a reply, against the same reply without tools.

Run: ``python bench/tools_loop.py`` (options: ``--calls``, ``--warmup``).
The fake LLM (``honeychat.testing.fake_llm``) serves on 127.0.0.1 from its own
thread. In one loop, alternating which goes first, each iteration times:

- baseline: a streamed answer without tools (one request, the same text);
- one round: a streamed answer after one round of two parallel calls of no-op
  tools (two requests: the call deltas, with arguments split across chunks,
  then the answer), through ``LLMClient.stream`` and ``run_calls``;
- one round, whole: the same with ``LLMClient.complete`` (no streaming).

The difference between "one round" and the baseline is what a tool round
costs honeychat plus one loopback request to the fake server; the tools
themselves take no time. Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from honeychat.core.llm import LLMClient, ToolLoop
from honeychat.core.settings import Settings
from honeychat.core.tools import ToolCall, ToolContext, ToolResult, run_calls, tool
from honeychat.testing.fake_llm import FakeLLM, ToolCalls
from honeychat.testing.tools import tool_context

ANSWER = "It is sunny in Lyon and the time there is half past nine in the morning."
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"}]


@tool
async def forecast(ctx: ToolContext, city: str, days: int = 1) -> dict[str, Any]:
    """The forecast of a city."""
    return {"city": city, "days": days, "sky": "sunny"}


@tool
async def local_time(ctx: ToolContext) -> str:
    """The user's time."""
    return ctx.now().strftime("%H:%M")


def loop() -> ToolLoop:
    tools = {t.name: t for t in (forecast, local_time)}
    ctx = tool_context()

    async def run(calls: list[ToolCall]) -> list[ToolResult]:
        return await run_calls(tools, calls, ctx, 5.0)

    return ToolLoop([t.spec() for t in tools.values()], run)


CALLS = ToolCalls((("forecast", {"city": "Lyon", "days": 3}), ("local_time", {})))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(calls: int, warmup: int) -> dict[str, list[float]]:
    fake = FakeLLM.start_in_thread()
    times: dict[str, list[float]] = {"baseline": [], "one round": [], "one round, whole": []}
    settings = Settings(llm_base_url=fake.base_url, llm_api_key="k", llm_max_retries=0)
    try:
        async with LLMClient(settings) as llm:

            async def baseline() -> None:
                fake.script([ANSWER])
                assert "".join([d async for d in llm.stream(MESSAGES, model="m")]) == ANSWER

            async def round_streamed() -> None:
                fake.script([CALLS, ANSWER])
                stream = llm.stream(MESSAGES, model="m", tools=loop())
                assert "".join([d async for d in stream]) == ANSWER

            async def round_whole() -> None:
                fake.script([CALLS, ANSWER])
                assert (await llm.complete(MESSAGES, model="m", tools=loop())).text == ANSWER

            runs = [("baseline", baseline), ("one round", round_streamed)]
            runs.append(("one round, whole", round_whole))
            for i in range(warmup + calls):
                order = runs if i % 2 == 0 else list(reversed(runs))
                for name, run in order:
                    started = time.perf_counter()
                    await run()
                    if i >= warmup:
                        times[name].append(time.perf_counter() - started)
    finally:
        fake.stop()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    times = asyncio.run(measure(args.calls, args.warmup))
    base = statistics.median(times["baseline"])
    summary: dict[str, Any] = {
        "bench": "tools_loop",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "load": os.getloadavg()[0],
        "calls": args.calls,
    }
    print(f"{'run':<20} {'median ms':>10} {'p99 ms':>10} {'x baseline':>11}")
    for name, values in times.items():
        median, p99 = statistics.median(values), percentile(values, 0.99)
        print(f"{name:<20} {median * 1000:>10.2f} {p99 * 1000:>10.2f} {median / base:>11.2f}")
        summary[name] = {"median_ms": median * 1000, "p99_ms": p99 * 1000, "ratio": median / base}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
