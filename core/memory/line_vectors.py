"""A vector per summary line, kept inside the summary's one Chroma document.

Chroma metadata holds only scalars, so the line vectors of a summary travel
as one compact string field: ``i8:{dim}:{base64}``, each line's vector
scaled so its largest component is 127 and rounded to int8 (384 bytes a line
for all-MiniLM-L6-v2, about 5 KB of base64 for a ten-line summary). The scale
is dropped on purpose: only cosine similarity is ever computed from these,
and cosine does not depend on a vector's length. Rounding moves a cosine by
about 0.002, far below the gaps that order lines.

A document written before line vectors existed (or whose field does not
match its lines) simply has none: :func:`line_scores` returns ``None`` and
retrieval falls back to the summary's own rank.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FIELD = "line_vectors"
"""The metadata field holding the encoded line vectors."""

_PREFIX = "i8"


def encode(vectors: Sequence[Sequence[float]] | Sequence[np.ndarray]) -> str:
    """``vectors`` (one per line, all the same length) as one metadata string."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError("line vectors must be a non-empty list of equal-length vectors")
    peak = np.abs(matrix).max(axis=1, keepdims=True)
    peak[peak == 0] = 1.0
    quantized = np.rint(matrix / peak * 127.0).astype(np.int8)
    payload = base64.b64encode(quantized.tobytes()).decode("ascii")
    return f"{_PREFIX}:{matrix.shape[1]}:{payload}"


def decode(value: Any) -> np.ndarray | None:
    """The unit-length line vectors encoded in ``value`` (rows), or ``None`` if unusable."""
    if not isinstance(value, str):
        return None
    prefix, _, rest = value.partition(":")
    dim_text, _, payload = rest.partition(":")
    if prefix != _PREFIX or not dim_text.isdigit() or int(dim_text) <= 0:
        return None
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    dim = int(dim_text)
    if not raw or len(raw) % dim:
        return None
    matrix = np.frombuffer(raw, dtype=np.int8).reshape(-1, dim).astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def line_scores(
    query: np.ndarray, metadata: Mapping[str, Any] | None, lines: int
) -> tuple[float, ...] | None:
    """Cosine similarity of the unit ``query`` vector to each of ``lines`` lines.

    ``None`` when the metadata has no usable line vectors for exactly that
    many lines, or their dimension is not the query's.
    """
    matrix = decode((metadata or {}).get(FIELD))
    if matrix is None or matrix.shape[0] != lines or matrix.shape[1] != query.shape[0]:
        return None
    return tuple(float(x) for x in matrix @ query)


def unit(vector: Sequence[float] | np.ndarray) -> np.ndarray:
    """``vector`` as float32 of length 1 (a zero vector stays zero)."""
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm else array


__all__ = ["FIELD", "decode", "encode", "line_scores", "unit"]
