"""Load: N ``honeychat run`` processes sharing one Redis and one Chroma server, C conversations.

Run: ``python bench/load.py`` (options: ``--processes`` 3, ``--conversations`` 300,
``--turns`` 20 per conversation, ``--rate`` 100 turns/s offered, ``--redis-url`` to use a
server of yours instead of a valkey-server started here, ``--profile FILE`` to run the
first process under cProfile).

What runs, all on 127.0.0.1: a ``valkey-server`` (or ``--redis-url``), one ``chroma run``
server, the fake LLM answering at once, and the fake Slack Web API. The N processes are
real ``honeychat run`` processes serving Slack's Events API over HTTP
(``SLACK_SIGNING_SECRET``), each on its own port, as replicas behind a load balancer: every
signed event is recorded in Redis before it is acknowledged and may be handled by any
replica; replies go to the fake Web API (``chat.postMessage``). (Slack rather than a
Telegram webhook because slack-bolt imports in about a second where aiogram's types take
ten on a busy machine, which matters for the test that runs this in miniature.) Summaries are on (a window of ``SUMMARY_WINDOW`` turns, summarized by the fake LLM
keeping the user's lines, embedded with line vectors and written to Chroma).

Each conversation sends one message at a time and the next only after the reply came
(closed loop), its consecutive messages to different processes in turn, paced so that
all conversations together offer at most ``--rate`` turns per second.

Printed: sustained turns/s (between 10% and 90% of the turns answered), the turn
overhead p50/p99 as the core measures it (``turn.timings["overhead"]``: everything but
the LLM, from ingest to the stored reply), the reply latency seen from outside (update
posted to reply received, the LLM answering at once), summary lag p99 (Prometheus
buckets from each process's ``/metrics``), CPU seconds per turn (the honeychat processes,
and everything on the machine), the embedding-only limit measured in the same run (one
process per core embedding one query at a time, as a turn does), the ratio to it, and the
checks: exactly once (every message answered once, stored once), ordering (each history
is the conversation's messages and replies in the order sent) and no leak (a unique
token per user never reaches another user's prompt or summary). Last, one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from honeychat.core.memory.hot import RedisHotStore
from honeychat.core.types import ConversationKey, Role
from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.fake_slack import FakeSlack, event_callback, sign_request
from honeychat.testing.responders import is_summary_request, keeping_user_lines

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))
from chroma_server import ChromaServer, free_port  # noqa: E402
from faults import Valkey  # noqa: E402

CHARACTER = "luna"
TEAM = "T1"
EVENTS_PATH = "/slack/events"
TOKEN = re.compile(r"tok[0-9a-f]{12}")
START_TIMEOUT = 120.0
REPLY_TIMEOUT = 120.0

TIMINGS_PLUGIN = '''\
"""Bench-only plugin: appends every turn's timings to a file of this process."""

import os

from honeychat import hookimpl

_out = open(os.path.join(os.environ["BENCH_TIMINGS_DIR"], f"{os.getpid()}.tsv"), "a", buffering=1)


@hookimpl
def honeychat_turn_complete(turn):
    t = turn.timings
    _out.write(f"{t.get('overhead', 0.0):.6f}\\t{t.get('total', 0.0):.6f}\\n")
'''

LINES = [
    "my sister booked tickets to Oslo for the spring",
    "the dog found the blue umbrella under the stairs",
    "our neighbour fixed the garden fence on Sunday",
    "I cooked a birthday cake and it collapsed a little",
    "my friend Tom forgot his violin lesson again",
    "the cat painted the kitchen floor with muddy paws",
]


# Measuring


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of process ``root`` and its live descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = defaultdict(list)
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        pid, ppid = int(entry), int(fields[1])
        children[ppid].append(pid)
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def histogram_quantile(buckets: dict[float, float], q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` of a cumulative histogram
    (``None`` when it is empty)."""
    count = buckets.get(float("inf"), 0.0)
    if count == 0:
        return None
    return next(bound for bound in sorted(buckets) if buckets[bound] >= q * count)


# The embedding-only limit


def _embed_worker(seconds: float, start_at: float, results: Any) -> None:
    from honeychat.core.memory.embeddings import make_embedding_function
    from honeychat.core.settings import Settings

    fn = make_embedding_function(Settings())
    fn(["warm up the model"])
    while time.time() < start_at:
        time.sleep(0.01)
    done, i = 0, 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        fn([f"{LINES[i % len(LINES)]} and on day {i} it rained"])
        done, i = done + 1, i + 1
    results.put(done / seconds)


def embedding_limit(seconds: float) -> dict[str, Any]:
    """Query embeddings per second with one process per core, one query at a time."""
    workers = os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + 20  # after every worker loaded the model
    processes = [
        context.Process(target=_embed_worker, args=(seconds, start_at, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    rates = [results.get(timeout=60 + seconds) for _ in processes]
    for process in processes:
        process.join(10)
    return {"processes": workers, "per_second": round(sum(rates), 1)}


# The system under load


@dataclass
class Conversation:
    index: int
    token: str
    sent: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    replies: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    @property
    def user(self) -> str:
        return f"U{self.index:05d}"

    @property
    def channel(self) -> str:
        return f"D{self.index:05d}"


class LoadSlack(FakeSlack):
    """The fake Web API, handing each reply to the conversation waiting for it."""

    def __init__(self) -> None:
        super().__init__(team_id=TEAM)
        self.conversations: dict[str, Conversation] = {}

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        result = super()._answer(method, args)
        conversation = self.conversations.get(str(args.get("channel", "")))
        if method == "chat.postMessage" and result.get("ok") and conversation is not None:
            conversation.received.append(str(args.get("text", "")))
            conversation.replies.put_nowait(str(args.get("text", "")))
        return result


def chat_reply(request: dict[str, Any]) -> str:
    """A reply naming the message it answers (``ack <token> #<n>``)."""
    last = str(request["messages"][-1].get("content", ""))
    match = re.match(r"(tok[0-9a-f]{12}) says #(\d+):", last)
    return f"ack {match.group(1)} #{match.group(2)}" if match else "ack"


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    port: int
    ops: str
    log: Path

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{EVENTS_PATH}"


class Load:
    """Servers, replicas and conversations of one run."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.prefix = f"load{secrets.token_hex(3)}"
        self.secret = secrets.token_urlsafe(24)
        self.replicas: list[Replica] = []
        self.sent_at: dict[tuple[int, int], float] = {}
        self.latencies: list[float] = []
        self.answered_at: list[float] = []
        self.failures: list[str] = []
        self.event_ids = iter(range(10_000_000, 100_000_000))
        self.window: dict[int, str] = {}
        self.marks: dict[str, tuple[float, dict[str, float]]] = {}
        self.pids: dict[str, list[int]] = {}

    def replica_env(self, index: int, slack: FakeSlack, llm: FakeLLM) -> dict[str, str]:
        dropped = {"OPENROUTER_API_KEY", "HONEYCHAT_CONFIG", "PLUGIN_CONFIG", "ADAPTERS"}
        env = {k: v for k, v in os.environ.items() if k not in dropped}
        env.update(
            DATA_DIR=str(self.workdir / f"replica{index}"),
            REDIS_URL=self.redis_url,
            CHROMA_URL=self.chroma.url,
            KEY_PREFIX=self.prefix,
            LLM_BASE_URL=llm.base_url,
            LLM_API_KEY="bench",
            LLM_STREAMING="false",
            DEFAULT_TIER="premium",
            LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            PLUGINS_DIR=str(self.workdir / "plugins"),
            BENCH_TIMINGS_DIR=str(self.workdir / "timings"),
            ADAPTERS="slack",
            SLACK_BOT_TOKEN="xoxb-load-bench",
            SLACK_SIGNING_SECRET=self.secret,
            SLACK_API_URL=slack.base_url.rstrip("/"),
            SLACK_HOST="127.0.0.1",
        )
        return env

    def start_replicas(self, slack: FakeSlack, llm: FakeLLM) -> None:
        (self.workdir / "plugins").mkdir()
        (self.workdir / "plugins" / "bench_timings.py").write_text(TIMINGS_PLUGIN)
        (self.workdir / "timings").mkdir()
        for index in range(self.args.processes):
            port, ops_port = free_port(), free_port()
            env = self.replica_env(index, slack, llm)
            env["SLACK_PORT"] = str(port)
            command = [sys.executable]
            if index == 0 and self.args.profile:
                command += ["-m", "cProfile", "-o", str(self.args.profile)]
            command += ["-m", "honeychat.core.cli", "run", "--ops-port", str(ops_port)]
            log = self.workdir / f"replica{index}.log"
            process = subprocess.Popen(
                command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
            )
            self.replicas.append(Replica(process, port, f"http://127.0.0.1:{ops_port}", log))

    async def wait_ready(self) -> None:
        """Wait until every replica's Events API endpoint accepts connections."""
        deadline = time.monotonic() + START_TIMEOUT
        waiting = list(self.replicas)
        while waiting:
            for replica in list(waiting):
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", replica.port)
                except OSError:
                    continue
                writer.close()
                waiting.remove(replica)
            for replica in waiting:
                if replica.process.poll() is not None:
                    raise RuntimeError(
                        f"a replica exited: {replica.log.read_text(errors='replace')[-2000:]}"
                    )
            if time.monotonic() > deadline:
                raise RuntimeError("the replicas did not start in time")
            await asyncio.sleep(0.1)

    def stop_replicas(self) -> None:
        for replica in self.replicas:
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            try:
                replica.process.wait(30)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()

    # Driving

    def cpu_now(self) -> dict[str, float]:
        """CPU seconds used so far by each group of processes."""
        return {name: sum(cpu_seconds(p) for p in group) for name, group in self.pids.items()}

    async def converse(
        self,
        conversation: Conversation,
        session: aiohttp.ClientSession,
        pace: Pacer,
    ) -> None:
        for k in range(self.args.turns):
            await pace.wait()
            text = f"{conversation.token} says #{k}: {LINES[(conversation.index + k) % len(LINES)]}"
            conversation.sent.append(text)
            event = {
                "type": "message",
                "channel": conversation.channel,
                "channel_type": "im",
                "user": conversation.user,
                "text": text,
                "ts": f"{time.time():.6f}",
                "team": TEAM,
            }
            body = json.dumps(
                event_callback(event, event_id=f"Ev{next(self.event_ids)}", team_id=TEAM)
            )
            headers = {"Content-Type": "application/json", **sign_request(self.secret, body)}
            replica = self.replicas[(conversation.index + k) % len(self.replicas)]
            started = time.perf_counter()
            async with session.post(replica.events_url, data=body, headers=headers) as response:
                if response.status != 200:
                    self.failures.append(f"the Events API endpoint answered {response.status}")
                    return
            try:
                reply = await asyncio.wait_for(conversation.replies.get(), REPLY_TIMEOUT)
            except TimeoutError:
                self.failures.append(f"no reply to {text!r} within {REPLY_TIMEOUT} s")
                return
            ended = time.perf_counter()
            self.latencies.append(ended - started)
            self.answered_at.append(ended)
            if (mark := self.window.get(len(self.answered_at))) is not None:
                self.marks[mark] = (ended, self.cpu_now())
            expected = f"ack {conversation.token} #{k}"
            if reply != expected:
                self.failures.append(f"{text!r} answered {reply!r}, expected {expected!r}")

    async def run(self) -> dict[str, Any]:
        args = self.args
        if args.redis_url:
            self.redis_url, valkey = args.redis_url, None
        else:
            valkey = Valkey(self.workdir / "valkey")
            valkey.start()
            self.redis_url = valkey.url
        self.chroma = ChromaServer(self.workdir / "chroma")
        try:
            async with FakeLLM() as llm, LoadSlack() as slack:
                llm.responder = keeping_user_lines(chat_reply)
                return await self._run_with(llm, slack, valkey)
        finally:
            self.stop_replicas()
            self.chroma.stop()
            if valkey is not None:
                valkey.stop()

    async def _run_with(
        self, llm: FakeLLM, slack: LoadSlack, valkey: Valkey | None
    ) -> dict[str, Any]:
        args = self.args
        self.start_replicas(slack, llm)
        # Chroma starts while the replicas import (they connect to it lazily).
        await asyncio.to_thread(self.chroma.start)
        await self.wait_ready()
        conversations = [
            Conversation(i, f"tok{secrets.token_hex(6)}") for i in range(args.conversations)
        ]
        slack.conversations = {c.channel: c for c in conversations}
        pids = {
            "honeychat": [r.process.pid for r in self.replicas],
            "chroma": [self.chroma._process.pid] if self.chroma._process else [],
            "redis": [valkey.pid] if valkey is not None else [],
            "harness": [os.getpid()],
        }
        total_turns = args.conversations * args.turns
        # CPU and time when 10% and 90% of the turns are answered: the sustained window.
        self.window = {int(0.1 * total_turns): "start", int(0.9 * total_turns): "end"}
        self.pids = pids
        pace = Pacer(args.rate)
        began = time.perf_counter()
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(self.converse(c, session, pace) for c in conversations))
        elapsed = time.perf_counter() - began
        marks = self.marks
        summaries = await self.wait_for_summaries(self.expected_windows(conversations))
        metrics = await self.scrape()
        checks = await self.check(conversations, llm)
        overhead = self.read_timings()

        result: dict[str, Any] = {
            "processes": args.processes,
            "conversations": args.conversations,
            "turns": len(self.answered_at),
            "offered_rate": args.rate,
            "elapsed_s": round(elapsed, 1),
            "failures": self.failures[:10],
        }
        if "start" in marks and "end" in marks:
            (t0, cpu0), (t1, cpu1) = marks["start"], marks["end"]
            turns = int(0.9 * total_turns) - int(0.1 * total_turns)
            cpu = {name: cpu1[name] - cpu0[name] for name in cpu0}
            result["sustained_turns_per_s"] = round(turns / (t1 - t0), 1)
            result["cpu_s_per_turn"] = {name: round(v / turns, 4) for name, v in cpu.items()}
            result["cpu_s_per_turn"]["all"] = round(sum(cpu.values()) / turns, 4)
            result["cpu_utilisation_cores"] = round(sum(cpu.values()) / (t1 - t0), 2)
        result["turn_overhead_ms"] = {
            "count": len(overhead),
            "p50": round(statistics.median(overhead) * 1000, 1) if overhead else None,
            "p99": round(percentile(overhead, 99) * 1000, 1) if overhead else None,
        }
        result["reply_latency_ms"] = {
            "p50": round(statistics.median(self.latencies) * 1000, 1) if self.latencies else None,
            "p99": round(percentile(self.latencies, 99) * 1000, 1) if self.latencies else None,
        }
        result["summaries"] = summaries
        result["summary_lag_p99_s_at_most"] = histogram_quantile(metrics["lag"], 0.99)
        result["checks"] = checks
        return result

    def summary_window(self) -> int:
        return int(os.environ.get("SUMMARY_WINDOW", "10"))

    def expected_windows(self, conversations: list[Conversation]) -> int:
        return sum(len(c.sent) // self.summary_window() for c in conversations)

    async def wait_for_summaries(self, expected: int) -> dict[str, Any]:
        """Wait (bounded) until the replicas wrote every complete window's document."""
        deadline = time.monotonic() + self.args.summary_timeout
        written = 0
        while time.monotonic() < deadline:
            written = int((await self.scrape())["written"])
            if written >= expected:
                break
            await asyncio.sleep(0.5)
        return {"expected": expected, "written": written}

    async def scrape(self) -> dict[str, Any]:
        lag: dict[float, float] = defaultdict(float)
        written = 0.0
        async with aiohttp.ClientSession() as session:
            for replica in self.replicas:
                async with session.get(f"{replica.ops}/metrics") as response:
                    text = await response.text()
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        if sample.name == "honeychat_summary_lag_seconds_bucket":
                            lag[float(sample.labels["le"])] += sample.value
                        elif sample.name in (
                            "honeychat_summaries_written_total",
                            "honeychat_windows_kept_verbatim_total",
                        ):
                            written += sample.value
        return {"lag": dict(lag), "written": written}

    def read_timings(self) -> list[float]:
        """Every turn's overhead (seconds), from the bench plugin's files."""
        return [
            float(line.split("\t")[0])
            for path in (self.workdir / "timings").glob("*.tsv")
            for line in path.read_text().splitlines()
        ]

    async def check(self, conversations: list[Conversation], llm: FakeLLM) -> dict[str, Any]:
        """Exactly once, ordering and no leak, from the fakes and the shared Redis."""
        client = aioredis.from_url(self.redis_url, decode_responses=True)
        hot = RedisHotStore(client, prefix=self.prefix, buffer_size=1000, ttl_seconds=3600)
        replies_once = stored_once = in_order = 0
        problems: list[str] = []
        try:
            for c in conversations:
                texts = c.received
                expected_replies = [f"ack {c.token} #{k}" for k in range(len(c.sent))]
                if texts == expected_replies:
                    replies_once += 1
                else:
                    problems.append(
                        f"user {c.index}: replies {texts[-3:]} (expected {len(c.sent)})"
                    )
                key = ConversationKey("slack", f"{TEAM}:{c.user}", CHARACTER)
                buffered = await hot.recent(key, 1000)
                # Every message and reply stored exactly once: the last sequence number counts them.
                if buffered and buffered[-1].seq == 2 * len(c.sent):
                    stored_once += 1
                else:
                    last = buffered[-1].seq if buffered else 0
                    problems.append(
                        f"user {c.index}: {last} messages stored, expected {2 * len(c.sent)}"
                    )
                # In order: the stored messages are the sent ones and their replies, each
                # once, in the order sent (a message the store missed is counted above).
                history = [
                    (Role.USER, c.sent[k // 2])
                    if k % 2 == 0
                    else (Role.ASSISTANT, expected_replies[k // 2])
                    for k in range(2 * len(c.sent))
                ]
                position = {item: n for n, item in enumerate(history)}
                places = [position.get((m.role, m.text), -1) for m in buffered]
                if places and -1 not in places and places == sorted(set(places)):
                    in_order += 1
                else:
                    problems.append(f"user {c.index}: history out of order")
        finally:
            await client.aclose()
        owner = {c.token: c.index for c in conversations}
        prompts = summaries = foreign = 0
        for request in llm.chat_requests:
            found = set(TOKEN.findall(json.dumps(request.json.get("messages", []))))
            if is_summary_request(request.json):
                summaries += 1
            else:
                prompts += 1
            if len({owner.get(t, -1) for t in found}) > 1:
                foreign += 1
                problems.append(f"a prompt holds tokens of several users: {sorted(found)[:4]}")
        return {
            "conversations": len(conversations),
            "answered_exactly_once": replies_once,
            "stored_exactly_once": stored_once,
            "history_in_order": in_order,
            "prompts_checked": prompts,
            "summary_requests_checked": summaries,
            "prompts_with_another_users_token": foreign,
            "ok": not problems and not self.failures,
            "problems": problems[:10],
        }


class Pacer:
    """Hands out send slots at most ``rate`` per second, shared by every conversation."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.perf_counter()

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.perf_counter()
        slot = max(now, self.next)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


# Output


def report(result: dict[str, Any], limit: dict[str, Any] | None) -> None:
    checks = result["checks"]
    print(
        f"{result['processes']} honeychat processes, {result['conversations']} conversations, "
        f"{result['turns']} turns in {result['elapsed_s']} s (offered {result['offered_rate']}/s)"
    )
    if "sustained_turns_per_s" in result:
        cpu = result["cpu_s_per_turn"]
        print(f"  sustained: {result['sustained_turns_per_s']} turns/s")
        print(
            f"  CPU per turn: honeychat {cpu['honeychat'] * 1000:.1f} ms, chroma "
            f"{cpu['chroma'] * 1000:.1f} ms, redis {cpu['redis'] * 1000:.1f} ms, harness "
            f"{cpu['harness'] * 1000:.1f} ms, all {cpu['all'] * 1000:.1f} ms "
            f"({result['cpu_utilisation_cores']} cores busy)"
        )
    o, r = result["turn_overhead_ms"], result["reply_latency_ms"]
    print(f"  turn overhead: p50 {o['p50']} ms, p99 {o['p99']} ms ({o['count']} turns)")
    print(f"  reply latency (event posted to reply received): p50 {r['p50']} ms, p99 {r['p99']} ms")
    s = result["summaries"]
    print(
        f"  summaries: {s['written']} of {s['expected']} windows written; "
        f"lag p99 <= {result['summary_lag_p99_s_at_most']} s"
    )
    if limit is not None:
        print(
            f"  embedding-only limit, same run: {limit['per_second']} queries/s "
            f"({limit['processes']} processes); sustained / limit = {result.get('ratio_to_limit')}"
        )
    print(
        f"  checks: answered once {checks['answered_exactly_once']}/{checks['conversations']}, "
        f"stored once {checks['stored_exactly_once']}/{checks['conversations']}, in order "
        f"{checks['history_in_order']}/{checks['conversations']}, prompts with another user's "
        f"token {checks['prompts_with_another_users_token']} of {checks['prompts_checked']} "
        f"(+{checks['summary_requests_checked']} summary requests): "
        f"{'OK' if checks['ok'] else 'FAILED'}"
    )
    for problem in checks["problems"] + result["failures"]:
        print(f"    {problem}")


async def amain(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--turns", type=int, default=20, help="messages per conversation")
    parser.add_argument("--rate", type=float, default=100.0, help="offered turns/s (0: no limit)")
    parser.add_argument("--redis-url", default=None, help="a Redis of yours (default: start one)")
    parser.add_argument("--summary-timeout", type=float, default=120.0)
    parser.add_argument("--limit-seconds", type=float, default=10.0)
    parser.add_argument("--no-limit", action="store_true", help="skip the embedding-only limit")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output of replica 0")
    parser.add_argument("--json-only", action="store_true")
    parser.add_argument(
        "--keep", type=Path, default=None, help="work in this directory and keep it (logs)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="honeychat-load-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        load = Load(args, workdir)
        try:
            result = await load.run()
        finally:
            if args.redis_url:
                await delete_prefix(args.redis_url, load.prefix)
    limit = None if args.no_limit else embedding_limit(args.limit_seconds)
    if limit is not None:
        result["embedding_limit_per_s"] = limit["per_second"]
        if "sustained_turns_per_s" in result:
            result["ratio_to_limit"] = round(
                result["sustained_turns_per_s"] / limit["per_second"], 3
            )
    if not args.json_only:
        report(result, limit)
    print(json.dumps(result))
    return result


async def delete_prefix(url: str, prefix: str) -> None:
    client = aioredis.from_url(url)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


if __name__ == "__main__":
    outcome = asyncio.run(amain(sys.argv[1:]))
    sys.exit(0 if outcome["checks"]["ok"] else 1)
