"""A task's declaration (:class:`TaskInfo`), calling the code it names, and looking tasks up: no plugin manager.

A declaration names its result class, loader and save function as ``"module:attribute"`` references,
imported only when used (:mod:`hub.refs`). ``TASKS``, ``ALIASES`` and :func:`resolve_task` read the table of
every declared task, which :mod:`hub.tasks.table` builds from the plugins and hands in (:func:`use_table`);
:mod:`hub.tasks` re-exports what is here.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hub.errors import HubError, InputError, PluginError, UnknownTaskError
from hub.refs import resolve_ref
from hub.stdio import stdout_to_stderr

MODALITIES = ("nlp", "vision", "speech", "crossmodal")
INPUT_KINDS = ("text", "image", "audio", "image+text")  # read by the hub itself; other kinds need a loader
VIEWS = ("table", "text")
CORE = "core"
# What a task's declaration says about the services, so that none of them checks task names (see TaskInfo):
EXPORT_CHECKS = ("embedding", "classification", "image-text", "zero-shot")  # how hub export compares an export
ROUTES = ("embeddings", "transcriptions", "rerank")  # the server's OpenAI-style routes beside /v1/run
TRAIN_KINDS = ("classification", "contrastive", "ctc")  # the built-in training kinds (hub.train.adapter.KINDS)
ADVICE = ("labels", "no-training", "embedding", "generator")  # hub recommend --examples: what labelled data buys


@dataclass(frozen=True)
class TaskInfo:
    """One row of the task table: a task, what it takes and gives, and how the CLI shows and saves it.

    ``result`` names the result class: a class of :mod:`hub.tasks.results` by name (the core's tasks)
    or ``"module:Class"``, imported only when a result is read back. ``loader`` (``"module:function"``)
    turns the bytes of one input into what the pipeline takes, for an input kind the hub does not read
    itself. ``save`` (``"module:function"``) writes a result's files for ``hub run --save-dir``.
    ``plugin`` is the plugin that declared the task (set by the hub).

    What the services do with the task comes from here, never from its name:
    ``export`` (one of :data:`EXPORT_CHECKS`): ``hub export`` can export it and compares the export with torch
    on embeddings, on classification results, on both CLIP towers (``image-text``) or on both towers and
    zero-shot labels (``zero-shot``); None: not exportable. ``route`` (one of :data:`ROUTES`): the server's
    OpenAI-style route that serves it. ``train_kind`` (one of :data:`TRAIN_KINDS`): ``hub finetune`` trains
    it with that built-in kind (else only a plugin's own kind can). ``advice`` (one of :data:`ADVICE`, default
    ``labels``) and ``zero_shot`` (the task that scores free-text labels instead): what ``hub recommend
    --examples`` advises. ``needs_mask``: each text input holds the model's mask token (sample inputs get one).
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
    export: str | None = None
    route: str | None = None
    train_kind: str | None = None
    advice: str = "labels"
    zero_shot: str | None = None
    needs_mask: bool = False
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
        return resolve_result(self)

    def load_input(self, data: bytes, name: str):
        """One input of this task's own kind from its bytes, through the declared loader."""
        return load_input(self, data, name)

    def save_files(self, result, input_name: str, source_input, out_dir) -> list:
        """Write ``result``'s files under ``out_dir`` through the declared ``save``; the paths written."""
        return save_files(self, result, input_name, source_input, out_dir)


# -- the table of every declared task ---------------------------------------------------------------------
# Built from the plugins by hub.tasks.table, which needs the plugin manager (a higher layer): it hands its
# builder in through use_table() when it is imported, and hub.tasks imports it, so any import of hub.tasks
# or of a module under it (this one included) sets it before a lookup can run.
_source: Callable[[], tuple[dict, dict]] | None = None


def use_table(source: Callable[[], tuple[dict, dict]]) -> None:
    """Read ``TASKS`` and ``ALIASES`` from ``source()``: (tasks by name, alias -> task name)."""
    global _source
    _source = source


class _Table(Mapping):
    """A read-only view of one part of the current task table (tasks or aliases)."""

    def __init__(self, part: int):
        self._part = part

    def _data(self) -> dict:
        if _source is None:
            raise RuntimeError("the task table is not there yet: import hub.tasks, which builds it")
        return _source()[self._part]

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


def tasks_with(**fields) -> list[str]:
    """The names of the tasks whose declarations have every given field value (e.g. ``route="embeddings"``),
    in table order; services find the task they serve this way, never by its name."""
    return [t.name for t in TASKS.values() if all(getattr(t, key) == value for key, value in fields.items())]


def task_with(**fields) -> str | None:
    """The first task (in table order: the core's first) whose declaration has every given field value."""
    found = tasks_with(**fields)
    return found[0] if found else None


# -- using a declaration --------------------------------------------------------------------------
def _resolved(info: TaskInfo, key: str):
    """The object a declared reference names, imported now; a PluginError naming the plugin otherwise."""
    ref = getattr(info, key)
    try:
        with stdout_to_stderr():
            return resolve_ref(ref)
    except HubError:
        raise
    except (Exception, SystemExit) as exc:
        raise PluginError(info.plugin, f"plugin '{info.plugin}' declares the {key} of task '{info.name}' as "
                                       f"'{ref}', which cannot be imported: {type(exc).__name__}: {exc}. "
                                       "Update or reinstall the plugin.", exc) from exc


def resolve_result(info: TaskInfo) -> type:
    """The result class of ``info``; it must have ``to_dict``, ``from_dict`` and ``summary``."""
    from hub.tasks.results import RESULT_TYPES

    cls = RESULT_TYPES[info.result] if info.result in RESULT_TYPES else _resolved(info, "result")
    lacking = [m for m in ("to_dict", "from_dict", "summary") if not callable(getattr(cls, m, None))]
    if not isinstance(cls, type) or lacking:
        raise PluginError(info.plugin, f"plugin '{info.plugin}' declares '{info.result}' as the result of task "
                                       f"'{info.name}', but it is not a result class (it lacks "
                                       f"{', '.join(lacking) or 'a class'}); subclass hub.tasks.results.Result")
    return cls


def load_input(info: TaskInfo, data: bytes, name: str):
    """One input of ``info``'s own kind read by its loader; an InputError naming ``name`` if it is unusable."""
    loader = _resolved(info, "loader")
    try:
        with stdout_to_stderr():
            return loader(data)
    except HubError as exc:
        raise InputError(f"{name}: {exc}") from None
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InputError(f"{name} is not a valid input of kind '{info.inputs}' for task '{info.name}': {exc}") \
            from None
    except Exception as exc:
        raise PluginError(info.plugin, f"plugin '{info.plugin}' failed while reading {name} for task "
                                       f"'{info.name}': {type(exc).__name__}: {exc}", exc) from exc


def save_files(info: TaskInfo, result, input_name: str, source_input, out_dir) -> list:
    """The files ``info``'s save function wrote for one result; each must lie under ``out_dir``."""
    from pathlib import Path

    if info.save is None:
        raise HubError(f"task '{info.name}' writes no files; drop --save-dir")
    save = _resolved(info, "save")
    root = Path(out_dir).resolve()
    try:
        with stdout_to_stderr():
            written = [Path(p) for p in (save(result, input_name, source_input, root) or [])]
    except HubError:
        raise
    except Exception as exc:
        raise PluginError(info.plugin, f"plugin '{info.plugin}' failed while saving the files of '{input_name}' "
                                       f"(task '{info.name}'): {type(exc).__name__}: {exc}", exc) from exc
    outside = [str(p) for p in written if root not in p.resolve().parents]
    if outside:
        raise PluginError(info.plugin, f"plugin '{info.plugin}' wrote {', '.join(outside)} outside the --save-dir "
                                       f"'{root}' (task '{info.name}'); report it to the plugin's authors")
    return written
