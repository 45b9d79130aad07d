"""What per-line vectors cost a turn: the Chroma read, the decoding and the selection.

Writes ``--summaries`` summaries of ``--lines`` lines each (LoCoMo-like facts)
through :class:`ChromaColdStore` twice, once as shipped (a vector per line in
the document's metadata) and once without the line vectors (as documents
written before them), on an embedded Chroma and on a ``chroma run`` server
on 127.0.0.1. Then, for ``--queries`` queries, it times with a fixed query
vector (the embedding is the same either way and is left out):

* the Chroma ``query`` of ``--candidates`` documents with their metadata;
* decoding the line vectors and scoring every line (``line_scores``);
* :func:`select` of the lines into a 512-token budget.

Usage::

    python bench/line_vectors.py [--summaries 72] [--lines 10] [--candidates 32]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import chromadb
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from chroma_server import ChromaServer  # noqa: E402

from honeychat.core.memory import line_vectors  # noqa: E402
from honeychat.core.memory.cold import ChromaColdStore  # noqa: E402
from honeychat.core.memory.embeddings import make_embedding_function  # noqa: E402
from honeychat.core.memory.retrieval import RetrievalOptions, select, split_lines  # noqa: E402
from honeychat.core.memory.tokens import count_tokens  # noqa: E402
from honeychat.core.settings import Settings  # noqa: E402
from honeychat.core.types import ConversationKey, Summary  # noqa: E402

PEOPLE = ["Caroline", "Melanie", "Jon", "Gina", "Maria", "John"]
THINGS = ["a pottery class", "a charity run", "a new puppy", "a trip to Paris", "a dance studio"]
VERBS = ["signed up for", "talked about", "is excited about", "shared a photo of", "plans"]


def fact(i: int) -> str:
    person, verb, thing = PEOPLE[i % 6], VERBS[(i // 6) % 5], THINGS[(i // 30) % 5]
    return f"{person} {verb} {thing} with friends on day {i}, and felt proud of it."


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms"


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def scored(key: ConversationKey, query: np.ndarray, rows: list[Any]) -> list[Summary]:
    """Search results as the cold store builds them: line vectors decoded and scored."""
    found = []
    for document, metadata, distance in rows:
        scores = line_vectors.line_scores(query, metadata, len(split_lines(document)))
        found.append(Summary(key.id, document, 1, 20, score=1.0 - distance, line_scores=scores))
    return found


async def measure(client: chromadb.api.ClientAPI, label: str, args: argparse.Namespace) -> None:
    embedding = make_embedding_function(Settings(_env_file=None))
    key = ConversationKey("bench", "user", "luna")
    rng = np.random.default_rng(1)
    stores = {}
    for name, with_lines in (("line vectors", True), ("no line vectors", False)):
        store = ChromaColdStore(client, embedding, prefix="lv" if with_lines else "old")
        for w in range(args.summaries):
            text = "\n".join(fact(w * args.lines + i) for i in range(args.lines))
            first = w * 20 + 1
            await store.add(Summary(key.id, text, first, first + 19))
        collection = store._collection(store.collection_name(key.id), create=False)
        assert collection is not None
        if not with_lines:  # as written before line vectors: strip the field
            ids = collection.get(include=[])["ids"]
            collection.update(ids=ids, metadatas=[{line_vectors.FIELD: None}] * len(ids))
        stores[name] = collection
    queries = [line_vectors.unit(rng.normal(size=384)) for _ in range(args.queries)]
    options = RetrievalOptions()
    print(f"{label}: {args.summaries} summaries x {args.lines} lines, {args.candidates} candidates")
    for name, collection in stores.items():
        reads = []
        for q in queries:
            started = time.perf_counter()
            result = collection.query(
                query_embeddings=np.asarray([q]),
                n_results=args.candidates,
                where={"conversation": key.id},
                include=["documents", "metadatas", "distances"],
            )
            reads.append(time.perf_counter() - started)
        documents = (result["documents"] or [[]])[0]
        metadatas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        query = queries[-1]
        rows = list(zip(documents, metadatas, distances, strict=True))
        candidates = scored(key, query, rows)
        decode = timed(partial(scored, key, query, rows), args.queries)
        choose = timed(
            partial(
                select, candidates, "what did Caroline sign up for", 512, count_tokens, options
            ),
            args.queries,
        )
        size = sum(len(str(m.get(line_vectors.FIELD, ""))) for m in metadatas) / len(metadatas)
        print(f"  {name:<16} Chroma query {ms(reads)}")
        print(f"  {'':<16} decode+score {ms(decode)}   select {ms(choose)}")
        print(f"  {'':<16} line-vector field: {size:,.0f} characters per document")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="hc-lv-") as tmp:
        client = chromadb.PersistentClient(path=str(Path(tmp) / "embedded"))
        await measure(client, "embedded Chroma", args)
        with ChromaServer(Path(tmp) / "server") as server:
            http = chromadb.HttpClient(host=server.host, port=server.port)
            await measure(http, f"Chroma server ({server.url})", args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--summaries", type=int, default=72)
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--queries", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
