"""Building the task table from every plugin's ``register_tasks`` (calling a task's declared code is in
:mod:`hub.tasks.info`).

Plugins declare in a stable order: the core's built-in plugin, then the shipped plugins, then the rest
by distribution name (:meth:`hub.plugins.HubPluginManager.order_key`). A hook that raises, or an
invalid entry, drops that plugin's tasks, and ``hub plugins`` shows why. A name or alias already taken
(by an earlier plugin, or earlier by the same one) is a clash: the first keeps it, and only the clashing
declaration is left out (a task whose name is taken, or just the alias), with a warning naming both
plugins; every other task of either plugin stays. Declarations are cheap data: the result class, loader
and save function are ``"module:attribute"`` references imported only when used.
"""
from __future__ import annotations

import re
import threading

from hub.declared import declared_fields
from hub.errors import HubError
from hub.tasks.info import (ADVICE, CORE, EXPORT_CHECKS, INPUT_KINDS, MODALITIES, ROUTES, TRAIN_KINDS, VIEWS, TaskInfo,
                            use_table)

_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]*$")
_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
FIELDS = ("name", "modality", "inputs", "result", "description", "aliases", "loader", "view", "save", "export", "route",
          "train_kind", "advice", "zero_shot", "needs_mask")
CHOICES = {"export": EXPORT_CHECKS, "route": ROUTES, "train_kind": TRAIN_KINDS, "advice": ADVICE}
REQUIRED = ("name", "modality", "inputs", "result")

_cache: tuple | None = None  # (plugin manager, its generation, tasks, aliases)
_lock = threading.Lock()
_local = threading.local()  # .building: this thread is inside a plugin's register_tasks


def current() -> tuple[dict[str, TaskInfo], dict[str, str]]:
    """(tasks by name, alias -> name) of the loaded plugins, rebuilt when the plugins change."""
    global _cache
    if getattr(_local, "building", False):  # a plugin's register_tasks looked a task up: the core's only
        return _core_table()
    from hub.plugins import get_plugin_manager

    pm = get_plugin_manager()
    cached = _cache
    if cached is None or cached[0] is not pm or cached[1] != pm.generation:
        with _lock:  # one thread builds; the others wait for its table
            cached = _cache
            if cached is None or cached[0] is not pm or cached[1] != pm.generation:
                generation = pm.generation
                _local.building = True
                try:
                    tasks, aliases = build(pm)
                finally:
                    _local.building = False
                cached = _cache = (pm, generation, tasks, aliases)
    return cached[2], cached[3]


use_table(current)


def invalidate() -> None:
    """Forget the table; the next lookup builds it again."""
    global _cache
    _cache = None


def may_declare(plugin: str) -> bool:
    """Whether ``plugin`` could bring a task not in the table: it is not loaded, or it declares tasks."""
    from hub.plugins import get_plugin_manager, plugin_impls

    pm = get_plugin_manager()
    if plugin not in pm.names():
        return True
    return plugin != CORE and any(name == plugin for name, _ in plugin_impls("register_tasks", pm))


def _core_table() -> tuple[dict[str, TaskInfo], dict[str, str]]:
    from hub.tasks.builtin import core_tasks

    tasks = {t.name: t for t in core_tasks()}
    return tasks, {a: t.name for t in tasks.values() for a in t.aliases}


def build(pm) -> tuple[dict[str, TaskInfo], dict[str, str]]:
    """The table from every plugin's declarations in plugin order; problems and clashes recorded against plugins."""
    from hub.plugins import plugin_impls

    tasks: dict[str, TaskInfo] = {}
    aliases: dict[str, str] = {}
    impls = plugin_impls("register_tasks", pm)  # the core first, then shipped plugins, then by distribution
    if not any(name == CORE for name, _ in impls):  # a bare manager: the core's tasks all the same
        tasks, aliases = _core_table()
    for name, impl in impls:
        for info in _declared(pm, name, impl) or ():
            kept = _settled(pm, name, info, tasks, aliases)
            if kept is not None:
                tasks[kept.name] = kept
                aliases.update({alias: kept.name for alias in kept.aliases})
    return tasks, aliases


def _declared(pm, name: str, impl) -> list[TaskInfo] | None:
    """One plugin's declarations, checked; None (and a problem recorded) when any is invalid."""
    from hub.plugins import guarded_call

    entries: list[TaskInfo] = []
    problems: list[str] = []

    def register(entry):
        try:
            entries.append(as_task(entry, name))
        except HubError as exc:
            problems.append(str(exc))

    try:
        guarded_call(name, "register_tasks", impl, {"register": register})
    except HubError as exc:
        pm.problem(name, f"register_tasks failed, its tasks are left out: {exc}", getattr(exc, "original", None) or exc)
        return None
    if problems:
        pm.problem(name, f"invalid task declarations, all of its tasks are left out: {_shown(problems)}")
        return None
    return entries


def _shown(problems: list[str]) -> str:
    return "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")


def _settled(pm, plugin: str, info: TaskInfo, tasks: dict, aliases: dict) -> TaskInfo | None:
    """``info`` without what an earlier declaration already took: None when its name is taken, else the
    task with only its free aliases. Each clash is recorded against ``plugin`` and warned about."""
    from dataclasses import replace

    owner = _owner(info.name, tasks, aliases)
    if owner is not None:
        _clash(pm, plugin, owner, f"the task '{info.name}'", _taken_as(info.name, tasks, aliases),
               "the task is left out")
        return None
    kept: list[str] = []
    for alias in dict.fromkeys(a for a in info.aliases if a != info.name):  # its own name twice is harmless
        owner = _owner(alias, tasks, aliases)
        if owner is None:
            kept.append(alias)
        else:
            _clash(pm, plugin, owner, f"the alias '{alias}' of task '{info.name}'", _taken_as(alias, tasks, aliases),
                   "the alias is left out")
    return info if tuple(kept) == info.aliases else replace(info, aliases=tuple(kept))


def _owner(key: str, tasks: dict, aliases: dict) -> str | None:
    if key in tasks:
        return tasks[key].plugin
    return tasks[aliases[key]].plugin if key in aliases else None


def _taken_as(key: str, tasks: dict, aliases: dict) -> str:
    return "a task name" if key in tasks else f"an alias of task '{aliases[key]}'"


def _clash(pm, plugin: str, owner: str, what: str, taken: str, outcome: str) -> None:
    """Record and warn that ``plugin`` declared ``what``, which ``owner`` (an earlier plugin, or itself) took."""
    import warnings

    from hub.errors import PluginClashWarning, capped

    if owner == plugin:
        message = f"plugin {pm.describe(plugin)} declares {what} twice ({taken} the first time); {outcome}"
    else:
        message = (f"plugin {pm.describe(plugin)} declares {what}, already {taken} declared by plugin "
                   f"{pm.describe(owner)}, which comes first (the core, then the shipped plugins, then the rest by "
                   f"distribution name); {outcome}, the other tasks of both plugins stay")
    message = capped(message)
    pm.problem(plugin, message)
    warnings.warn(message, PluginClashWarning, stacklevel=2)


# -- checking one declaration ---------------------------------------------------------------------
def as_task(entry, plugin: str) -> TaskInfo:
    """A checked TaskInfo from a declared dict or TaskInfo; a HubError naming the field otherwise."""
    data = declared_fields(entry, TaskInfo, "hub.tasks.TaskInfo", HubError)
    label = f"task {data.get('name')!r}"
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise HubError(f"{label}: unknown field(s) {', '.join(unknown)}; valid fields: {', '.join(FIELDS)}")
    missing = [k for k in REQUIRED if not data.get(k)]
    if missing:
        raise HubError(f"{label}: required field(s) missing or empty: {', '.join(missing)}")
    for check in (_check_strings, _check_names, _check_kinds, _check_refs):
        check(data, label, plugin)
    data["aliases"] = tuple(data.get("aliases") or ())
    data["view"] = data.get("view") or "table"
    data["advice"] = data.get("advice") or "labels"
    return TaskInfo(**data, plugin=plugin)


def _check_strings(data: dict, label: str, plugin: str) -> None:
    for key in ("name", "modality", "inputs", "result", "description", "loader", "view", "save", *CHOICES, "zero_shot"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise HubError(f"{label}: field '{key}' must be a string, got {type(value).__name__} {value!r}")
    aliases = data.get("aliases") or ()
    if isinstance(aliases, str) or not isinstance(aliases, (list, tuple)) or \
            not all(isinstance(a, str) for a in aliases):
        raise HubError(f"{label}: field 'aliases' must be a list of strings, got {aliases!r}")


def _check_names(data: dict, label: str, plugin: str) -> None:
    for key in (data["name"], *(data.get("aliases") or ())):
        if not _NAME.match(key):
            raise HubError(f"{label}: '{key}' is not a valid task name; use lower-case letters, digits and '-' "
                           "(e.g. 'object-detection')")


def _check_kinds(data: dict, label: str, plugin: str) -> None:
    if data["modality"] not in MODALITIES:
        raise HubError(f"{label}: unknown modality '{data['modality']}'; valid modalities: {', '.join(MODALITIES)}")
    view = data.get("view") or "table"
    if view not in VIEWS:
        raise HubError(f"{label}: unknown view '{view}'; valid views: {', '.join(VIEWS)}")
    for key, choices in CHOICES.items():
        if data.get(key) is not None and data[key] not in choices:
            raise HubError(f"{label}: unknown {key} '{data[key]}'; valid values: {', '.join(choices)} (or leave it out)")
    if not isinstance(data.get("needs_mask", False), bool):
        raise HubError(f"{label}: field 'needs_mask' must be true or false, got {data['needs_mask']!r}")
    if data.get("zero_shot") is not None and not _NAME.match(data["zero_shot"]):
        raise HubError(f"{label}: field 'zero_shot' must name a task, got {data['zero_shot']!r}")
    kind, loader = data["inputs"], data.get("loader")
    if kind in INPUT_KINDS and loader:
        raise HubError(f"{label}: inputs of kind '{kind}' are read by the hub; drop 'loader', or name a kind of "
                       "your own")
    if kind not in INPUT_KINDS:
        if not _NAME.match(kind):
            raise HubError(f"{label}: '{kind}' is not a valid input kind; use lower-case letters, digits and '-'")
        if not loader:
            raise HubError(f"{label}: inputs of the new kind '{kind}' need a 'loader' (\"module:function\" taking "
                           f"the bytes of one input); the hub reads only {', '.join(INPUT_KINDS)} itself")


def _check_refs(data: dict, label: str, plugin: str) -> None:
    result = data["result"]  # the core names classes of hub.tasks.results (checked by its tests, not here)
    if not _REF.match(result) and not (plugin == CORE and result.isidentifier()):
        raise HubError(f"{label}: field 'result' must name the result class as \"module:Class\", got {result!r}")
    for key in ("loader", "save"):
        value = data.get(key)
        if value is not None and not _REF.match(value):
            raise HubError(f"{label}: field '{key}' must name a function as \"module:function\", got {value!r}")
