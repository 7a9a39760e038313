"""The backends that run a model's forward pass: the one list the device manager, the CLI's ``--backend`` and
``--format`` choices, ``hub export``, the runtime sessions and ``hub bench`` read.

``torch`` runs the model itself; each runtime runs the graphs of an export (:mod:`hub.export`) in the formats
it reads; ``auto`` picks what ``hub bench`` measured fastest (:mod:`hub.export.backends`).

Runtimes are an extension point, as tasks are: every plugin may declare some through the
``register_backends`` hook (:mod:`hub.hookspecs`), the core first (its ``onnx`` and ``openvino``, declared in
:mod:`hub.tasks.builtin`), then the shipped plugins, then the rest by distribution name; a name declared twice
stays with the first. A declaration names its graph opener as ``"module:function"``, imported only when a
graph opens, so listing the backends imports no runtime. ``RUNTIMES``, ``RUNTIME_NAMES`` and ``BACKENDS``
read the table when used (built once per plugin set), never when imported.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hub.declared import declared_fields

TORCH, AUTO = "torch", "auto"
FIELDS = ("name", "library", "suffix", "reads", "opener")
_NAME = r"^[a-z][a-z0-9_-]*$"  # patterns compiled when a declaration is checked, not when this is imported
_REF = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"


@dataclass(frozen=True)
class RuntimeInfo:
    """A runtime backend: what runs it, which export formats it reads, and how it opens a graph.

    ``library`` is the distribution that runs its graphs (named when missing, its version keys cached exports);
    ``suffix`` the graph file's suffix in an export of its own format; ``reads`` the export formats it runs, its
    own first (an export made for it on first use is written in that format); ``opener`` ``"module:function"``
    taking ``(path, threads, dtype)`` and returning a :class:`hub.export.runtime.Graph`. ``plugin`` is the plugin
    that declared it (set by the hub)."""

    name: str
    library: str
    suffix: str
    reads: tuple[str, ...]
    opener: str
    plugin: str = "core"


def as_runtime(entry, plugin: str) -> RuntimeInfo:
    """A checked RuntimeInfo from a declared dict or RuntimeInfo; a ValueError naming the field otherwise."""
    data = declared_fields(entry, RuntimeInfo, "hub.runtimes.RuntimeInfo", ValueError)
    label = f"backend {data.get('name')!r}"
    unknown = sorted(set(data) - set(FIELDS))
    missing = [key for key in FIELDS if not data.get(key)]
    if unknown or missing:
        raise ValueError(f"{label}: " + "; ".join(
            ([f"unknown field(s) {', '.join(unknown)}"] if unknown else []) +
            ([f"required field(s) missing or empty: {', '.join(missing)}"] if missing else [])) +
            f"; the fields are {', '.join(FIELDS)}")
    reads = data["reads"]
    if isinstance(reads, str) or not isinstance(reads, (list, tuple)):
        raise ValueError(f"{label}: 'reads' must be a list of export format names, got {reads!r}")
    for key, value in [("name", data["name"]), *(("reads", r) for r in reads)]:
        if not isinstance(value, str) or not re.match(_NAME, value):
            raise ValueError(f"{label}: '{key}' holds {value!r}, not a name (lower-case letters, digits, '-', '_')")
    if data["name"] in (TORCH, AUTO):
        raise ValueError(f"{label}: '{data['name']}' is the hub's own backend name; choose another")
    if not isinstance(data["suffix"], str) or not re.match(r"^\.\w+$", data["suffix"]):
        raise ValueError(f"{label}: 'suffix' must be a file suffix such as '.gguf', got {data['suffix']!r}")
    if not isinstance(data["opener"], str) or not re.match(_REF, data["opener"]):
        raise ValueError(f"{label}: 'opener' must name a function as \"module:function\", got {data['opener']!r}")
    if not isinstance(data["library"], str):
        raise ValueError(f"{label}: 'library' must be a distribution name, got {data['library']!r}")
    return RuntimeInfo(data["name"], data["library"], data["suffix"], tuple(reads), data["opener"], plugin)


# -- the table of every declared runtime ------------------------------------------------------------------
_cache: tuple | None = None  # (plugin manager, its generation, runtimes by name)
_lock = threading.Lock()


def runtime_table() -> dict[str, RuntimeInfo]:
    """Every declared runtime by name, in plugin order (the core's first); built once per plugin set."""
    global _cache
    from hub.plugins import get_plugin_manager

    pm = get_plugin_manager()
    with _lock:
        if _cache is None or _cache[:2] != (id(pm), pm.generation):
            _cache = (id(pm), pm.generation, _build(pm))
        return _cache[2]


def _build(pm) -> dict[str, RuntimeInfo]:
    import warnings

    from hub.errors import HubError, PluginClashWarning, capped
    from hub.plugins import guarded_call, plugin_impls

    table: dict[str, RuntimeInfo] = {}
    for plugin, impl in plugin_impls("register_backends", pm):
        declared: list = []
        try:
            guarded_call(plugin, "register_backends", impl, {"register": declared.append})
            found = [as_runtime(entry, plugin) for entry in declared]
        except (HubError, ValueError) as exc:
            pm.problem(plugin, f"register_backends failed, its backends are left out: {exc}",
                       getattr(exc, "original", None) or exc)
            continue
        for info in found:
            if info.name in table:
                message = capped(f"plugin {pm.describe(plugin)} declares the backend '{info.name}', already declared "
                                 f"by plugin {pm.describe(table[info.name].plugin)}, which comes first; the later "
                                 "declaration is left out")
                pm.problem(plugin, message)
                warnings.warn(message, PluginClashWarning, stacklevel=2)
            else:
                table[info.name] = info
    return table


def invalidate() -> None:
    global _cache
    _cache = None


class _Runtimes(Mapping):
    """``RUNTIMES``: name -> RuntimeInfo, read from the table when used."""

    def __getitem__(self, key):
        return runtime_table()[key]

    def __iter__(self):
        return iter(runtime_table())

    def __len__(self) -> int:
        return len(runtime_table())

    def __repr__(self) -> str:
        return repr(runtime_table())


class _Names(Sequence):
    """A tuple of names read from the table when used; equal to a tuple with the same names."""

    def __init__(self, names):
        self._names = names

    def __getitem__(self, index):
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and not isinstance(other, str) and tuple(self) == tuple(other)

    __hash__ = None

    def __repr__(self) -> str:
        return repr(self._names())


def _export_formats() -> tuple[str, ...]:
    from hub.tasks.builtin import CORE_BACKENDS  # read when used: importing hub.runtimes imports no task code

    return tuple(b["name"] for b in CORE_BACKENDS)


RUNTIMES = _Runtimes()
EXPORT_FORMATS = _Names(_export_formats)  # what hub export writes: the core runtimes' own formats
RUNTIME_NAMES = _Names(lambda: tuple(runtime_table()))  # every runtime, the core's first
BACKENDS = _Names(lambda: (TORCH, *runtime_table(), AUTO))


def runtimes_reading(fmt: str) -> tuple[str, ...]:
    """The runtimes that run an export of format ``fmt``, those whose own format it is first."""
    readers = [name for name, info in runtime_table().items() if fmt in info.reads]
    return tuple(sorted(readers, key=lambda name: runtime_table()[name].reads.index(fmt)))
