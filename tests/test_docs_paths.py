"""Folder paths the docs give for the repository's own code exist.

The repository root is the `honeychat` package, so `honeychat/plugins/` names
nothing a reader can open: the folder is `plugins/`.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_FOLDER = re.compile(r"`([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*/)`")


def folder_mentions() -> list[tuple[str, str]]:
    """(document, folder) for every backticked folder path in the README and docs/."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        found += [(doc.name, path) for path in _FOLDER.findall(doc.read_text())]
    return found


def test_folders_the_docs_name_in_this_repository_exist() -> None:
    top_level = {p.name for p in ROOT.iterdir() if p.is_dir()} | {"honeychat"}
    ours = [(doc, path) for doc, path in folder_mentions() if path.split("/")[0] in top_level]
    assert len(ours) >= 10, "the check found the docs' folder paths"
    missing = [(doc, path) for doc, path in ours if not (ROOT / path).is_dir()]
    assert missing == []
