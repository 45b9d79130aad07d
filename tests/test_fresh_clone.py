"""The README's quick start, run in a fresh copy of the repository with nothing beside it.

What a new user gets from a clone: the files git holds (tracked, plus new files git does not
ignore, so uncommitted work is checked too), copied into an empty temporary directory. Then
the README's two commands, as written, with three honest departures to stay within the
suite's time budget and off the network:

- Step 1's ``pip install`` would download about 2 GB. The new virtualenv instead sees the
  packages already installed for this test run (through a ``.pth`` file pointing at a
  directory of links to them, honeychat itself left out), and pip runs with ``PIP_NO_INDEX``
  and without build isolation: it must find every requirement satisfied and installs only the
  clone itself, editable, as the README says. ``honeychat chat`` then talks to the fake LLM,
  with piped input.
- Step 2 is this very suite; running it again inside itself would double its time (and
  recurse), and collecting it alone takes tens of seconds (it imports PyTorch, Chroma,
  selenium...). In the clone it runs a few fast modules (:data:`IN_THE_CLONE`): conftest.py,
  the pytest plugin and the test kit load with nothing beside the clone. That no test reads
  data from beside the repository is checked from every test's source below.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_env import cli_env

from honeychat.testing.fake_llm import FakeLLM

ROOT = Path(__file__).resolve().parent.parent
_OUTSIDE = re.compile(r"""\.\.["']?\s*[/,]\s*["']?shared""")
"""``../shared``, ``".." / "shared"``, ``"..", "shared"``: the sibling data directory."""


IN_THE_CLONE = ("tests/test_types.py", "tests/test_textsplit.py", "tests/test_docs_paths.py")
"""Fast modules step 2 runs in the clone (the whole suite is this suite)."""


def quick_start_commands() -> list[str]:
    """The lines of the first ``bash`` block under the README's "Quick start"."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the Quick start section has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_no_test_reads_data_from_beside_the_repository() -> None:
    sources = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("testing/**/*.py")]
    assert len(sources) > 40
    # This file names the pattern it looks for; every other one must not.
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if path.name != Path(__file__).name and _OUTSIDE.search(path.read_text())
    ]
    assert offenders == [], "tests must use data the repository ships or generates"


def _copy_as_cloned(target: Path) -> int:
    """Copy what a clone would hold (plus non-ignored new files) to ``target``; file count."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    count = 0
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is not in a clone
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
            count += 1
    return count


def _installed_packages_without_honeychat(target: Path) -> Path:
    """A directory of links to this environment's packages, honeychat's own install left out."""
    site = Path(pytest.__file__).resolve().parent.parent
    target.mkdir()
    for entry in site.iterdir():
        if "honeychat" in entry.name.lower() or entry.name in {"__pycache__", "pip"}:
            continue
        if entry.name.startswith("pip-") and entry.name.endswith(".dist-info"):
            continue
        (target / entry.name).symlink_to(entry)
    return target


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM.start_in_thread()
    yield server
    server.stop()


@pytest.mark.slow
def test_the_readme_quick_start_works_in_a_fresh_clone(tmp_path: Path, llm: FakeLLM) -> None:
    step1, step2 = quick_start_commands()
    create, install, chat = (part.strip() for part in step1.split("&&"))
    assert create == "python3 -m venv .venv" and chat == ".venv/bin/honeychat chat", step1
    assert step2 == ".venv/bin/python -m pytest", step2

    clone = tmp_path / "alone" / "honeychat"  # nothing beside it in tmp_path/alone
    assert _copy_as_cloned(clone) > 100
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys._base_executable)  # the Python this suite runs on
    packages = _installed_packages_without_honeychat(tmp_path / "packages")
    env = cli_env(
        tmp_path / "data",
        llm,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",  # pip's spelling of --no-build-isolation
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        EMBEDDING_BACKEND="openai",
        EMBEDDING_BASE_URL=llm.base_url,
        EMBEDDING_API_KEY="test",
    )
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)

    def sh(command: str, stdin: str = "", timeout: float = 180) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=clone,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    sh(create)
    (site,) = (clone / ".venv" / "lib").glob("python3*/site-packages")
    # First on sys.path, ahead of the setuptools the new virtualenv bundles (too old to build).
    (site / "installed-for-the-test.pth").write_text(
        f"import sys; sys.path.insert(0, {str(packages)!r})\n"
    )
    sh(install)
    located = sh(".venv/bin/python -c 'import honeychat; print(honeychat.__file__)'")
    assert located.stdout.strip() == str(clone / "__init__.py")  # the clone, editable

    replied = sh(chat, stdin="My dog is called Biscuit.\n")
    assert replied.stdout.startswith("I hear you: My dog is called Biscuit."), replied.stdout

    tested = sh(f"{step2} -q -p no:cacheprovider {' '.join(IN_THE_CLONE)}")
    summary = tested.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in [\d.]+s", summary), tested.stdout[-2000:]
    assert not (tmp_path / "alone" / "shared").exists()
