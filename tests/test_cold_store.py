"""Contract tests of the Chroma cold store and of the embedding functions.

Every contract test runs against an embedded ``PersistentClient`` in
``tmp_path`` and against a real ``chroma run`` server on 127.0.0.1, in both
layouts, with the real all-MiniLM-L6-v2 embeddings (loaded once).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import chromadb
import pytest
from chroma_server import ChromaServer, free_port

from honeychat.core.memory.cold import LAYOUTS, ChromaColdStore, Layout, open_cold_store
from honeychat.core.memory.embeddings import (
    EmbeddingError,
    LazyEmbeddingFunction,
    embed,
    make_embedding_function,
)
from honeychat.core.memory.stores import ColdStore, StoreUnavailable
from honeychat.core.settings import Settings
from honeychat.core.types import ConversationKey, Summary

T = TypeVar("T")
CALL_TIMEOUT = 60.0
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


async def within(awaitable: Awaitable[T], seconds: float = CALL_TIMEOUT) -> T:
    """Await with a bound, so a stuck store fails the test instead of hanging it."""
    return await asyncio.wait_for(awaitable, seconds)


def conversation(user: str = "alice", character: str = "luna", platform: str = "telegram") -> str:
    """A fresh conversation id (unique per call, so tests never share documents)."""
    return ConversationKey(platform, f"{user}-{uuid.uuid4().hex[:8]}", character).id


def summary(conversation_id: str, window: int, text: str, size: int = 20) -> Summary:
    first = (window - 1) * size + 1
    return Summary(
        conversation_id=conversation_id,
        text=text,
        first_seq=first,
        last_seq=first + size - 1,
        first_at=T0 + timedelta(minutes=first),
        last_at=T0 + timedelta(minutes=first + size - 1),
        model="test/summarizer",
    )


# Fixtures


@pytest.fixture(scope="session")
def minilm() -> LazyEmbeddingFunction:
    function = make_embedding_function(Settings(embedding_backend="minilm"))
    function.load()
    return function


class _RememberedVectors:
    """The real model's vectors, each text embedded once per test run.

    The store's contract tests run in four parametrizations (two backends, two
    layouts) on the same texts; what they test is the store, so the model's
    work is done once and its real vectors reused.
    """

    def __init__(self, model: LazyEmbeddingFunction) -> None:
        self.model = model
        self.vectors: dict[str, Any] = {}

    def __call__(self, input: list[str]) -> list[Any]:
        missing = [text for text in dict.fromkeys(input) if text not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, self.model(missing), strict=True))
        return [self.vectors[text] for text in input]


@pytest.fixture(scope="session")
def remembered_minilm(minilm: LazyEmbeddingFunction) -> LazyEmbeddingFunction:
    """all-MiniLM-L6-v2 for the store tests, each text embedded once (see _RememberedVectors)."""
    remembered = _RememberedVectors(minilm)
    return LazyEmbeddingFunction("minilm", lambda: remembered)  # type: ignore[arg-type,return-value]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    with ChromaServer(tmp_path_factory.mktemp("chroma-server") / "data") as server:
        yield server


@pytest.fixture(params=["embedded", "server"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=LAYOUTS)
def layout(request: pytest.FixtureRequest) -> Layout:
    return request.param


@pytest.fixture
async def store(
    backend: str,
    layout: Layout,
    tmp_path: Path,
    remembered_minilm: LazyEmbeddingFunction,
    request: pytest.FixtureRequest,
) -> AsyncIterator[ChromaColdStore]:
    if backend == "embedded":
        client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    else:
        server: ChromaServer = request.getfixturevalue("chroma_server")
        client = chromadb.HttpClient(host=server.host, port=server.port)
    cold = ChromaColdStore(client, remembered_minilm, layout=layout, location=backend)
    yield cold
    await cold.close()
    client.close()  # type: ignore[attr-defined]


# The contract


async def test_implements_the_protocol(store: ChromaColdStore) -> None:
    assert isinstance(store, ColdStore)


async def test_latest_is_the_highest_last_seq_whatever_the_insert_order(
    store: ChromaColdStore,
) -> None:
    conv = conversation()
    # The newest window is deliberately the least "typical" text.
    texts = {1: "We met and talked about books.", 2: "We talked about books again.", 3: "Zebra."}
    for window in (2, 3, 1):
        await within(store.add(summary(conv, window, texts[window])))

    latest = await within(store.latest(conv))

    assert latest == summary(conv, 3, "Zebra.")  # every field round-trips, score is None
    assert latest is not None and latest.last_at == T0 + timedelta(minutes=60)


async def test_all_lists_windows_oldest_first(store: ChromaColdStore) -> None:
    conv = conversation()
    for window in (3, 1, 2):
        await within(store.add(summary(conv, window, f"window {window}")))

    found = await within(store.all(conv))

    assert [s.first_seq for s in found] == [1, 21, 41]
    assert [s.text for s in found] == ["window 1", "window 2", "window 3"]


async def test_the_same_window_twice_keeps_one_document(store: ChromaColdStore) -> None:
    conv = conversation()
    await within(store.add(summary(conv, 1, "first draft")))
    await within(store.add(summary(conv, 1, "second draft")))

    found = await within(store.all(conv))

    assert [s.text for s in found] == ["second draft"]


async def test_search_finds_the_summary_that_means_the_same(store: ChromaColdStore) -> None:
    conv = conversation()
    texts = [
        "The user described a rainy weekend trip to Lisbon and the trams there.",
        "The user said their dog is called Biscuit, a golden retriever puppy.",
        "The user is learning guitar and struggles with barre chords.",
        "The user had a stressful job interview at a bank on Monday.",
    ]
    for window, text in enumerate(texts, start=1):
        await within(store.add(summary(conv, window, text)))

    found = await within(store.search(conv, "what is my pet's name", k=3))

    assert len(found) == 3
    assert "Biscuit" in found[0].text
    scores = [s.score for s in found]
    assert all(score is not None and -1.0 <= score <= 1.0 for score in scores)
    assert scores == sorted(scores, reverse=True)
    assert found[0].score is not None and found[1].score is not None
    assert found[0].score > found[1].score


async def test_search_scores_each_line_by_its_own_meaning(store: ChromaColdStore) -> None:
    conv = conversation()
    text = "\n".join(
        [
            "- The user adopted a golden retriever puppy named Biscuit.",
            "- The user works night shifts as a nurse at the city hospital.",
            "- The user is training for a marathon in October.",
        ]
    )
    await within(store.add(summary(conv, 1, text)))

    found = await within(store.search(conv, "what does the user do for a living", k=1))

    scores = found[0].line_scores
    assert scores is not None and len(scores) == 3
    assert max(range(3), key=lambda i: scores[i]) == 1
    assert all(-1.0 <= score <= 1.0 for score in scores)


async def test_a_one_line_document_scores_its_line_with_its_own_vector(
    store: ChromaColdStore,
) -> None:
    conv = conversation()
    await within(store.add(summary(conv, 1, "We planned a picnic by the lake.")))

    (found,) = await within(store.search(conv, "picnic", k=1))

    assert found.score is not None
    assert found.line_scores == (found.score,)


async def test_a_long_summary_keeps_a_vector_for_every_line(store: ChromaColdStore) -> None:
    conv = conversation()
    lines = [f"On day {i} the user visited museum number {i} and liked it." for i in range(120)]
    lines[77] = "The user's sister Marta lives in Valencia and teaches chemistry."
    await within(store.add(summary(conv, 1, "\n".join(lines))))

    (found,) = await within(store.search(conv, "where does my sister live", k=1))

    assert found.text == "\n".join(lines)
    assert found.line_scores is not None and len(found.line_scores) == 120
    assert max(range(120), key=lambda i: found.line_scores[i]) == 77


async def test_a_document_written_without_line_vectors_still_searches(
    store: ChromaColdStore, minilm: LazyEmbeddingFunction
) -> None:
    conv = conversation()
    old = summary(conv, 1, "The user likes jazz.\nThe user plays the saxophone.")
    # As an earlier version wrote it: the document's vector and metadata, no line vectors.
    name = store.collection_name(conv)
    (vector,) = await embed(minilm, [old.text])
    metadata = {"conversation": conv, "first_seq": 1, "last_seq": 20, "model": "old"}

    def write() -> None:
        collection = store._collection(name, create=True)
        assert collection is not None
        collection.upsert(
            ids=[old.doc_id], embeddings=[vector], documents=[old.text], metadatas=[metadata]
        )

    await within(asyncio.to_thread(write))
    await within(store.add(summary(conv, 2, "The user went hiking.\nThe user saw a bear.")))

    found = await within(store.search(conv, "music instrument", k=2))

    by_window = {s.first_seq: s for s in found}
    assert by_window[1].score is not None and by_window[1].line_scores is None
    assert by_window[21].line_scores is not None and len(by_window[21].line_scores) == 2
    assert (await within(store.latest(conv))) is not None


async def test_search_with_k_beyond_the_count_returns_every_document(
    store: ChromaColdStore,
) -> None:
    conv = conversation()
    await within(store.add(summary(conv, 1, "We planned a picnic.")))
    await within(store.add(summary(conv, 2, "We talked about the stars.")))

    found = await within(store.search(conv, "picnic", k=10))

    assert found[0].text == "We planned a picnic."
    assert len(found) == 2
    assert await within(store.search(conv, "picnic", k=0)) == []


async def test_conversations_do_not_see_each_other(store: ChromaColdStore) -> None:
    alice, bob = conversation("alice", "luna"), conversation("bob", "luna")
    await within(store.add(summary(alice, 1, "Alice said her dog is called Biscuit.")))
    await within(store.add(summary(alice, 2, "Alice loves hiking in the Alps.")))
    await within(store.add(summary(bob, 1, "Bob talked about his new bicycle.")))

    bob_found = await within(store.search(bob, "what is my pet's name", k=3))
    assert [s.conversation_id for s in bob_found] == [bob]
    assert [s.text for s in await within(store.all(bob))] == ["Bob talked about his new bicycle."]
    bob_latest = await within(store.latest(bob))
    assert bob_latest is not None and bob_latest.conversation_id == bob

    await within(store.delete(bob))
    assert await within(store.all(bob)) == []
    assert len(await within(store.all(alice))) == 2


async def test_an_empty_conversation_has_nothing(store: ChromaColdStore) -> None:
    never = conversation(character=f"nobody-{uuid.uuid4().hex[:6]}")
    assert await within(store.search(never, "anything", k=3)) == []
    assert await within(store.latest(never)) is None
    assert await within(store.all(never)) == []
    await within(store.delete(never))  # deleting nothing is fine

    # Same character as a conversation that has documents.
    await within(store.add(summary(conversation("carol", "luna"), 1, "Carol likes tea.")))
    empty = conversation("dave", "luna")
    assert await within(store.search(empty, "tea", k=3)) == []
    assert await within(store.latest(empty)) is None


async def test_delete_some_then_all(store: ChromaColdStore) -> None:
    conv, other = conversation(), conversation("erin")
    windows = [summary(conv, w, f"window {w} about gardening") for w in (1, 2, 3)]
    for s in windows:
        await within(store.add(s))
    await within(store.add(summary(other, 1, "Erin's window")))

    await within(store.delete(conv, [windows[2].doc_id]))
    assert [s.last_seq for s in await within(store.all(conv))] == [20, 40]
    latest = await within(store.latest(conv))
    assert latest is not None and latest.last_seq == 40

    await within(store.delete(conv, []))  # an empty list deletes nothing
    assert len(await within(store.all(conv))) == 2

    # Ids of another conversation are not deleted through this one.
    other_ids = [s.doc_id for s in await within(store.all(other))]
    await within(store.delete(conv, other_ids))
    assert len(await within(store.all(other))) == 1

    await within(store.delete(conv))
    assert await within(store.all(conv)) == []
    assert await within(store.latest(conv)) is None
    assert await within(store.search(conv, "gardening", k=3)) == []

    await within(store.add(windows[0]))  # usable again after a full delete
    assert [s.text for s in await within(store.all(conv))] == [windows[0].text]


@pytest.mark.parametrize(
    ("platform", "user", "character"),
    [
        ("slack", "T01:U/02", "luna"),
        ("discord", "😀 user 🌙", "Lüna/😀:✨"),
        ("telegram", "u" * 300, "c" * 300),
        ("x", ":::", "..."),
    ],
)
async def test_weird_ids_work(
    store: ChromaColdStore, platform: str, user: str, character: str
) -> None:
    conv = ConversationKey(platform, f"{user}{uuid.uuid4().hex[:4]}", character).id
    name = store.collection_name(conv)
    assert 3 <= len(name) <= 63
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]", name) and ".." not in name

    await within(store.add(summary(conv, 1, "We talked about the sea.")))
    await within(store.add(summary(conv, 2, "We talked about mountains.")))

    latest = await within(store.latest(conv))
    assert latest is not None and latest.last_seq == 40 and latest.conversation_id == conv
    found = await within(store.search(conv, "ocean", k=1))
    assert [s.text for s in found] == ["We talked about the sea."]
    await within(store.delete(conv))
    assert await within(store.all(conv)) == []


async def test_a_malformed_conversation_id_is_a_clear_error(store: ChromaColdStore) -> None:
    with pytest.raises(ValueError, match="not a conversation id"):
        await within(store.latest("no-colons-here"))


# Failures


async def test_an_unwritable_path_is_a_clear_store_unavailable(
    tmp_path: Path, minilm: LazyEmbeddingFunction
) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    cold = open_cold_store(Settings(data_dir=blocker, embedding_backend="minilm"))
    conv = conversation()

    with pytest.raises(StoreUnavailable) as caught:
        await within(cold.add(summary(conv, 1, "lost?")))
    assert caught.value.layer == "cold"
    assert "cannot write the embedded Chroma directory" in str(caught.value)
    assert str(blocker / "chroma") in str(caught.value)
    with pytest.raises(StoreUnavailable):
        await within(cold.latest(conv))
    await within(cold.close())


async def test_open_cold_store_embedded_round_trip(
    tmp_path: Path, minilm: LazyEmbeddingFunction
) -> None:
    settings = Settings(data_dir=tmp_path, embedding_backend="minilm", key_prefix="hc-test")
    conv = conversation()
    cold = open_cold_store(settings)
    await within(cold.check())
    await within(cold.add(summary(conv, 1, "Persisted across restarts.")))
    await within(cold.close())

    reopened = open_cold_store(settings)
    latest = await within(reopened.latest(conv))
    assert latest is not None and latest.text == "Persisted across restarts."
    assert (tmp_path / "chroma" / "chroma.sqlite3").is_file()
    await within(reopened.close())


async def test_a_stopped_server_raises_store_unavailable_and_recovers(
    tmp_path: Path, minilm: LazyEmbeddingFunction
) -> None:
    server = ChromaServer(tmp_path / "server")
    server.start()
    try:
        cold = open_cold_store(Settings(chroma_url=server.url, embedding_backend="minilm"))
        conv = conversation()
        await within(cold.add(summary(conv, 1, "Before the outage.")))

        server.stop()
        for call in (
            cold.latest(conv),
            cold.search(conv, "outage", 3),
            cold.all(conv),
            cold.add(summary(conv, 2, "During the outage.")),
            cold.delete(conv),
            cold.check(),
        ):
            with pytest.raises(StoreUnavailable) as caught:
                await within(call)
            assert caught.value.layer == "cold"
            assert server.url in str(caught.value)

        server.start()  # same path and port: the data is still there
        latest = await within(cold.latest(conv))
        assert latest is not None and latest.text == "Before the outage."
        await within(cold.close())
    finally:
        server.stop()


async def test_a_server_that_was_never_up_fails_per_call_not_at_open(
    minilm: LazyEmbeddingFunction,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    cold = open_cold_store(Settings(chroma_url=url, embedding_backend="minilm"))
    with pytest.raises(StoreUnavailable, match="unavailable"):
        await within(cold.check())
    with pytest.raises(StoreUnavailable):
        await within(cold.search(conversation(), "hello", 3))
    await within(cold.close())


# Embedding functions


class _EmbeddingsHandler(BaseHTTPRequestHandler):
    """The OpenAI ``POST /v1/embeddings`` wire format, answering rows out of order."""

    requests: list[dict[str, Any]] = []
    fail = False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        if type(self).fail:
            self._send(500, {"error": {"message": "overloaded"}})
            return
        rows = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), 1.0, float(i)]}
            for i, text in enumerate(body["input"])
        ]
        self._send(200, {"object": "list", "data": rows[::-1], "model": body["model"]})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def embeddings_server() -> Iterator[str]:
    _EmbeddingsHandler.requests = []
    _EmbeddingsHandler.fail = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


async def test_openai_backend_speaks_the_embeddings_api(embeddings_server: str) -> None:
    settings = Settings(
        embedding_backend="openai",
        embedding_base_url=embeddings_server,
        embedding_api_key="sk-test",
        embedding_model="text-embedding-3-small",
    )
    function = make_embedding_function(settings)
    assert make_embedding_function(settings) is function  # one per process
    assert not function.loaded  # lazy: nothing built before the first text

    vectors = await within(embed(function, ["a", "abc"]))

    assert vectors == [[1.0, 1.0, 0.0], [3.0, 1.0, 1.0]]  # reordered by "index"
    (request,) = _EmbeddingsHandler.requests
    assert request["path"] == "/v1/embeddings"
    assert request["auth"] == "Bearer sk-test"
    assert request["body"] == {"model": "text-embedding-3-small", "input": ["a", "abc"]}


async def test_an_embedding_endpoint_failure_is_store_unavailable(
    embeddings_server: str, tmp_path: Path
) -> None:
    settings = Settings(
        embedding_backend="openai", embedding_base_url=embeddings_server, embedding_model="m2"
    )
    function = make_embedding_function(settings)
    _EmbeddingsHandler.fail = True
    with pytest.raises(EmbeddingError, match="500"):
        await within(embed(function, ["hello"]))

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    cold = ChromaColdStore(client, function)
    with pytest.raises(StoreUnavailable, match="embedding endpoint"):
        await within(cold.add(summary(conversation(), 1, "kept by the caller")))
    assert await within(cold.all(conversation())) == []
    await within(cold.close())


def test_an_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown embedding_backend 'word2vec'"):
        make_embedding_function(Settings(embedding_backend="word2vec"))


async def test_minilm_vectors_have_384_dimensions(minilm: LazyEmbeddingFunction) -> None:
    vectors = await within(embed(minilm, ["hello", "world"]))
    assert [len(v) for v in vectors] == [384, 384]
    assert await within(embed(minilm, [])) == []


def test_minilm_loads_without_any_network_connection_or_pytorch(tmp_path: Path) -> None:
    """In a fresh interpreter, refuse every non-local socket connection and every import of
    PyTorch and the export's packages, and load the model: what the final image does.

    It loads the model the test run prepared (HONEYCHAT_CACHE_DIR); that preparing
    needs no network either is tested in test_embeddings_onnx.py.
    """
    script = textwrap.dedent(
        """
        import importlib.abc, json, socket, sys
        attempts = []
        real_connect = socket.socket.connect
        def guarded(self, address):
            if self.family in (socket.AF_INET, socket.AF_INET6):
                attempts.append(repr(address))
                raise OSError("network disabled by the test")
            return real_connect(self, address)
        socket.socket.connect = guarded

        class NoExportPackages(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"torch", "sentence_transformers", "transformers", "onnx"}:
                    attempts.append(name)
                    raise ImportError(f"{name} is not installed in the final image")
                return None
        sys.meta_path.insert(0, NoExportPackages())

        from honeychat.core.memory.embeddings import make_embedding_function
        from honeychat.core.settings import Settings
        fn = make_embedding_function(Settings(embedding_backend="minilm"))
        vectors = fn(["my dog is called Biscuit"])
        print(json.dumps({"dims": len(vectors[0]), "attempts": attempts}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "HONEYCHAT_CACHE_DIR": os.environ["HONEYCHAT_CACHE_DIR"],
        },
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"dims": 384, "attempts": []}
