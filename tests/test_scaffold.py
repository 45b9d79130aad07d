"""``honeychat new plugin``: the generated package installs and its own tests pass as generated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from honeychat.core.cli import main
from honeychat.core.scaffold import ScaffoldError, scaffold_plugin


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


@pytest.mark.slow
def test_scaffolded_plugin_installs_and_its_tests_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new", "plugin", "kite-note", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "honeychat-kite-note"
    assert f"Created {root}" in capsys.readouterr().out
    # Install into a throwaway target directory, never into the running environment.
    target = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PLUGIN"))}
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(root),
        ],
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert (target / "honeychat_kite_note-0.1.0.dist-info" / "entry_points.txt").is_file()
    env["PYTHONPATH"] = str(target)
    output = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        env=env,
        timeout=180,
    )
    assert "3 passed" in output, output


def test_scaffold_refuses_bad_names_and_existing_targets(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="invalid plugin name 'Kite'"):
        scaffold_plugin("Kite", tmp_path)
    scaffold_plugin("kite", tmp_path)
    before = (tmp_path / "honeychat-kite" / "README.md").read_text()
    with pytest.raises(ScaffoldError, match="already exists"):
        scaffold_plugin("kite", tmp_path)
    assert (tmp_path / "honeychat-kite" / "README.md").read_text() == before
    assert main(["new", "plugin", "kite", "--dir", str(tmp_path)]) == 2
