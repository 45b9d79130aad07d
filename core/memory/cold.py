"""The cold memory layer on Chroma: one summary document per window.

:class:`ChromaColdStore` implements :class:`~honeychat.core.memory.stores.ColdStore`
on an embedded ``PersistentClient`` or a Chroma server (``HttpClient``).
We embed texts ourselves (documents on ``add``, the query on ``search``) and
hand Chroma the vectors, so collections carry no embedding function.

Two layouts are supported (see ``docs/chroma-layout.md`` for the benchmark
that chose the default):

``per_character``
    one collection per character; reads filter on the ``conversation``
    metadata field.
``per_conversation``
    one collection per conversation; reads need no filter.

Every Chroma call runs in a worker thread, and any failure of Chroma, of
the server connection or of the embedding function is raised as
:class:`~honeychat.core.memory.stores.StoreUnavailable` for the ``"cold"`` layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.collection_configuration import CreateCollectionConfiguration
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction
from chromadb.errors import NotFoundError

from honeychat.core.deadlines import GateClosed, GateTimeout, LayerGate
from honeychat.core.memory import line_vectors
from honeychat.core.memory.embeddings import EmbeddingError, embed, make_embedding_function
from honeychat.core.memory.retrieval import split_lines
from honeychat.core.memory.stores import StoreUnavailable
from honeychat.core.redact import redact
from honeychat.core.settings import Settings
from honeychat.core.types import MEMORY_FORMAT, ConversationKey, Summary

Layout = Literal["per_character", "per_conversation"]
LAYOUTS: tuple[Layout, ...] = ("per_character", "per_conversation")
DEFAULT_LAYOUT: Layout = "per_character"
"""Chosen by ``bench/chroma_layout.py``; the figures are in ``docs/chroma-layout.md``."""

COSINE_CONFIGURATION: CreateCollectionConfiguration = {"hnsw": {"space": "cosine"}}

_T = TypeVar("_T")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_NAME_PART_MAX = 20


def _name_part(text: str) -> str:
    """A readable fragment of ``text`` that is legal inside a collection name."""
    return _NAME_UNSAFE.sub("-", text).strip("-_")[:_NAME_PART_MAX].strip("-_")


def collection_name(layout: Layout, prefix: str, key: ConversationKey) -> str:
    """The Chroma collection that holds ``key``'s summaries in ``layout``.

    Names are ``{prefix}-c-{character}-{hash}`` (per character) or
    ``{prefix}-v-{character}-{hash}`` (per conversation): a sanitized,
    shortened readable part for humans plus a hash of the full id for
    uniqueness. They satisfy Chroma's strictest rules (3-63 characters of
    ``[A-Za-z0-9._-]``, alphanumeric at both ends, no ``..``) for any id.
    """
    head = _name_part(prefix) or "hc"
    if not head[0].isalnum():
        head = "hc" + head
    if layout == "per_character":
        digest = hashlib.sha256(key.character_id.encode()).hexdigest()[:16]
        parts = [head, "c", _name_part(key.character_id), digest]
    else:
        parts = [head, "v", _name_part(key.character_id), key.digest]
    return "-".join(part for part in parts if part)


def _parse_key(conversation_id: str) -> ConversationKey:
    try:
        return ConversationKey.parse(conversation_id)
    except ValueError as exc:
        raise ValueError(f"cold store: {exc}") from exc


def _metadata(key: ConversationKey, summary: Summary) -> dict[str, str | int | float | bool]:
    metadata: dict[str, str | int | float | bool] = {
        "conversation": summary.conversation_id,
        "platform": key.platform,
        "user_id": key.user_id,
        "character": key.character_id,
        "first_seq": summary.first_seq,
        "last_seq": summary.last_seq,
        "model": summary.model,
        "generation": summary.generation,
        "kind": summary.kind,
        FORMAT_FIELD: MEMORY_FORMAT,
        "conversation_kind": summary.conversation_kind,
    }
    if summary.summary_lines is not None:
        metadata[SUMMARY_LINES_FIELD] = summary.summary_lines
    if summary.line_sources is not None:
        metadata[LINE_SOURCES_FIELD] = json.dumps(
            [list(sources) for sources in summary.line_sources], separators=(",", ":")
        )
    # Chroma metadata cannot hold None: absent times are simply left out.
    if summary.first_at is not None:
        metadata["first_at"] = summary.first_at.isoformat()
    if summary.last_at is not None:
        metadata["last_at"] = summary.last_at.isoformat()
    return metadata


_DOC_ID_WINDOW = re.compile(r"(?::g(\d+))?:(\d{9,})-(\d{9,})$")


def _window_end(doc_id: str) -> tuple[int, int] | None:
    """``(generation, last_seq)`` encoded in a document id, or ``None`` if it has another form."""
    match = _DOC_ID_WINDOW.search(doc_id)
    return (int(match.group(1) or 0), int(match.group(3))) if match else None


def _time(value: Any) -> datetime | None:
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


LINE_SOURCES_FIELD = "line_sources"
"""Metadata field with each line's source sequence numbers, as compact JSON (``[[3,5],[4]]``)."""
FORMAT_FIELD = "v"
"""Metadata field with the document's format version (absent: format 1)."""
SUMMARY_LINES_FIELD = "summary_lines"
"""Metadata field: how many leading lines are the summary's (the rest: the window's messages)."""


def _summary_lines(value: Any, lines: int) -> int | None:
    """The stored count of summary lines, or ``None`` when absent or impossible."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= lines:
        return None
    return value


def _line_sources(
    value: Any, text: str, first_seq: int, last_seq: int
) -> tuple[tuple[int, ...], ...] | None:
    """The stored line provenance, or ``None`` when absent or not matching the document."""
    if not isinstance(value, str):
        return None
    try:
        decoded = json.loads(value)
        sources = tuple(tuple(int(n) for n in line) for line in decoded)
    except (ValueError, TypeError):
        return None
    if len(sources) != len(split_lines(text)):
        return None
    if any(not first_seq <= n <= last_seq for line in sources for n in line):
        return None
    return sources


def _summary(document: str | None, metadata: Any, score: float | None = None) -> Summary:
    meta = dict(metadata or {})
    first_seq, last_seq = int(meta.get("first_seq", 0)), int(meta.get("last_seq", 0))
    return Summary(
        conversation_id=str(meta.get("conversation", "")),
        text=document or "",
        first_seq=first_seq,
        last_seq=last_seq,
        first_at=_time(meta.get("first_at")),
        last_at=_time(meta.get("last_at")),
        model=str(meta.get("model", "")),
        score=score,
        line_sources=_line_sources(
            meta.get(LINE_SOURCES_FIELD), document or "", first_seq, last_seq
        ),
        generation=int(meta.get("generation", 0) or 0),
        kind=str(meta.get("kind", "") or "summary"),
        summary_lines=_summary_lines(
            meta.get(SUMMARY_LINES_FIELD), len(split_lines(document or ""))
        ),
        conversation_kind=str(meta.get("conversation_kind", "") or "private"),
    )


def _format(metadata: Any) -> int:
    """A document's format version (1 when it has none: written before versions existed)."""
    value = (metadata or {}).get(FORMAT_FIELD)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _is_rust_panic(exc: BaseException) -> bool:
    # The embedded Chroma's Rust core surfaces panics as pyo3's PanicException,
    # which derives from BaseException rather than Exception.
    return type(exc).__name__ == "PanicException"


class ChromaColdStore:
    """Summaries in Chroma, searchable by meaning; implements ``ColdStore``.

    ``client`` is a ready Chroma client (the caller closes it) or a
    zero-argument factory that creates one on first use (the store retries
    it after a failure and closes the client in :meth:`close`).
    ``embedding_function`` embeds documents and queries. ``prefix`` starts
    every collection name, so deployments can share one Chroma.
    ``location`` describes where Chroma lives, for error messages.
    """

    def __init__(
        self,
        client: ClientAPI | Callable[[], ClientAPI],
        embedding_function: EmbeddingFunction[Documents],
        *,
        layout: Layout = DEFAULT_LAYOUT,
        prefix: str = "hc",
        location: str = "Chroma",
        gate: LayerGate | None = None,
        keep_messages: bool = True,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
        self.layout: Layout = layout
        self.keep_messages = keep_messages
        """Store a window's messages verbatim beside its summary (each line searchable);
        ``False`` keeps the summary's lines only."""
        self.prefix = prefix
        self.location = location
        self._embedding_function = embedding_function
        if isinstance(client, ClientAPI):
            self._client: ClientAPI | None = client
            self._factory: Callable[[], ClientAPI] | None = None
        else:
            self._client = None
            self._factory = client
        self._client_lock = threading.Lock()
        self._collections: dict[str, Collection] = {}
        self._closed = False
        self._gate = gate or LayerGate("chroma")
        """Bounds the threads and time of foreground calls (see :mod:`honeychat.core.deadlines`)."""

    # The contract

    async def add(self, summary: Summary) -> None:
        """Store a summary under its ``doc_id`` (writing the same window twice keeps one)."""
        await self.add_many([summary])

    async def add_many(self, summaries: Sequence[Summary]) -> None:
        """Store several summaries of one conversation in one embedding batch and one write."""
        if not summaries:
            return
        if not self.keep_messages:
            summaries = [summary.without_messages() for summary in summaries]
        conversation_id = summaries[0].conversation_id
        key = _parse_key(conversation_id)
        for summary in summaries:
            if summary.conversation_id != conversation_id:
                raise ValueError("add_many takes summaries of one conversation")
            if summary.last_seq < summary.first_seq:
                raise ValueError(
                    f"summary window {summary.first_seq}..{summary.last_seq} ends before it starts"
                )
        # One batch: each summary and, when it has several lines, each line
        # (retrieval scores lines by their own vectors; see line_vectors.py).
        texts: list[str] = []
        spans: list[tuple[int, int]] = []
        for summary in summaries:
            lines = split_lines(summary.text)
            start = len(texts)
            texts += [summary.text, *lines] if len(lines) > 1 else [summary.text]
            spans.append((start, len(texts)))
        name = self.collection_name(conversation_id)

        def upsert() -> None:
            vectors = self._embedding_function(texts)
            metadatas = []
            for summary, (start, end) in zip(summaries, spans, strict=True):
                metadata = _metadata(key, summary)
                if end - start > 1:
                    metadata[line_vectors.FIELD] = line_vectors.encode(vectors[start + 1 : end])
                metadatas.append(metadata)
            collection = self._collection(name, create=True)
            assert collection is not None
            collection.upsert(
                ids=[summary.doc_id for summary in summaries],
                embeddings=np.asarray([vectors[start] for start, _ in spans], dtype=np.float32),
                documents=[summary.text for summary in summaries],
                metadatas=metadatas,  # type: ignore[arg-type]
            )

        # Summaries are background work: they run on a low-priority thread so
        # that embedding them does not slow the turns being answered meanwhile.
        await self._call(upsert, name, background=True)

    async def latest(self, conversation_id: str) -> Summary | None:
        """The summary with the highest ``(generation, last_seq)``, or ``None``.

        Chosen by window, never by similarity: one ``get`` of the
        conversation's ids (they encode the window, see ``Summary.doc_id``;
        metadata is read only for an id that does not), then one ``get`` of
        the winning document.
        """
        name = self.collection_name(conversation_id)

        def read() -> Summary | None:
            collection = self._collection(name, create=False)
            if collection is None:
                return None
            where = self._where(conversation_id)
            ids = collection.get(where=where, include=[])["ids"]
            if not ids:
                return None
            windows = [_window_end(doc_id) for doc_id in ids]
            if any(end is None for end in windows):
                found = collection.get(where=where, include=["metadatas"])
                ids, metadatas = found["ids"], found["metadatas"] or []
                windows = [
                    (int(m.get("generation", 0) or 0), int(m.get("last_seq", 0)))  # type: ignore[arg-type]
                    for m in metadatas
                ]
            best = max(range(len(ids)), key=lambda i: (windows[i] or (0, 0), ids[i]))
            row = collection.get(ids=[ids[best]], include=["documents", "metadatas"])
            if not row["ids"] or not row["documents"] or not row["metadatas"]:
                return None  # deleted between the two reads
            return _summary(row["documents"][0], row["metadatas"][0])

        return await self._call(read, name)

    async def search(self, conversation_id: str, query: str, k: int) -> list[Summary]:
        """The ``k`` summaries most relevant to ``query``, best first, ``score = 1 - distance``.

        ``score`` is the cosine similarity (1 is identical meaning), and
        ``line_scores`` the similarity of each line when the document keeps
        line vectors (a one-line document's line score is its ``score``).
        A conversation without documents gives ``[]``.
        """
        name = self.collection_name(conversation_id)
        if k <= 0:
            return []

        # One trip to a worker thread for the lookup, the embedding and the query:
        # on a busy machine every extra hop adds to the turn's tail latency.
        def read() -> list[Summary]:
            collection = self._collection(name, create=False)
            if collection is None:
                return []
            vector = self._embedding_function([query])[0]
            result = collection.query(
                query_embeddings=np.asarray([vector], dtype=np.float32),
                n_results=k,
                where=self._where(conversation_id),
                include=["documents", "metadatas", "distances"],
            )
            ids = result["ids"][0] if result["ids"] else []
            documents = (result["documents"] or [[]])[0]
            metadatas = (result["metadatas"] or [[]])[0]
            distances = (result["distances"] or [[]])[0]
            unit_query = line_vectors.unit(vector)
            found = []
            for i in range(len(ids)):
                summary = _summary(documents[i], metadatas[i], 1.0 - float(distances[i]))
                lines = len(split_lines(summary.text))
                scores = (
                    (summary.score,)
                    if lines == 1 and summary.score is not None
                    else line_vectors.line_scores(unit_query, metadatas[i], lines)
                )
                found.append(replace(summary, line_scores=scores))
            found.sort(key=lambda s: s.score or 0.0, reverse=True)
            return found

        return await self._call(read, name)

    async def all(self, conversation_id: str) -> list[Summary]:
        """Every summary of a conversation, oldest window first."""
        name = self.collection_name(conversation_id)

        def read() -> list[Summary]:
            collection = self._collection(name, create=False)
            if collection is None:
                return []
            found = collection.get(
                where=self._where(conversation_id), include=["documents", "metadatas"]
            )
            documents = found["documents"] or []
            metadatas = found["metadatas"] or []
            summaries = [_summary(documents[i], metadatas[i]) for i in range(len(found["ids"]))]
            summaries.sort(key=lambda s: (s.first_seq, s.last_seq))
            return summaries

        return await self._call(read, name)

    async def delete(self, conversation_id: str, doc_ids: list[str] | None = None) -> None:
        """Delete the given documents, or every document of the conversation.

        Only documents of ``conversation_id`` are ever deleted, whatever ids
        are passed; an empty list deletes nothing.
        """
        name = self.collection_name(conversation_id)
        if doc_ids is not None and not doc_ids:
            return

        def remove() -> None:
            client = self._connect()
            if doc_ids is None and self.layout == "per_conversation":
                self._collections.pop(name, None)
                try:
                    client.delete_collection(name)
                except NotFoundError:
                    pass
                return
            collection = self._collection(name, create=False)
            if collection is None:
                return
            collection.delete(ids=doc_ids, where=self._where(conversation_id))

        await self._call(remove, name)

    async def close(self) -> None:
        """Forget cached collections; close the client if this store created it."""
        self._collections.clear()
        if self._factory is not None and self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await self._gate.run(lambda: _close_client(client))
        self._gate.shutdown()
        self._closed = True

    # Helpers beyond the contract

    async def upgrade_documents(self, page: int = 256) -> int:
        """Upgrade every document of format 1 under this store's prefix to the current one.

        Only metadata changes (``Collection.update`` merges it, so fields this
        version does not know are kept): the format version, the defaults of
        fields format 1 could lack (``kind``, ``generation``,
        ``conversation_kind``) and, for a document without them, its line
        vectors. ``update`` ignores an id deleted meanwhile, so a document
        cleared during the pass is never written back. Idempotent; returns how
        many documents were upgraded. Runs on the low-priority writer thread.
        """

        def upgrade() -> int:
            client = self._connect()
            upgraded = 0
            for collection in client.list_collections():
                if not self._owns(collection):
                    continue
                offset = 0
                while True:
                    found = collection.get(
                        include=["documents", "metadatas"], limit=page, offset=offset
                    )
                    ids = found["ids"]
                    if not ids:
                        break
                    offset += len(ids)
                    documents = found["documents"] or [""] * len(ids)
                    metadatas = found["metadatas"] or [{}] * len(ids)
                    stale = [
                        (doc_id, document or "", dict(metadata or {}))
                        for doc_id, document, metadata in zip(
                            ids, documents, metadatas, strict=True
                        )
                        if _format(metadata) < MEMORY_FORMAT
                    ]
                    if stale:
                        patches = self._format_1_patches(stale)
                        collection.update(ids=[doc_id for doc_id, _, _ in stale], metadatas=patches)  # type: ignore[arg-type]
                        upgraded += len(stale)
            return upgraded

        return await self._call(upgrade, None, background=True)

    def _owns(self, collection: Collection) -> bool:
        """Whether a collection holds this store's documents (its prefix and layout)."""
        head = _name_part(self.prefix) or "hc"
        if not head[0].isalnum():
            head = "hc" + head
        letter = "c" if self.layout == "per_character" else "v"
        metadata = collection.metadata or {}
        return (
            collection.name.startswith(f"{head}-{letter}-")
            and metadata.get("honeychat_layout") == self.layout
        )

    def _format_1_patches(
        self, stale: list[tuple[str, str, dict[str, Any]]]
    ) -> list[dict[str, str | int | float | bool]]:
        """The metadata a format-1 document gains (merged into what it has)."""
        texts: list[str] = []
        needs_vectors: list[tuple[int, int, int]] = []
        for i, (_, document, metadata) in enumerate(stale):
            lines = split_lines(document)
            if len(lines) > 1 and line_vectors.decode(metadata.get(line_vectors.FIELD)) is None:
                needs_vectors.append((i, len(texts), len(texts) + len(lines)))
                texts += lines
        vectors = self._embedding_function(texts) if texts else []
        patches: list[dict[str, str | int | float | bool]] = []
        for _, _, metadata in stale:
            patches.append(
                {
                    FORMAT_FIELD: MEMORY_FORMAT,
                    "kind": str(metadata.get("kind") or "summary"),
                    "generation": int(metadata.get("generation") or 0),
                    "conversation_kind": str(metadata.get("conversation_kind") or "private"),
                }
            )
        for i, start, end in needs_vectors:
            patches[i][line_vectors.FIELD] = line_vectors.encode(vectors[start:end])
        return patches

    async def warm_up(self) -> None:
        """Load the embedding model and connect now, so the first turn does not wait for them.

        The model is loaded first and even when Chroma is down: preparing it can
        take tens of seconds, which a first turn after Chroma comes back should not pay.
        """
        try:
            await self._embed(["warm up"])
        finally:
            await self.check()

    async def check(self) -> None:
        """Connect and ping Chroma; raise ``StoreUnavailable`` if it cannot be used."""
        await self._call(lambda: self._connect().heartbeat(), None)

    async def conversations_of(self, user_id: str, platform: str | None = None) -> list[str]:
        """Ids of every conversation with documents of ``user_id`` (on ``platform``, or any).

        Reads every collection of this store's prefix (both layouts), by the
        ``user_id`` and ``platform`` metadata each document carries: one query
        per collection, so with the per-conversation layout this grows with the
        number of conversations. It runs on the background writer thread, not
        under the per-call deadline of turns; the caller bounds it.
        """
        where: Any = {"user_id": user_id}
        if platform is not None:
            where = {"$and": [where, {"platform": platform}]}
        head = collection_name(self.layout, self.prefix, ConversationKey("p", "u", "c"))
        mine = head.split("-", 1)[0] + "-"

        def read() -> list[str]:
            client = self._connect()
            found: set[str] = set()
            for listed in client.list_collections():
                if not listed.name.startswith(mine):
                    continue
                collection = client.get_collection(listed.name, embedding_function=None)
                for metadata in (
                    collection.get(where=where, include=["metadatas"])["metadatas"] or []
                ):
                    found.add(str(metadata["conversation"]))
            return sorted(found)

        return await self._call(read, None, background=True)

    def collection_name(self, conversation_id: str) -> str:
        """The collection holding ``conversation_id`` (``ValueError`` for a malformed id)."""
        return collection_name(self.layout, self.prefix, _parse_key(conversation_id))

    # Internals

    def _where(self, conversation_id: str, *extra: dict[str, Any]) -> Any:
        """The metadata filter selecting one conversation's documents (``None`` if implied)."""
        conditions = [*extra]
        if self.layout == "per_character":
            conditions.insert(0, {"conversation": conversation_id})
        if not conditions:
            return None
        if len(conditions) == 1:
            return conditions[0]
        return {"$and": conditions}

    def _connect(self) -> ClientAPI:
        if self._closed:
            raise RuntimeError("the cold store is closed")
        if self._client is not None:
            return self._client
        with self._client_lock:
            if self._client is None:
                assert self._factory is not None
                self._client = self._factory()
            return self._client

    def _collection(self, name: str, *, create: bool) -> Collection | None:
        collection = self._collections.get(name)
        if collection is not None:
            return collection
        client = self._connect()
        if create:
            collection = client.get_or_create_collection(
                name,
                configuration=COSINE_CONFIGURATION,
                metadata={"honeychat_layout": self.layout},
                embedding_function=None,
            )
        else:
            try:
                collection = client.get_collection(name, embedding_function=None)
            except NotFoundError:
                return None
        self._collections[name] = collection
        return collection

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        try:
            return await embed(self._embedding_function, texts)
        except EmbeddingError as exc:
            raise StoreUnavailable("cold", str(exc)) from exc

    async def _call(
        self, fn: Callable[[], _T], name: str | None, *, background: bool = False
    ) -> _T:
        """Run ``fn`` in a worker thread, turning any failure into ``StoreUnavailable``.

        ``background`` work goes to the low-priority writer thread.
        """
        try:
            if background:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(_background_executor(), fn)
            return await self._gate.run(fn)
        except StoreUnavailable:
            raise
        except (GateClosed, GateTimeout) as exc:
            raise StoreUnavailable("cold", f"{self.location}: {exc}") from exc
        except BaseException as exc:
            if not isinstance(exc, Exception) and not _is_rust_panic(exc):
                raise
            if name is not None:
                # The collection may have been deleted or the server restarted empty.
                self._collections.pop(name, None)
            raise StoreUnavailable("cold", f"{self.location}: {_describe(exc)}") from exc


_BACKGROUND_NICENESS = 10
_background: ThreadPoolExecutor | None = None
_background_lock = threading.Lock()


def _lower_priority() -> None:
    """Make the calling thread yield the CPU to others (Linux: per-thread nice)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _BACKGROUND_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


def _background_executor() -> ThreadPoolExecutor:
    """The process's one low-priority thread for background writes."""
    global _background
    with _background_lock:
        if _background is None:
            _background = ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix="honeychat-background",
                initializer=_lower_priority,
            )
        return _background


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _close_client(client: ClientAPI) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        close()


def _persistent_factory(path: Path) -> Callable[[], ClientAPI]:
    def create() -> ClientAPI:
        import chromadb

        try:
            path.mkdir(parents=True, exist_ok=True)
            # Chroma's own errors for this are terse ("Not a directory (os error 20)").
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as exc:
            raise StoreUnavailable(
                "cold", f"cannot write the embedded Chroma directory {path}: {exc}"
            ) from exc
        return chromadb.PersistentClient(path=str(path))

    return create


def _http_factory(url: str, timeout: float = 10.0) -> Callable[[], ClientAPI]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"chroma_url must look like http://host:port, not {url!r}")
    ssl = parts.scheme == "https"
    host = parts.hostname
    port = parts.port or (443 if ssl else 8000)

    def create() -> ClientAPI:
        from honeychat.core.memory.chroma_http import timed_http_client

        return timed_http_client(host, port, ssl=ssl, timeout=timeout)

    return create


def open_cold_store(settings: Settings, *, layout: Layout = DEFAULT_LAYOUT) -> ChromaColdStore:
    """The cold store ``settings`` describe, connecting lazily.

    A Chroma server when ``settings.chroma_url`` is set, else an embedded
    Chroma in ``settings.data_dir / "chroma"``. Nothing is opened here, so a
    server that is down does not stop the bot from starting: each call
    raises ``StoreUnavailable`` until it is reachable (``check()`` tests now).
    """
    factory: Callable[[], ClientAPI]
    if settings.chroma_url:
        factory = _http_factory(settings.chroma_url, settings.chroma_timeout)
        location = f"Chroma server at {redact(settings.chroma_url)}"
    else:
        path = Path(settings.data_dir) / "chroma"
        factory = _persistent_factory(path)
        location = f"embedded Chroma at {path}"
    return ChromaColdStore(
        factory,
        make_embedding_function(settings),
        layout=layout,
        prefix=settings.key_prefix,
        location=location,
        gate=LayerGate(
            "chroma", timeout=settings.chroma_timeout, max_threads=settings.store_max_threads
        ),
        keep_messages=settings.memory_keep_messages,
    )


__all__ = [
    "DEFAULT_LAYOUT",
    "LAYOUTS",
    "ChromaColdStore",
    "Layout",
    "collection_name",
    "open_cold_store",
]
