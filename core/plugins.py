"""Finding, loading, configuring and calling plugins.

Plugins come from the ``honeychat`` entry-point group (honeychat's own
built-ins included) and from ``*.py`` files in ``PLUGINS_DIR``. An entry
point may name a module, a class (instantiated with no arguments) or an
object. A plugin that fails to load is reported with its name and honeychat
starts with the rest.

A plugin may declare its configuration as a pydantic model in a
``config_model`` attribute (of the module, class or object). Its section of
``PLUGIN_CONFIG`` (keyed by the plugin's name) is validated against that
model when the plugin loads; a section that does not validate keeps the
plugin out, with a message naming the plugin and the field. The plugin reads
the validated model with ``bot.plugins.config(name)``. A ``config_model``
derived from :class:`~honeychat.core.env_settings.EnvironmentSettings` (as the
built-in adapters' are) also reads its fields from environment variables of
the same names, the section winning; an invalid variable is named in one line
without its value. Secret-looking fields of every config (``*_token``,
``*_key``, ``*_secret``, ...) are masked in logs from then on.

Hooks are called through pluggy's own hook callers, so its ordering
(``tryfirst``/``trylast``, last registered first), its tracing
(``pm.trace``/``enable_tracing``) and ``add_hookcall_monitoring`` all apply.
Each registered implementation is wrapped once (see :class:`PendingCall`):
pluggy's loop then only *lines up* the implementations, and honeychat runs
them one at a time, awaiting coroutines (as datasette's ``await_me_maybe``
does), so sync and async implementations interleave in pluggy's order, a
firstresult hook stops at the first non-None *awaited* result, and one
plugin raising does not stop the others: the error is logged with the
plugin's name and the call goes on.

Hook wrappers (``@hookimpl(wrapper=True)`` or ``hookwrapper=True``) are
refused at registration with a clear message: a wrapper's code after
``yield`` would run before the (asynchronous) implementations it wraps.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, SettingsError

from honeychat.core import hookspecs
from honeychat.core.config_errors import describe as describe_settings_error
from honeychat.core.redact import register_secrets, settings_secrets

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
    config: str = "none"
    """``none`` (the plugin takes no config), ``defaults`` (no section given) or ``configured``."""


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


class MissingEntryPointObject(LookupError):
    """An entry point names an object its module does not define."""


class PluginHost:
    """The plugin manager of one bot: loading, configuration, introspection and isolated calls.

    ``config`` maps plugin names to their raw config sections (``Settings.plugin_config``).
    """

    def __init__(self, config: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.disabled: dict[str, PluginInfo] = {}
        """Plugins found but not loaded because configuration disables them."""
        self.problems: list[PluginProblem] = []
        self._raw_config: dict[str, Mapping[str, Any]] = dict(config or {})
        self._configs: dict[str, BaseModel] = {}

    # Loading

    def load(self, *, disabled: Iterable[str] = (), plugins_dir: Path | None = None) -> None:
        """Load every plugin from entry points and ``plugins_dir``, skipping ``disabled`` names."""
        skip = set(disabled)
        for candidate in [*self._entry_point_candidates(), *self._file_candidates(plugins_dir)]:
            if candidate.name in skip:
                log.info("plugin '%s' is disabled by configuration", candidate.name)
                self.disabled[candidate.name] = PluginInfo(
                    candidate.name, candidate.source, candidate.version, origin=candidate.origin
                )
                continue
            self._load_candidate(candidate)
        failed = {p.name for p in self.problems}
        for name in sorted(set(self._raw_config) - set(self.info) - skip - failed):
            log.warning(
                "PLUGIN_CONFIG has a section for '%s', but no plugin of that name is installed",
                name,
            )

    def register(
        self,
        plugin: object,
        name: str,
        *,
        source: str = "code",
        version: str | None = None,
        origin: str | None = None,
    ) -> bool:
        """Register an already-built plugin object; returns whether it was accepted.

        The plugin's config section is validated first (see :meth:`config`);
        a plugin with an invalid config or an invalid hook implementation is
        reported in :attr:`problems` and not registered.
        """
        origin = origin if origin is not None else getattr(plugin, "__name__", "")
        if name in self.info or self.pm.has_plugin(name):
            kept = self.info.get(name)
            kept_from = f"{kept.source} {kept.origin}".strip() if kept else "registered in code"
            self._problem(
                name,
                f"another plugin with this name is already loaded ({kept_from}); "
                f"skipped the {source} one ({origin or 'no origin'}). "
                "Rename one of them, or disable one with DISABLED_PLUGINS.",
            )
            return False
        if self.pm.is_registered(plugin):
            self._problem(
                name,
                f"{origin or 'this object'} is already loaded as plugin "
                f"'{self.pm.get_name(plugin)}'; skipped the second registration",
            )
            return False
        hook_error = self._check_hooks(plugin)
        if hook_error:
            self._problem(name, hook_error)
            return False
        config_status = self._validate_config(plugin, name)
        if config_status is None:
            return False
        try:
            self.pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            self._configs.pop(name, None)
            self._problem(name, f"invalid hook implementation: {' '.join(str(exc).split())}")
            return False
        callers = self.pm.get_hookcallers(plugin) or []
        for caller in callers:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    _defer(impl)
        hooks = sorted(h.name for h in callers)
        self.info[name] = PluginInfo(name, source, version, hooks, origin, config_status)
        return True

    def _check_hooks(self, plugin: object) -> str | None:
        """One clear sentence about misnamed hooks or arguments, or ``None`` when all is well."""
        names = [attr for attr in dir(plugin) if attr.startswith("honeychat_")]
        unknown = [attr for attr in names if not hasattr(self.pm.hook, attr)]
        if unknown:
            return f"implements unknown hook(s) {', '.join(unknown)} (misspelt?)"
        for attr in names:
            function = getattr(plugin, attr, None)
            if not callable(function):
                continue
            opts = self.pm.parse_hookimpl_opts(plugin, attr)
            if opts is None:
                log.warning(
                    "%s defines %s without @hookimpl, so honeychat never calls it",
                    getattr(plugin, "__name__", type(plugin).__name__),
                    attr,
                )
                continue
            if opts.get("wrapper") or opts.get("hookwrapper"):
                return (
                    f"{attr} is a hook wrapper (wrapper=True or hookwrapper=True); honeychat "
                    "awaits implementations one at a time, so a wrapper cannot wrap them. "
                    "Use @hookimpl(tryfirst=True) for work before the others and "
                    "@hookimpl(trylast=True) for work after them"
                )
            spec = getattr(self.pm.hook, attr).spec
            allowed = spec.argnames if spec is not None else ()
            wanted = _argnames(function)
            extra = [arg for arg in wanted if arg not in allowed]
            if extra:
                return (
                    f"{attr}({', '.join(wanted)}) asks for argument(s) {', '.join(extra)} "
                    f"that the hook does not have; it takes ({', '.join(allowed)}) (misspelt?)"
                )
        return None

    def _validate_config(self, plugin: object, name: str) -> str | None:
        """Validate the plugin's config section; its status, or ``None`` if it is invalid."""
        model = getattr(plugin, "config_model", None)
        section = self._raw_config.get(name)
        if model is None:
            if section:
                log.warning(
                    "plugin '%s' takes no configuration; its PLUGIN_CONFIG section is ignored", name
                )
            return "none"
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            self._problem(name, "config_model must be a pydantic BaseModel class")
            return None
        if section is not None and not isinstance(section, Mapping):
            self._problem(
                name, f"PLUGIN_CONFIG['{name}'] must be a mapping, not {type(section).__name__}"
            )
            return None
        config: BaseModel
        try:
            if issubclass(model, BaseSettings):
                # Read from the environment too; the PLUGIN_CONFIG section wins.
                config = model(**dict(section or {}))
            else:
                config = model.model_validate(dict(section or {}))
        except ValidationError as exc:
            if issubclass(model, BaseSettings):
                self._problem(name, describe_settings_error(exc) or str(exc))
            else:
                self._problem(name, describe_config_error(name, exc))
            return None
        except SettingsError as exc:
            self._problem(name, describe_settings_error(exc) or str(exc))
            return None
        self._configs[name] = config
        register_secrets(settings_secrets(config))
        return "configured" if section else "defaults"

    def config(self, name: str) -> Any:
        """The validated config model of plugin ``name``.

        Raises ``KeyError`` when that plugin is not loaded or declares no
        ``config_model``.
        """
        try:
            return self._configs[name]
        except KeyError:
            raise KeyError(f"plugin '{name}' is not loaded or has no config_model") from None

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
                    lambda ep=ep: _load_entry_point(ep),
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
        except MissingEntryPointObject as exc:
            self._problem(candidate.name, str(exc))
            return
        except Exception as exc:  # any import-time error of a third-party plugin
            log.debug("import of plugin '%s' failed", candidate.name, exc_info=True)
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
        self.register(
            obj,
            candidate.name,
            source=candidate.source,
            version=candidate.version,
            origin=candidate.origin,
        )

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
        """Call every implementation of ``hook_name`` in pluggy's order, isolating failures.

        Returns the non-None results (at most one for a firstresult hook, or
        with ``firstresult=True``). Awaitable results are awaited. When an
        implementation raises, the ``text`` and ``reply_text`` of a ``turn``
        argument are put back as they were before it ran. With ``strict``, an
        exception propagates instead (for operations whose caller must know
        it failed).
        """
        caller: pluggy.HookCaller = getattr(self.pm.hook, hook_name)
        spec_first = bool(caller.spec and caller.spec.opts.get("firstresult"))
        stop_at_first = spec_first if firstresult is None else firstresult
        results: list[Any] = []
        tried: set[object] = set()
        hook = caller
        while True:
            # pluggy's loop (ordering, tracing, monitoring) lines the implementations up;
            # for a firstresult hook it hands back only the next one to try.
            lined_up = hook(**kwargs)
            pending: Sequence[Any] = (
                ([] if lined_up is None else [lined_up]) if spec_first else lined_up
            )
            for call in pending:
                result = await self._run(call, hook_name, kwargs.get("turn"), strict)
                tried.add(getattr(call, "plugin", None))
                if result is not None:
                    results.append(result)
                    if stop_at_first:
                        return results
            if not (spec_first and pending):
                return results
            hook = self.pm.subset_hook_caller(hook_name, remove_plugins=tried)

    async def _run(self, call: Any, hook_name: str, turn: Any, strict: bool) -> Any:
        texts = _turn_texts(turn)
        try:
            if isinstance(call, PendingCall):
                return await call.run()
            # An implementation registered on ``pm`` directly, not through register().
            return await call if inspect.isawaitable(call) else call
        except Exception:
            if strict:
                raise
            _restore_turn_texts(turn, texts)  # a failed plugin's half-done rewrite is undone
            log.exception(
                "plugin '%s' failed in %s; continuing without it",
                getattr(call, "plugin_name", "?"),
                hook_name,
            )
            return None

    async def first(self, hook_name: str, **kwargs: Any) -> Any:
        """The first non-None result of a hook, or ``None``."""
        results = await self.call(hook_name, firstresult=True, **kwargs)
        return results[0] if results else None


class PendingCall:
    """One hook implementation's call, as pluggy's loop hands it over: run when awaited.

    pluggy calls implementations synchronously; honeychat's are often
    ``async``. Each registered implementation is replaced by a function
    returning a ``PendingCall``, so pluggy's machinery decides *which* run and
    in *what order*, and :meth:`PluginHost.call` runs them one at a time.
    ``result`` holds the awaited result once run (handy in a pluggy
    ``add_hookcall_monitoring`` callback that keeps the outcome).
    """

    __slots__ = ("args", "function", "kwargs", "plugin", "plugin_name", "result")

    def __init__(
        self,
        impl: pluggy.HookImpl,
        function: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.plugin = impl.plugin
        self.plugin_name = impl.plugin_name
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.result: Any = None

    async def run(self) -> Any:
        """Call the implementation; await what it returns when that is awaitable."""
        result = self.function(*self.args, **self.kwargs)
        if inspect.isawaitable(result):
            result = await result
        self.result = result
        return result

    def __repr__(self) -> str:
        name = getattr(self.function, "__qualname__", repr(self.function))
        return f"<PendingCall {self.plugin_name}:{name}>"


def _defer(impl: pluggy.HookImpl) -> None:
    """Make pluggy's call of ``impl`` return a :class:`PendingCall` instead of running it."""
    function = impl.function

    def deferred(*args: Any, **kwargs: Any) -> PendingCall:
        return PendingCall(impl, function, args, kwargs)

    # HookImpl.function is a plain slot (typed Final); pluggy reads it at each call.
    impl.function = deferred  # type: ignore[misc]


_TURN_TEXTS = ("text", "reply_text")


def _turn_texts(turn: Any) -> dict[str, Any]:
    return {name: getattr(turn, name) for name in _TURN_TEXTS if hasattr(turn, name)}


def _restore_turn_texts(turn: Any, texts: dict[str, Any]) -> None:
    for name, value in texts.items():
        setattr(turn, name, value)


def describe_config_error(name: str, exc: ValidationError) -> str:
    """One line naming the plugin's section and every field that failed, with the reason."""
    parts = []
    for error in exc.errors():
        field_path = ".".join(str(p) for p in error["loc"]) or "(section)"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{field_path}: {message} (got {error.get('input')!r})")
    return f"invalid config in PLUGIN_CONFIG['{name}']: " + "; ".join(parts)


def _argnames(function: Any) -> list[str]:
    """The required argument names of a hook implementation (no ``self``)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    # Like pluggy, arguments with a default are optional extras and not checked against the spec.
    return [
        p.name
        for p in signature.parameters.values()
        if p.kind in kinds and p.default is inspect.Parameter.empty
    ]


def _load_entry_point(ep: EntryPoint) -> Any:
    """Import an entry point's module, then look up its object, telling the two failures apart."""
    module = importlib.import_module(ep.module)
    obj: Any = module
    for part in (ep.attr or "").split(".") if ep.attr else []:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise MissingEntryPointObject(
                f"entry point '{ep.name} = {ep.value}' names '{ep.attr}', "
                f"which module {ep.module} does not define"
            ) from None
    return obj


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
