"""The task table: every task the hub knows, by modality. Cheap to import (no torch).

Tasks are declared through the ``register_tasks`` hook: the core's own tasks by its built-in plugin
(:mod:`hub.tasks.builtin`, named ``core``), any other by the plugin that brings it. ``TASKS`` and
``ALIASES`` are read-only mappings built from every loaded plugin's declarations on first use (see
:mod:`hub.tasks.table`), and rebuilt when plugins change.

The result types of the core's tasks live in :mod:`hub.tasks.results`; the pipeline base class that
plugins subclass lives in :mod:`hub.tasks.base` and imports torch only when used.
"""
from __future__ import annotations

from hub.errors import UnknownTaskError
from hub.tasks import table as _table  # builds the table that TASKS and ALIASES read (see hub.tasks.info)
from hub.tasks.info import (ALIASES, CORE, INPUT_KINDS, MODALITIES, TASKS, VIEWS, TaskInfo, list_tasks, normalised,
                            resolve_task, task_info, task_with, tasks_with)

__all__ = ["ALIASES", "CORE", "INPUT_KINDS", "MODALITIES", "TASKS", "VIEWS", "TaskInfo", "list_tasks", "normalised",
           "resolve_task", "task_info", "task_with", "tasks_with", "UnknownTaskError"]
