"""Finding, loading and calling plugins.

Plugins come from the ``honeychat`` entry-point group (honeychat's own
built-ins included) and from ``*.py`` files in ``PLUGINS_DIR``. An entry
point may name a module, a class (instantiated with no arguments) or an
object. A plugin that fails to load is reported with its name and honeychat
starts with the rest.

Hooks are called one implementation at a time (in pluggy's order, so
``tryfirst``/``trylast`` apply) so that one plugin raising does not stop the
others: the error is logged with the plugin's name and the call goes on.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from honeychat.core import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "honeychat"


@dataclass(slots=True)
class PluginInfo:
    """What ``honeychat plugins list`` shows about one plugin."""

    name: str
    source: str
    """``built-in``, ``entry point`` or ``file``."""
    version: str | None
    hooks: list[str] = field(default_factory=list)
    origin: str = ""
    """The entry point's target or the file's path."""


@dataclass(slots=True)
class PluginProblem:
    """A plugin that could not be loaded, and why."""

    name: str
    message: str

    def __str__(self) -> str:
        return f"plugin '{self.name}': {self.message}"


@dataclass(slots=True)
class _Candidate:
    name: str
    source: str
    version: str | None
    origin: str
    load: Any


class PluginHost:
    """The plugin manager of one bot: loading, introspection and isolated hook calls."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.problems: list[PluginProblem] = []

    # Loading

    def load(self, *, disabled: Iterable[str] = (), plugins_dir: Path | None = None) -> None:
        """Load every plugin from entry points and ``plugins_dir``, skipping ``disabled`` names."""
        skip = set(disabled)
        for candidate in [*self._entry_point_candidates(), *self._file_candidates(plugins_dir)]:
            if candidate.name in skip:
                log.info("plugin '%s' is disabled by configuration", candidate.name)
                continue
            self._load_candidate(candidate)

    def register(
        self, plugin: object, name: str, *, source: str = "code", version: str | None = None
    ) -> bool:
        """Register an already-built plugin object; returns whether it was accepted."""
        if name in self.info or self.pm.has_plugin(name):
            self._problem(
                name, "another plugin with this name is already loaded; this one was skipped"
            )
            return False
        unknown = [
            attr
            for attr in dir(plugin)
            if attr.startswith("honeychat_") and not hasattr(self.pm.hook, attr)
        ]
        if unknown:
            self._problem(name, f"implements unknown hook(s) {', '.join(unknown)} (misspelt?)")
            return False
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            self._problem(name, f"invalid hook implementation: {exc}")
            return False
        hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        self.info[name] = PluginInfo(
            name, source, version, hooks, origin=getattr(plugin, "__name__", "")
        )
        return True

    def _entry_point_candidates(self) -> list[_Candidate]:
        candidates = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist
            builtin = dist is not None and dist.metadata["Name"] == "honeychat"
            candidates.append(
                _Candidate(
                    ep.name,
                    "built-in" if builtin else "entry point",
                    dist.version if dist is not None else None,
                    ep.value,
                    ep.load,
                )
            )
        # Built-ins first so third-party plugins registered later are called first (LIFO).
        candidates.sort(key=lambda c: (c.source != "built-in", c.name))
        return candidates

    def _file_candidates(self, plugins_dir: Path | None) -> list[_Candidate]:
        if plugins_dir is None:
            return []
        if not plugins_dir.is_dir():
            self._problem(str(plugins_dir), "plugins directory does not exist")
            return []
        return [
            _Candidate(path.stem, "file", None, str(path), lambda p=path: _import_file(p))
            for path in sorted(plugins_dir.glob("*.py"))
            if not path.name.startswith("_")
        ]

    def _load_candidate(self, candidate: _Candidate) -> None:
        try:
            obj = candidate.load()
        except Exception as exc:  # any import-time error of a third-party plugin
            self._problem(
                candidate.name, f"failed to import {candidate.origin}: {type(exc).__name__}: {exc}"
            )
            return
        if inspect.isclass(obj):
            try:
                obj = obj()
            except Exception as exc:
                self._problem(candidate.name, f"could not be created: {type(exc).__name__}: {exc}")
                return
        if self.register(obj, candidate.name, source=candidate.source, version=candidate.version):
            self.info[candidate.name].origin = candidate.origin

    def _problem(self, name: str, message: str) -> None:
        problem = PluginProblem(name, message)
        log.error("%s", problem)
        self.problems.append(problem)

    # Calling

    async def call(
        self,
        hook_name: str,
        *,
        firstresult: bool | None = None,
        strict: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Call every implementation of ``hook_name`` in order, isolating failures.

        Returns the non-None results (at most one for a firstresult hook).
        Awaitable results are awaited. With ``strict``, an exception
        propagates instead (for operations whose caller must know it failed).
        """
        caller = getattr(self.pm.hook, hook_name)
        if firstresult is None:
            spec = caller.spec
            firstresult = bool(spec and spec.opts.get("firstresult"))
        results = []
        for impl in reversed(caller.get_hookimpls()):
            args = {name: kwargs[name] for name in impl.argnames if name in kwargs}
            try:
                result = impl.function(**args)
                if inspect.isawaitable(result):
                    result = await result
            except Exception:
                if strict:
                    raise
                log.exception(
                    "plugin '%s' failed in %s; continuing without it", impl.plugin_name, hook_name
                )
                continue
            if result is not None:
                results.append(result)
                if firstresult:
                    break
        return results

    async def first(self, hook_name: str, **kwargs: Any) -> Any:
        """The first non-None result of a hook, or ``None``."""
        results = await self.call(hook_name, firstresult=True, **kwargs)
        return results[0] if results else None


def _import_file(path: Path) -> ModuleType:
    """Import a single-file plugin under a private module name."""
    module_name = f"honeychat_local_plugins.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
