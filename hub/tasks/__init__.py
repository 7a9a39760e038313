"""The task table: every task the hub knows, by modality. Cheap to import (no torch).

Tasks are declared through the ``register_tasks`` hook: the core's own tasks by its built-in plugin
(:mod:`hub.tasks.builtin`, named ``core``), any other by the plugin that brings it. ``TASKS`` and
``ALIASES`` are read-only mappings built from every loaded plugin's declarations on first use (see
:mod:`hub.tasks.table`), and rebuilt when plugins change.

The result types of the core's tasks live in :mod:`hub.tasks.results`; the pipeline base class that
plugins subclass lives in :mod:`hub.tasks.base` and imports torch only when used.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hub.errors import UnknownTaskError

MODALITIES = ("nlp", "vision", "speech", "crossmodal")
INPUT_KINDS = ("text", "image", "audio", "image+text")  # read by the hub itself; other kinds need a loader
VIEWS = ("table", "text")
CORE = "core"


@dataclass(frozen=True)
class TaskInfo:
    """One row of the task table: a task, what it takes and gives, and how the CLI shows and saves it.

    ``result`` names the result class: a class of :mod:`hub.tasks.results` by name (the core's tasks)
    or ``"module:Class"``, imported only when a result is read back. ``loader`` (``"module:function"``)
    turns the bytes of one input into what the pipeline takes, for an input kind the hub does not read
    itself. ``save`` (``"module:function"``) writes a result's files for ``hub run --save-dir``.
    ``plugin`` is the plugin that declared the task (set by the hub).
    """

    name: str
    modality: str
    inputs: str
    result: str
    description: str = ""
    aliases: tuple[str, ...] = field(default=())
    loader: str | None = None
    view: str = "table"
    save: str | None = None
    plugin: str = CORE

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "modality": self.modality,
            "inputs": self.inputs,
            "result": self.result,
            "description": self.description,
            "aliases": list(self.aliases),
            "view": self.view,
            "saves_files": self.save is not None,
            "plugin": self.plugin,
        }

    def result_type(self) -> type:
        """The result class, imported now; a PluginError naming the plugin when it cannot be imported."""
        from hub.tasks.table import resolve_result

        return resolve_result(self)

    def load_input(self, data: bytes, name: str):
        """One input of this task's own kind from its bytes, through the declared loader."""
        from hub.tasks.table import load_input

        return load_input(self, data, name)

    def save_files(self, result, input_name: str, source_input, out_dir) -> list:
        """Write ``result``'s files under ``out_dir`` through the declared ``save``; the paths written."""
        from hub.tasks.table import save_files

        return save_files(self, result, input_name, source_input, out_dir)


class _Table(Mapping):
    """A read-only view of one part of the current task table (tasks or aliases)."""

    def __init__(self, part: int):
        self._part = part

    def _data(self) -> dict:
        from hub.tasks.table import current

        return current()[self._part]

    def __getitem__(self, key):
        return self._data()[key]

    def __iter__(self):
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __contains__(self, key) -> bool:
        return key in self._data()

    def __repr__(self) -> str:
        return repr(self._data())


TASKS: Mapping[str, TaskInfo] = _Table(0)
ALIASES: Mapping[str, str] = _Table(1)


def normalised(name: str) -> str:
    """A task name as the table spells it: trimmed, lower case, '-' for '_'."""
    return name.strip().lower().replace("_", "-")


def resolve_task(name: str) -> str:
    """Return the canonical task name for ``name`` or one of its aliases."""
    key = normalised(name)
    if key in TASKS:
        return key
    if key in ALIASES:
        return ALIASES[key]
    raise UnknownTaskError(name, sorted(TASKS))


def task_info(name: str) -> TaskInfo:
    """The row of a task named by its name or an alias."""
    return TASKS[resolve_task(name)]


def list_tasks(modality: str | None = None) -> list[TaskInfo]:
    """Every task (of ``modality``, when given): the core's first, then each plugin's, as declared."""
    return [t for t in TASKS.values() if modality is None or t.modality == modality]
