"""Benchmark the two cold-store layouts on an embedded Chroma.

``per_character``: one collection per character, every conversation's
summaries in it, reads filtered by ``where={"conversation": id}``.
``per_conversation``: one collection per conversation, reads unfiltered.

Vectors are precomputed random unit vectors of dimension 384 (the size of
all-MiniLM-L6-v2), so embedding cost is *not* part of what is compared: the
store computes one query embedding per read in either layout.

Each layout runs in its own child process on its own temporary directory so
that memory and caches of one cannot help or hurt the other. Measured per
layout: insert time (batched adds), disk size, peak RSS, and per-read latency
of (a) a top-3 similarity query for a random conversation and (b) a ``get``
of that conversation's metadata to pick the latest summary (max ``last_seq``).
Collection handles are looked up once per read with ``get_collection``, as a
store with an empty handle cache would do; that lookup is timed separately.

Usage::

    python bench/chroma_layout.py                       # full scale: 10,000 x 30
    python bench/chroma_layout.py --conversations 200 --summaries 10 --queries 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.collection_configuration import CreateCollectionConfiguration

LAYOUTS = ("per_character", "per_conversation")
DIM = 384
COSINE: CreateCollectionConfiguration = {"hnsw": {"space": "cosine"}}


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def _conversation_id(index: int, characters: int) -> str:
    return f"telegram:{100000 + index}:char{index % characters}"


def _metadata(conversation: int, summary: int, characters: int) -> dict[str, Any]:
    first = summary * 20 + 1
    return {
        "conversation": _conversation_id(conversation, characters),
        "platform": "telegram",
        "user_id": str(100000 + conversation),
        "character": f"char{conversation % characters}",
        "first_seq": first,
        "last_seq": first + 19,
        "first_at": 1_700_000_000.0 + first * 60,
        "last_at": 1_700_000_000.0 + (first + 19) * 60,
        "model": "bench",
    }


def _document(conversation: int, summary: int) -> str:
    # About the size of a real summary (~400 characters).
    return f"Summary {summary} of conversation {conversation}. " + "lorem ipsum dolor " * 22


def _memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def _nofile() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _chromadb_version() -> str:
    import chromadb

    return str(chromadb.__version__)


def _disk_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _latency(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {"median_ms": statistics.median(ms), "p99_ms": _percentile(ms, 0.99)}


def run_layout(layout: str, args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """Fill one layout and time its reads. Runs inside a child process."""
    import chromadb

    client = chromadb.PersistentClient(path=str(path))
    batch_size = min(args.batch, client.get_max_batch_size())
    rng = np.random.default_rng(args.seed)
    n_conv, n_sum, n_char = args.conversations, args.summaries, args.characters

    def name_for(conversation: int) -> str:
        if layout == "per_character":
            return f"hc-c-char{conversation % n_char}"
        return f"hc-v-{conversation:08d}"

    started = time.perf_counter()
    progress_every = max(1, n_conv // 10)
    if layout == "per_character":
        # Summaries arrive interleaved across conversations: window j of every
        # conversation, then window j + 1, ... Batched per character collection.
        collections = {
            c: client.get_or_create_collection(
                name_for(c), configuration=COSINE, embedding_function=None
            )
            for c in range(n_char)
        }
        pending: dict[int, list[tuple[str, str, dict[str, Any]]]] = {c: [] for c in range(n_char)}

        def flush(character: int) -> None:
            rows = pending[character]
            if rows:
                collections[character].add(
                    ids=[r[0] for r in rows],
                    documents=[r[1] for r in rows],
                    metadatas=[r[2] for r in rows],
                    embeddings=_unit_vectors(rng, len(rows)),
                )
                pending[character] = []

        for s in range(n_sum):
            for c in range(n_conv):
                character = c % n_char
                pending[character].append(
                    (f"{c}:{s:09d}", _document(c, s), _metadata(c, s, n_char))
                )
                if len(pending[character]) >= batch_size:
                    flush(character)
            if s % max(1, n_sum // 5) == 0:
                print(f"  [{layout}] window {s + 1}/{n_sum}", file=sys.stderr, flush=True)
        for character in range(n_char):
            flush(character)
    else:
        # Each conversation's collection is created on its first summary; all of
        # its windows go in one batched add (the cheapest possible order for it).
        for c in range(n_conv):
            collection = client.get_or_create_collection(
                name_for(c), configuration=COSINE, embedding_function=None
            )
            collection.add(
                ids=[f"{c}:{s:09d}" for s in range(n_sum)],
                documents=[_document(c, s) for s in range(n_sum)],
                metadatas=[_metadata(c, s, n_char) for s in range(n_sum)],
                embeddings=_unit_vectors(rng, n_sum),
            )
            if c % progress_every == 0:
                print(f"  [{layout}] conversation {c + 1}/{n_conv}", file=sys.stderr, flush=True)
    insert_seconds = time.perf_counter() - started

    lookup: list[float] = []
    query: list[float] = []
    latest: list[float] = []
    targets = rng.integers(0, n_conv, size=args.queries)
    query_vectors = _unit_vectors(rng, args.queries)
    for i, c in enumerate(targets.tolist()):
        conversation = _conversation_id(c, n_char)
        where: dict[str, Any] | None = (
            {"conversation": conversation} if layout == "per_character" else None
        )

        t0 = time.perf_counter()
        collection = client.get_collection(name_for(c), embedding_function=None)
        t1 = time.perf_counter()
        result = collection.query(
            query_embeddings=query_vectors[i : i + 1],
            n_results=3,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        t2 = time.perf_counter()
        got = collection.get(where=where, include=["metadatas"])
        metadatas = got["metadatas"] or []
        best = max(range(len(metadatas)), key=lambda k: int(metadatas[k]["last_seq"]))  # type: ignore[arg-type]
        collection.get(ids=[got["ids"][best]], include=["documents", "metadatas"])
        t3 = time.perf_counter()

        ids = result["ids"][0]
        if len(ids) != min(3, n_sum) or not all(x.startswith(f"{c}:") for x in ids):
            raise AssertionError(f"{layout}: wrong query result for conversation {c}: {ids}")
        if len(metadatas) != n_sum:
            raise AssertionError(f"{layout}: get saw {len(metadatas)} documents, not {n_sum}")
        lookup.append(t1 - t0)
        query.append(t2 - t1)
        latest.append(t3 - t2)

    peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "layout": layout,
        "documents": n_conv * n_sum,
        "collections": len(client.list_collections(limit=n_conv + n_char + 10)),
        "insert_seconds": insert_seconds,
        "disk_bytes": _disk_size(path),
        "peak_rss_mib": peak_rss_kib / 1024,
        "get_collection": _latency(lookup),
        "query_top3": _latency(query),
        "latest_by_metadata": _latency(latest),
    }


def _child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix=f"chroma-bench-{args.only}-") as tmp:
        result = run_layout(args.only, args, Path(tmp))
    print(json.dumps(result))


def _run_child(layout: str, argv: list[str]) -> dict[str, Any]:
    command = [sys.executable, __file__, *argv, "--only", layout]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _report(results: dict[str, dict[str, Any]], args: argparse.Namespace, argv: list[str]) -> str:
    a, b = results["per_character"], results["per_conversation"]
    lines = [
        f"command: python bench/chroma_layout.py {' '.join(argv)}".rstrip(),
        f"machine: {platform.platform()}, {os.cpu_count()} cpus, "
        f"{_memory_gib():.0f} GiB RAM, python {platform.python_version()}",
        f"chromadb {_chromadb_version()}; open-file limit {_nofile()} "
        f"(embedded Chroma keeps up to limit // 5 = {_nofile() // 5} HNSW indexes cached)",
        f"scale: {args.conversations} conversations x {args.summaries} summaries "
        f"= {args.conversations * args.summaries} docs, {args.characters} characters, "
        f"{args.queries} reads per layout",
        "",
        f"{'':28}{'per_character':>18}{'per_conversation':>20}{'ratio conv/char':>18}",
    ]

    def row(label: str, x: float, y: float, fmt: Callable[[float], str]) -> None:
        ratio = y / x if x else float("nan")
        lines.append(f"{label:28}{fmt(x):>18}{fmt(y):>20}{ratio:>17.2f}x")

    ms: Callable[[float], str] = lambda v: f"{v:.2f} ms"  # noqa: E731
    for key, label in (
        ("query_top3", "query top-3"),
        ("latest_by_metadata", "latest by metadata"),
        ("get_collection", "get_collection"),
    ):
        row(f"{label} median", a[key]["median_ms"], b[key]["median_ms"], ms)
        row(f"{label} p99", a[key]["p99_ms"], b[key]["p99_ms"], ms)
    row("insert time", a["insert_seconds"], b["insert_seconds"], lambda v: f"{v:.1f} s")
    row("disk size", a["disk_bytes"] / 2**20, b["disk_bytes"] / 2**20, lambda v: f"{v:.0f} MiB")
    row("peak RSS", a["peak_rss_mib"], b["peak_rss_mib"], lambda v: f"{v:.0f} MiB")
    row("collections", a["collections"], b["collections"], lambda v: f"{v:.0f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--summaries", type=int, default=30, help="summaries per conversation")
    parser.add_argument(
        "--characters", type=int, default=5, help="characters (per_character collections)"
    )
    parser.add_argument("--queries", type=int, default=1000, help="timed reads per layout")
    parser.add_argument("--batch", type=int, default=5000, help="max documents per add")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--only", choices=LAYOUTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.conversations, args.summaries, args.characters, args.queries, args.batch) < 1:
        parser.error("every count must be at least 1")
    if args.only:
        _child(args)
        return

    argv = [
        f"--{name}={getattr(args, name)}"
        for name in ("conversations", "summaries", "characters", "queries", "batch", "seed")
    ]
    results = {}
    for layout in LAYOUTS:
        print(f"running {layout}...", file=sys.stderr, flush=True)
        results[layout] = _run_child(layout, argv)
        if args.json:  # written after each layout, so a long run keeps what it measured
            args.json.write_text(json.dumps(results, indent=2))
    print(_report(results, args, argv))


if __name__ == "__main__":
    main()
