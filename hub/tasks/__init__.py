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

from hub.errors import UnknownTaskError
from hub.tasks.info import CORE, INPUT_KINDS, MODALITIES, VIEWS, TaskInfo

__all__ = ["ALIASES", "CORE", "INPUT_KINDS", "MODALITIES", "TASKS", "VIEWS", "TaskInfo", "list_tasks", "normalised",
           "resolve_task", "task_info"]

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
