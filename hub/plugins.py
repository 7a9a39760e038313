"""The plugin manager: entry points of the ``mmhub`` group, loaded like any third party's.

``HUB_PLUGINS`` restricts which plugins load: a comma-separated list of entry-point names
(``HUB_PLUGINS=transformers,timm``); an empty value loads none. Names that match no installed
plugin are reported by ``hub plugins``.

Every call into a plugin is isolated, so one faulty plugin never breaks another or the hub:

- importing it, and pluggy's validation of its hook implementations (a misspelled hook name or
  argument), happen in :meth:`HubPluginManager.add_plugin`; a failure is recorded in
  ``failures`` (shown by ``hub plugins``, with the traceback under ``--verbose``) and the plugin
  is left out;
- hooks about one model (``load_model``, ``trainable``, ...) are routed to the plugin named in
  ``spec.plugin`` only, through :func:`call_plugin`, which turns an unexpected exception into a
  :class:`hub.errors.PluginError` naming the plugin and what failed;
- broadcast hooks (``register_models``, ``register_commands``, ``spec_for_path``) are called
  plugin by plugin through :func:`plugin_impls`, so the caller can isolate each one, in a stable
  order (:meth:`HubPluginManager.order_key`): the core, then the shipped plugins, then the rest by
  distribution name. Where two plugins declare the same name, the first keeps it.

A plugin's import and every hook call run with ``sys.stdout`` sent to stderr
(:func:`hub.stdio.stdout_to_stderr`): a stray ``print()`` never corrupts ``--json`` output.
"""
from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field

import pluggy

from hub import hookspecs
from hub.errors import HubError, PluginError, capped
from hub.stdio import stdout_to_stderr

ENTRY_POINT_GROUP = "mmhub"
SLOW_IMPORT_S = 0.1
SHIPPED = {"transformers": "mmhub-transformers", "timm": "mmhub-timm", "openclip": "mmhub-openclip",
           "torchvision": "mmhub-torchvision"}  # short name -> distribution of the plugins shipped with the hub


@dataclass
class PluginInfo:
    """One row of ``hub plugins``: a loaded, failed or disabled plugin."""

    name: str
    version: str | None
    distribution: str | None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    import_ms: float | None = None
    warnings: list[str] = field(default_factory=list)
    disabled: bool = False
    loaded: bool = True

    @property
    def status(self) -> str:
        """ok, failed (not loaded), partial (loaded, some contribution dropped) or disabled."""
        if self.disabled:
            return "disabled"
        if not self.loaded:
            return "failed"
        return "partial" if self.error else "ok"

    def to_dict(self, verbose: bool = False) -> dict:
        data = {"name": self.name, "version": self.version, "distribution": self.distribution,
                "hooks": self.hooks, "status": self.status, "error": self.error,
                "import_ms": self.import_ms, "warnings": self.warnings}
        if verbose:
            data["traceback"] = self.traceback
        return data


class HubPluginManager(pluggy.PluginManager):
    """A pluggy manager that isolates each plugin and remembers which failed, and why."""

    def __init__(self):
        super().__init__("mmhub")
        self.add_hookspecs(hookspecs)
        self.failures: dict[str, PluginInfo] = {}  # plugins that could not be loaded
        self.problems: dict[str, list[tuple[str, str | None]]] = {}  # (message, traceback) of dropped parts
        self.dists: dict[str, tuple[str | None, str | None]] = {}
        self.import_ms: dict[str, float] = {}
        self.notes: dict[str, list[str]] = {}
        self.disabled: dict[str, tuple[str | None, str | None]] = {}
        self.unknown_requested: list[str] = []
        self.generation = 0  # bumped on every (un)registration: caches built on plugins compare it

    # -- registration ---------------------------------------------------------------------------
    def register(self, plugin, name=None):
        registered = super().register(plugin, name)
        self.generation += 1
        return registered

    def unregister(self, plugin=None, name=None):
        removed = super().unregister(plugin, name)
        self.generation += 1
        return removed

    def load_entry_points(self, allowed: set[str] | None) -> None:
        """Import and register every ``mmhub`` entry point (those in ``allowed``, when given)."""
        seen = set()
        for ep in _entry_points():
            seen.add(ep.name)
            if allowed is not None and ep.name not in allowed:
                self.disabled.setdefault(ep.name, _dist_info(ep))
                continue
            if ep.name == CORE:
                self.fail(CORE, f"the entry point name '{CORE}' belongs to the hub's built-in plugin; the "
                                "distribution must name its entry point otherwise", None, _dist_info(ep))
                continue
            if self.get_plugin(ep.name) is not None or ep.name in self.failures:
                continue
            self._load_entry_point(ep)
        if allowed:
            self.unknown_requested = sorted(allowed - seen)

    def _load_entry_point(self, ep) -> None:
        dist_info = _dist_info(ep)
        torch_before = "torch" in sys.modules
        started = time.perf_counter()
        try:
            with stdout_to_stderr():
                plugin = ep.load()
        except (Exception, SystemExit) as exc:  # a broken plugin must not break the hub
            self.fail(ep.name, f"import failed: {_brief(exc)}", exc, dist_info)
            return
        elapsed = time.perf_counter() - started
        self.import_ms[ep.name] = round(elapsed * 1000, 1)
        self.notes[ep.name] = _import_warnings(elapsed, not torch_before and "torch" in sys.modules)
        self.add_plugin(plugin, ep.name, dist_info)

    def add_plugin(self, plugin, name: str, dist_info: tuple[str | None, str | None] = (None, None)) -> bool:
        """Register ``plugin`` under ``name`` unless its hooks or its plugin-API pin are invalid; record why not."""
        from hub.plugin_api import plugin_api_problem

        api = plugin_api_problem(plugin)
        if api is not None:
            self.fail(name, f"incompatible plugin API: {api}", None, dist_info)
            return False
        try:
            self.register(plugin, name=name)
        except Exception as exc:  # pluggy.PluginValidationError (bad hook arguments), duplicate names
            if self.get_plugin(name) is plugin:
                self.unregister(name=name)
            self.fail(name, f"invalid hook implementation: {_brief(exc)}", exc, dist_info)
            return False
        unknown = [h.name for h in self.get_hookcallers(plugin) or [] if not h.has_spec()]
        if unknown:
            self.unregister(name=name)
            self.fail(name, _unknown_hooks_message(unknown), None, dist_info)
            return False
        self.dists[name] = dist_info
        return True

    def fail(self, name: str, message: str, exc: BaseException | None = None,
             dist_info: tuple[str | None, str | None] | None = None) -> None:
        """Record that plugin ``name`` failed; the first failure recorded is the one shown."""
        if name in self.failures:
            return
        dist, version = dist_info or self.dists.get(name, (None, None))
        tb = _traceback_text(exc)
        self.failures[name] = PluginInfo(name, version, dist, error=capped(message), traceback=tb, loaded=False,
                                         import_ms=self.import_ms.get(name), warnings=self.notes.get(name, []))

    def problem(self, name: str, message: str, exc: BaseException | None = None) -> None:
        """Record that a contribution of the loaded plugin ``name`` failed and was dropped."""
        tb = _traceback_text(exc)
        message = capped(message)
        entries = self.problems.setdefault(name, [])
        if message not in (m for m, _ in entries):
            entries.append((message, tb))

    # -- queries --------------------------------------------------------------------------------
    def info(self) -> list[PluginInfo]:
        """Every loaded, failed and disabled plugin, sorted by name."""
        rows = []
        for name, plugin in self.list_name_plugin():
            if name in self.failures or (name == CORE and plugin is _core_plugin() and name not in self.problems):
                continue  # the hub's own built-in plugin is shown only when something went wrong in it
            dist, version = self.dists.get(name, (None, None))
            hooks = sorted(h.name for h in self.get_hookcallers(plugin) or [])
            problems = self.problems.get(name, [])
            rows.append(PluginInfo(name, version, dist, hooks, import_ms=self.import_ms.get(name),
                                   warnings=self.notes.get(name, []),
                                   error="; ".join(m for m, _ in problems) or None,
                                   traceback="\n".join(t for _, t in problems if t) or None))
        rows.extend(self.failures.values())
        rows.extend(PluginInfo(name, version, dist, disabled=True)
                    for name, (dist, version) in self.disabled.items() if name not in self.failures)
        return sorted(rows, key=lambda r: r.name)

    def names(self) -> set[str]:
        """The names of the plugins that loaded."""
        return {name for name, _ in self.list_name_plugin()}

    def order_key(self, name: str) -> tuple:
        """Where plugin ``name`` comes when plugins are asked in turn: the core first, then the shipped
        plugins, then the rest, each by distribution name (a plugin registered in-process: by its name).
        Renaming an entry point never changes which of two plugins comes first."""
        if name == CORE:
            return (0, "", "")
        dist = self.dists.get(name, (None, None))[0]
        shipped = dist is not None and canonical(dist) in {canonical(d) for d in SHIPPED.values()}
        return (1 if shipped else 2, canonical(dist or name), name)

    def describe(self, name: str) -> str:
        """``'name' (distribution d)`` for messages that name a plugin."""
        dist = self.dists.get(name, (None, None))[0]
        return f"'{name}'" + (f" (distribution {dist})" if dist and name != CORE else "")


def canonical(name: str) -> str:
    """A distribution name as pip compares them: lower case, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()




def _dist_info(ep) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", None), getattr(dist, "version", None)


def _traceback_text(exc: BaseException | None) -> str | None:
    """The formatted traceback of ``exc`` (None without one); traceback is imported only when a plugin failed."""
    if exc is None:
        return None
    import traceback

    return "".join(traceback.format_exception(exc))


def _brief(exc: BaseException) -> str:
    """``Type: message`` on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import_warnings(elapsed_s: float, imported_torch: bool) -> list[str]:
    notes = []
    if imported_torch:
        notes.append("imports torch when the plugin is imported, which slows every hub command; "
                     "import torch inside load_model/trainable instead")
    if elapsed_s > SLOW_IMPORT_S:
        notes.append(f"takes {elapsed_s * 1000:.0f} ms to import (over {SLOW_IMPORT_S * 1000:.0f} ms); "
                     "import heavy libraries inside the hooks that need them")
    return notes


def _unknown_hooks_message(unknown: list[str]) -> str:
    import difflib

    known = [name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "mmhub_spec")]
    parts = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        parts.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    return (f"invalid hook implementation: unknown hook {', '.join(parts)}; "
            f"known hooks: {', '.join(sorted(known))}")


def _entry_points():
    """The ``mmhub`` entry points, the first of each name (cached while no distribution changes: hub.entry_points)."""
    from hub.entry_points import entry_points

    return entry_points(ENTRY_POINT_GROUP)


def installed_plugin_names() -> list[str]:
    """Names of every ``mmhub`` entry point installed, loaded or not."""
    return sorted(ep.name for ep in _entry_points())


def plugin_switch_notes(pm: HubPluginManager) -> list[str]:
    """What ``HUB_PLUGINS`` did: names it gave that match no plugin, and plugins it disabled."""
    raw = os.environ.get("HUB_PLUGINS")
    if raw is None:
        return []
    installed = ", ".join(installed_plugin_names()) or "none"
    notes = []
    if pm.unknown_requested:
        notes.append(f"HUB_PLUGINS names plugin(s) that are not installed: {', '.join(pm.unknown_requested)} "
                     f"(installed plugins: {installed})")
    if not raw.replace(",", "").strip() and pm.disabled:
        notes.append(f"HUB_PLUGINS is set to an empty value, which disables all {len(pm.disabled)} installed "
                     f"plugins ({installed}); unset it, or list the plugins to load")
    elif pm.disabled:
        notes.append(f"HUB_PLUGINS={raw} disables the installed plugin(s) {', '.join(sorted(pm.disabled))}")
    return notes


def allowed_plugins() -> set[str] | None:
    raw = os.environ.get("HUB_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


# -- calling plugins ------------------------------------------------------------------------------
def plugin_impls(hook_name: str, pm: HubPluginManager | None = None) -> list[tuple[str, object]]:
    """``(plugin name, hook implementation)`` for every enabled plugin implementing ``hook_name``."""
    pm = pm or get_plugin_manager()
    caller = getattr(pm.hook, hook_name, None)
    if caller is None:
        return []
    impls = [i for i in caller.get_hookimpls() if not (i.hookwrapper or i.wrapper)]
    return sorted(((i.plugin_name, i) for i in impls), key=lambda pair: pm.order_key(pair[0]))


def invoke_impl(impl, kwargs: dict):
    """Call one hook implementation with the arguments it declares, the way pluggy would."""
    args = [kwargs[name] for name in impl.argnames]
    return impl.function(*args, **{k: kwargs[k] for k in impl.kwargnames if k in kwargs})


def call_plugin(plugin_name: str, hook_name: str, **kwargs):
    """Call ``hook_name`` of plugin ``plugin_name`` only; None if that plugin does not implement it.

    A :class:`hub.errors.HubError` raised by the plugin passes through (it is meant for the user);
    any other exception becomes a :class:`hub.errors.PluginError` naming the plugin and what
    failed, with the original kept as ``original`` and ``__cause__``.
    """
    pm = get_plugin_manager()
    for name, impl in plugin_impls(hook_name, pm):
        if name == plugin_name:
            return guarded_call(plugin_name, hook_name, impl, kwargs)
    return None


def guarded_call(plugin_name: str, hook_name: str, impl, kwargs: dict):
    """Run one implementation (stdout sent to stderr); unexpected exceptions become a PluginError."""
    try:
        with stdout_to_stderr():
            return invoke_impl(impl, kwargs)
    except HubError:
        raise
    except (Exception, SystemExit) as exc:
        raise PluginError(plugin_name, f"plugin '{plugin_name}' failed {describe_call(hook_name, kwargs)}: "
                                       f"{_brief(exc)}. Run with --debug for the traceback.", exc) from exc


_CALLS = {
    "load_model": "while loading model '{id}'",
    "trainable": "while preparing model '{id}' for training",
    "model_options": "while listing the options of model '{id}'",
    "spec_for_path": "while reading the model directory '{path}'",
    "register_models": "while registering its models",
    "register_commands": "while adding its commands",
    "register_tasks": "while declaring its tasks",
    "register_backends": "while declaring its backends",
}


def describe_call(hook_name: str, kwargs: dict) -> str:
    """What a hook call was doing, for error messages: ``while loading model 'x'``."""
    spec = kwargs.get("spec")
    values = {"id": getattr(spec, "id", "?"), "path": kwargs.get("path", "?")}
    return _CALLS.get(hook_name, f"in its {hook_name} hook" + (" for model '{id}'" if spec else "")).format(**values)


def require_plugin(plugin_name: str, model_id: str) -> None:
    """Raise a HubError unless ``plugin_name`` is loaded, saying whether it failed or is missing."""
    from hub.errors import PluginNotInstalledError

    pm = get_plugin_manager()
    if plugin_name in pm.names():
        return
    if plugin_name in pm.disabled:
        raise HubError(f"model '{model_id}' is served by the plugin '{plugin_name}', which is installed but "
                       f"disabled by HUB_PLUGINS={os.environ.get('HUB_PLUGINS', '')!r}. Add '{plugin_name}' to "
                       "HUB_PLUGINS, or unset it to load every plugin.")
    failed = pm.failures.get(plugin_name)
    if failed is not None:
        raise PluginError(plugin_name, f"model '{model_id}' is served by the plugin '{plugin_name}', which is "
                                       f"disabled because it failed: {failed.error}. Run 'hub plugins --verbose' "
                                       "for details, and update or reinstall the plugin.")
    raise PluginNotInstalledError(model_id, plugin_name)


CORE = "core"  # the name of the hub's built-in plugin; no entry point may take it
CORE_PLUGIN = "hub.tasks.builtin"  # loaded by module name, as an entry point is: the manager imports no task code


def _core_plugin():
    import importlib

    return importlib.import_module(CORE_PLUGIN)


def _hub_version() -> str:
    from hub import __version__

    return __version__


_manager: HubPluginManager | None = None


def get_plugin_manager() -> HubPluginManager:
    """The process-wide plugin manager, built on first use."""
    global _manager
    if _manager is None:
        pm = HubPluginManager()
        pm.add_plugin(_core_plugin(), CORE, ("mmhub", _hub_version()))  # first: the core's own tasks
        pm.load_entry_points(allowed_plugins())
        _manager = pm
    return _manager


def reset_plugin_manager() -> None:
    """Forget loaded plugins (tests, and after ``hub install``/``uninstall``); caches rebuild."""
    global _manager
    _manager = None
