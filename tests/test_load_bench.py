"""bench/load.py in miniature: real `honeychat run` replicas under concurrent conversations.

Two replicas in Telegram webhook mode share one valkey-server and one `chroma run` server;
twenty conversations send their messages alternately to both. Only the invariants are
checked (timings belong to the benchmark): every message answered exactly once and stored
once, each history in the order sent, and no user's token in another user's prompt or
summary request.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from load import amain


async def test_replicas_under_load_answer_once_in_order_without_leaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("SUMMARY_WINDOW", "2")  # every conversation writes a summary
    # The invariants, not the deadlines, are under test: a CPU-starved shared machine must
    # not turn a slow Redis answer into a skipped layer here.
    monkeypatch.setenv("MEMORY_READ_TIMEOUT", "20")
    monkeypatch.setenv("REDIS_TIMEOUT", "20")
    result = await amain(
        [
            "--processes", "2",
            "--conversations", "20",
            "--turns", "3",
            "--rate", "0",
            "--no-limit",
            "--summary-timeout", "30",
            "--json-only",
        ]
    )  # fmt: skip
    checks = result["checks"]
    assert checks["problems"] == [] and result["failures"] == []
    assert checks["answered_exactly_once"] == 20
    assert checks["stored_exactly_once"] == 20
    assert checks["history_in_order"] == 20
    assert checks["prompts_checked"] == 60
    assert checks["summary_requests_checked"] >= 20
    assert checks["prompts_with_another_users_token"] == 0
    assert result["summaries"]["written"] == result["summaries"]["expected"] == 20
    assert checks["ok"]
    capsys.readouterr()
