"""Where prepared embedding models live, under which name, and when they go.

A prepared model (the ONNX graph exported from the bundled weights) is named
by a hash of what defines it: the weights' and config's contents and the
export recipe's version. Identical models therefore share one file whatever
virtualenv, reinstall or image they come from. Each use refreshes the file's
modification time; other prepared models unused for :data:`STALE_AFTER` are
removed, among them the files of the old naming (one per virtualenv, keyed by
install time; the versions that wrote them do not refresh them, so they go 30
days after they were written), and so are temporary files left by an
interrupted export.

The cache directory is ``$HONEYCHAT_CACHE_DIR`` when set, else
``$XDG_CACHE_HOME/honeychat``, else ``~/.cache/honeychat``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

log = logging.getLogger(__name__)

STALE_AFTER = 30 * 24 * 3600.0
"""Seconds after its last use when another prepared model is removed."""
_TMP_STALE_AFTER = 3600.0


def default_cache_dir() -> Path:
    """``$HONEYCHAT_CACHE_DIR``, else ``$XDG_CACHE_HOME/honeychat``, else ``~/.cache/honeychat``."""
    explicit = os.environ.get("HONEYCHAT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "honeychat"


def _recorded_hashes(distribution_name: str) -> dict[Path, str]:
    """The installed files' hashes from the package's RECORD (free: computed at install)."""
    try:
        files = distribution(distribution_name).files or []
    except PackageNotFoundError:
        return {}
    return {
        Path(str(f.locate())).resolve(): _hex(f.hash.value)
        for f in files
        if f.hash is not None and f.hash.mode == "sha256"
    }


def _hex(record_hash: str) -> str:
    """RECORD's urlsafe-base64 digest (unpadded) as hex, like ``hashlib``'s."""
    return base64.urlsafe_b64decode(record_hash + "=" * (-len(record_hash) % 4)).hex()


def content_key(files: Iterable[Path], *, recipe: str, distribution_name: str = "") -> str:
    """16 hex digits naming ``files``' contents and the ``recipe`` that turns them into a model."""
    recorded = _recorded_hashes(distribution_name) if distribution_name else {}
    digest = hashlib.sha256(recipe.encode())
    for path in files:
        known = recorded.get(path.resolve())
        if known is None:
            with path.open("rb") as handle:
                known = hashlib.file_digest(handle, "sha256").hexdigest()
        digest.update(f"{path.name}:{known}\n".encode())
    return digest.hexdigest()[:16]


def mark_used(path: Path) -> None:
    """Refresh ``path``'s modification time: it is in use, so not stale."""
    with contextlib.suppress(OSError):  # a read-only image layer is fine
        os.utime(path)


def remove_stale(
    cache_dir: Path, *, keep: Path, prefix: str, now: float | None = None
) -> list[Path]:
    """Remove prepared models other than ``keep`` that nobody used lately; returns them."""
    now = time.time() if now is None else now
    removed = []
    for path in cache_dir.glob(f"{prefix}*"):
        if path == keep:
            continue
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue
        if age > (_TMP_STALE_AFTER if path.suffix == ".tmp" else STALE_AFTER):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    if removed:
        log.info("removed %d stale prepared model file(s) from %s", len(removed), cache_dir)
    return removed


@contextlib.contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner with ``message`` on a terminal; one log line (and its end) otherwise."""
    started = time.monotonic()
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status(message):
            yield
    else:
        log.info("%s...", message)
        yield
    log.debug("%s: done in %.1f s", message, time.monotonic() - started)
