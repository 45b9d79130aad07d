"""The environment a `honeychat` subprocess gets in tests: its own data dir and the fake LLM."""

from __future__ import annotations

import os
from pathlib import Path

from honeychat.testing.fake_llm import FakeLLM

# Servers and keys from the developer's shell must not leak into a test's subprocess.
_DROPPED = {"REDIS_URL", "CHROMA_URL", "OPENROUTER_API_KEY", "HONEYCHAT_CONFIG"}


def cli_env(data_dir: Path, llm: FakeLLM, **extra: str) -> dict[str, str]:
    """``os.environ`` without outside servers, with ``DATA_DIR`` and the fake LLM, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env.update(DATA_DIR=str(data_dir), LLM_BASE_URL=llm.base_url, LLM_API_KEY="test", **extra)
    return env
