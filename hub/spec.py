"""``ModelSpec``: everything the hub knows about one model without loading it, and the checks of its fields.

A value of the lowest layer: task names are checked against the task table through :mod:`hub.tasks.info`;
the catalogue that gathers specs from files and plugins is :mod:`hub.registry`, which re-exports what is here.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

from hub.errors import CatalogError, TaskMismatchError, UnknownTaskError
from hub.tasks.info import TASKS, normalised, resolve_task

REQUIRED_FIELDS = ("task", "plugin", "source")


@dataclass
class ModelSpec:
    """Everything the hub knows about one model without loading it."""

    id: str
    task: str
    plugin: str
    source: str  # "hf-hub:org/name", "package:module/subdir" or a local directory
    revision: str | None = None  # pinned commit of the hub repository
    local: str | None = None  # a local copy tried before ``source`` (same forms as source)
    arch: str | None = None  # library architecture name (timm/open_clip model name)
    pretrained: str | None = None  # library pretrained tag (open_clip), when the source needs one
    aliases: list[str] = field(default_factory=list)
    params: int | None = None
    license: str | None = None
    description: str = ""
    preprocess: dict = field(default_factory=dict)  # settings bound to the weights
    options: dict = field(default_factory=dict)  # plugin-specific extras
    accuracy: dict | None = None  # published quality: {metric, value, source} (see hub.published)
    flops: dict | None = None  # published compute per input: {gflops or gmacs, source}
    origin: str = ""  # the file or plugin that declared the entry

    @property
    def modality(self) -> str:
        """The task's modality; 'unknown' for a task that no loaded plugin declares."""
        info = TASKS.get(self.task)
        return info.modality if info is not None else "unknown"

    def with_task(self, task: str) -> "ModelSpec":
        """This spec run for ``task`` (a name or alias), which must take the same modality of inputs."""
        from dataclasses import replace

        wanted = resolve_task(task)
        if wanted == self.task:
            return self
        if TASKS[wanted].modality != self.modality:
            servable = [name for name, info in TASKS.items() if info.modality == self.modality]
            raise TaskMismatchError(self.id, self.task, wanted, servable)
        return replace(self, task=wanted)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["modality"] = self.modality
        return data

    @classmethod
    def from_mapping(cls, model_id: str, data: dict, origin: str,
                     undeclared_task_ok: Callable[[str], bool] | None = None) -> "ModelSpec":
        """Build a spec from a catalogue mapping, naming origin/entry/field on any problem.

        With ``undeclared_task_ok`` (catalogue files: :func:`hub.tasks.table.may_declare`, which tells whether
        a plugin could bring a task not in the table) a task that no loaded plugin declares is kept as written
        when the entry's plugin could bring it (it is not loaded, or it declares tasks): the entry is listed
        only under ``hub list --all`` until that plugin's declaration is there.
        """
        if not isinstance(data, dict):
            raise CatalogError(origin, model_id, None, f"expected a mapping of fields, got {type(data).__name__}")
        known = {f.name for f in fields(cls)} - {"id", "origin"}
        for key in data:
            if key not in known:
                raise CatalogError(origin, model_id, key, f"unknown field; valid fields: {', '.join(sorted(known))}")
        for key in REQUIRED_FIELDS:
            if not data.get(key):
                raise CatalogError(origin, model_id, key, "required field is missing or empty")
        values = dict(data)
        try:
            values["task"] = resolve_task(str(data["task"]))
        except UnknownTaskError as exc:
            if not (undeclared_task_ok and isinstance(data["task"], str) and undeclared_task_ok(str(data["plugin"]))):
                raise CatalogError(origin, model_id, "task", str(exc)) from None
            values["task"] = normalised(data["task"])
        _check_types(values, origin, model_id)
        _check_revision(values.get("revision"), origin, model_id)
        _check_published(values, origin, model_id)
        values["aliases"] = [str(a) for a in values.get("aliases") or []]
        return cls(id=str(model_id), origin=str(origin), **values)


_TYPES = {
    "aliases": list, "params": int, "preprocess": dict, "options": dict,
    "plugin": str, "source": str, "revision": str, "local": str, "arch": str,
    "pretrained": str, "license": str, "description": str, "accuracy": dict, "flops": dict,
}


def _check_types(values: dict, origin: str, model_id: str) -> None:
    for key, expected in _TYPES.items():
        value = values.get(key)
        if value is None:
            continue
        if expected is int and isinstance(value, bool) or not isinstance(value, expected):
            raise CatalogError(origin, model_id, key, f"expected {expected.__name__}, got {type(value).__name__} {value!r}")


def _check_published(values: dict, origin: str, model_id: str) -> None:
    from hub.published import accuracy_problem, flops_problem

    for key, problem in (("accuracy", accuracy_problem), ("flops", flops_problem)):
        why = problem(values[key]) if values.get(key) is not None else None
        if why:
            raise CatalogError(origin, model_id, key, why)


COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def ref_problem(revision: str) -> str | None:
    """Why ``revision`` is neither a 40-hex commit nor a valid git branch/tag name; None when it is fine."""
    if COMMIT.match(revision):
        return None
    bad = _REF_FORBIDDEN.search(revision)
    parts = revision.split("/")
    checks = (
        (not revision, "it is empty"),
        (bad is not None, f"it contains {bad.group() if bad else ''!r} (spaces, control characters and "
                          "~ ^ : ? * [ \\ are not allowed)"),
        (".." in revision, "it contains '..'"),
        ("@{" in revision or revision == "@", "it contains '@{' or is '@'"),
        (revision.startswith("-"), "it starts with '-'"),
        (revision.endswith("."), "it ends with '.'"),
        ("" in parts, "it has an empty path component (a leading, trailing or double '/')"),
        (any(p.startswith(".") or p.endswith(".lock") for p in parts),
         "a path component starts with '.' or ends with '.lock'"),
    )
    return next((why for failed, why in checks if failed), None)


def _check_revision(revision, origin: str, model_id: str) -> None:
    problem = ref_problem(revision) if revision is not None else None
    if problem:
        raise CatalogError(origin, model_id, "revision", f"{revision!r} is not a commit hash (40 hex digits) "
                           f"or a branch or tag name: {problem}")
