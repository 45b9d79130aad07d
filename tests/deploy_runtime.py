"""deploy/runtime_deps.py, importable by the tests (deploy/ is not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parent.parent / "deploy" / "runtime_deps.py"
_spec = importlib.util.spec_from_file_location("runtime_deps", _PATH)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

EXPORT_ONLY = _module.EXPORT_ONLY
closure = _module.closure
runtime_requirements = _module.runtime_requirements
