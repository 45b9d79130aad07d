"""Every code block in docs/plugins.md runs, and its hook reference matches the hook specs.

Conventions in the Markdown, as an HTML comment on the line before a fence:
``<!-- file: PATH -->`` writes the block to PATH in the tutorial's directory;
``<!-- not-run: reason -->`` skips it (kept to a minimum and counted below).
Other ``python`` blocks are executed as they are; ``bash`` blocks run in the
tutorial's directory, in document order after the files before them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from honeychat.core.hookdoc import replace_reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!-- (file|not-run): (.+?) -->$")


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    body: str
    marker: str | None = None
    argument: str = ""

    @property
    def id(self) -> str:
        return f"{self.lang}@line{self.line}"


def blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, with the marker comment above each."""
    found = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        marker = _MARKER.match(lines[start - 1]) if start > 0 else None
        found.append(
            Block(
                start + 1,
                fence.group(1),
                "\n".join(body) + "\n",
                marker.group(1) if marker else None,
                marker.group(2) if marker else "",
            )
        )
        i += 1
    return found


BLOCKS = blocks(DOC.read_text(encoding="utf-8"))
SNIPPETS = [b for b in BLOCKS if b.lang == "python" and b.marker is None]


def test_every_block_is_runnable_or_explicitly_not() -> None:
    assert BLOCKS, "no code blocks found"
    for block in BLOCKS:
        assert block.lang in ("python", "bash"), f"{block.id}: unknown language {block.lang!r}"
        if block.marker == "file":
            assert not Path(block.argument).is_absolute() and ".." not in block.argument
    assert len([b for b in BLOCKS if b.marker == "not-run"]) <= 1, "keep non-runnable blocks rare"


def test_hook_reference_matches_the_hook_specs() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert replace_reference(text) == text, (
        "docs/plugins.md is out of date: run `python -m honeychat.core.hookdoc --write docs/plugins.md`"
    )


@pytest.mark.parametrize("block", SNIPPETS, ids=[b.id for b in SNIPPETS])
def test_python_snippet_runs(block: Block) -> None:
    code = compile(block.body, f"{DOC}:{block.line}", "exec")
    exec(code, {"__name__": f"docs_snippet_{block.line}"})


@pytest.mark.slow
def test_the_tutorial_runs_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PLUGIN"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    ran = 0
    for block in BLOCKS:
        if block.marker == "file":
            target = tmp_path / block.argument
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.body, encoding="utf-8")
        elif block.lang == "bash" and block.marker is None:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block.body],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
            assert done.returncode == 0, f"{block.id} failed:\n{done.stdout}\n{done.stderr}"
            ran += 1
    assert ran >= 2
    assert (tmp_path / "honeychat-mood" / "pyproject.toml").is_file(), "scaffolded by the tutorial"
