"""The model catalogue: ``ModelSpec`` and the merge of catalogue files with plugin registrations.

Sources of entries, in order of precedence (a later source replaces an entry of an earlier one
with the same id, and every replacement is reported as a warning naming both sides):

1. the shipped ``registry.yaml`` (inside the installed package, or at the top of a source checkout);
2. models registered by plugins through the ``register_models`` hook, plugin by plugin (the core,
   the shipped plugins, then the rest by distribution name). A plugin may replace only entries
   served by itself: an id or alias already served by another plugin stays with it, and only the
   clashing model (an id) or alias is dropped, with a warning naming both plugins;
3. user catalogue files: ``~/.config/mmhub/catalog.yaml`` when it exists, then every path in
   ``HUB_CATALOG`` (``os.pathsep``-separated files), in that order. They may replace any entry.

Lookup tries an exact id first, then an alias, then both ignoring case. An alias that names
another entry's id is therefore shadowed by that id; when two entries declare the same alias,
the later one wins. Both cases are reported.

A catalogue file is a mapping ``models: {id: {field: value}}``; see registry.yaml for the fields.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hub.errors import CatalogError, HubError, TaskMismatchError, UnknownModelError
from hub.tasks import TASKS, UnknownTaskError, normalised, resolve_task
from hub.tasks.table import may_declare

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
    def from_mapping(cls, model_id: str, data: dict, origin: str, undeclared_task_ok: bool = False) -> "ModelSpec":
        """Build a spec from a catalogue mapping, naming origin/entry/field on any problem.

        With ``undeclared_task_ok`` (catalogue files) a task that no loaded plugin declares is kept as
        written when the entry's plugin could bring it (it is not loaded, or it declares tasks): the entry
        is listed only under ``hub list --all`` until that plugin's declaration is there.
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
            if not (undeclared_task_ok and isinstance(data["task"], str) and may_declare(str(data["plugin"]))):
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


def shipped_catalog_path() -> Path:
    """registry.yaml inside the installed package, else at the top of the source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "registry.yaml"
    return packaged if packaged.exists() else here.parent / "registry.yaml"


def user_catalog_paths() -> list[Path]:
    paths = []
    default = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "mmhub" / "catalog.yaml"
    if default.exists():
        paths.append(default)
    extra = os.environ.get("HUB_CATALOG", "")
    paths.extend(Path(p) for p in extra.split(os.pathsep) if p.strip())
    return paths


def _yaml_load(text: str):
    """Safe YAML (the C loader when there is one) with no key twice and aliases that expand to little."""
    import yaml

    loader = _unique_key_loader()
    return yaml.load(text, Loader=loader.checking_aliases if "*" in text else loader)  # no '*': no alias


_LOADER = None
ALIAS_NODES = 100_000  # values that aliases (*name) may add beyond those written out: a bomb stops here


def _unique_key_loader():
    """A safe YAML loader that refuses a mapping with the same key twice (plain YAML keeps the last), and a
    document whose aliases would expand to a huge or endless structure (see :func:`_check_expansion`)."""
    global _LOADER
    if _LOADER is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class UniqueKeyLoader(base):
            def construct_mapping(self, node, deep=False):
                seen = {}
                for key_node, _ in node.value:
                    key = self.construct_object(key_node, deep=True)
                    if key in seen:
                        raise DuplicateKeyError(key, seen[key], key_node.start_mark.line + 1)
                    seen[key] = key_node.start_mark.line + 1
                return super().construct_mapping(node, deep)

        class CheckingAliases(UniqueKeyLoader):
            def get_single_node(self):
                node = super().get_single_node()
                if node is not None:
                    _check_expansion(node)
                return node

        UniqueKeyLoader.checking_aliases = CheckingAliases
        _LOADER = UniqueKeyLoader
    return _LOADER


class DuplicateKeyError(ValueError):
    def __init__(self, key, first_line: int, line: int):
        self.key, self.first_line, self.line = key, first_line, line
        shown = repr(key) if len(repr(key)) <= 80 else repr(key)[:77] + "..."
        super().__init__(f"{shown} is defined twice, on lines {first_line} and {line}; keep one of them")


class AliasExpansionError(ValueError):
    """YAML whose aliases (``*name``) refer to their own anchor, or expand far beyond what is written."""


def _children(node) -> list:
    value = node.value
    if not isinstance(value, list):
        return []  # a scalar
    return [part for item in value for part in (item if isinstance(item, tuple) else (item,))]


def _check_expansion(root) -> None:
    """Refuse a node graph whose aliases loop back into themselves, or expand to more than ALIAS_NODES values
    beyond the distinct ones. Linear in the nodes written: each node's expanded size is counted, never built."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
        elif key not in sizes:
            if key in open_nodes:
                raise AliasExpansionError(f"the alias near line {node.start_mark.line + 1} refers to a value that "
                                          "contains it, which never ends; write the values out")
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    if sizes[id(root)] > len(sizes) + ALIAS_NODES:
        raise AliasExpansionError(
            f"its aliases (*name) would expand {len(sizes):,} values written into {sizes[id(root)]:,} (at most "
            f"{ALIAS_NODES:,} more than written are allowed); write the values out instead of repeating aliases")


def read_catalog_file(path: Path) -> list[ModelSpec]:
    """Parse one catalogue file into specs; any problem names the file, entry and field."""
    path = Path(path)
    if not path.exists():
        raise CatalogError(path, None, None, "file not found (check HUB_CATALOG)")
    if path.is_dir():
        return _read_model_dir(path)
    try:
        data = _parsed_catalog(path)
    except (DuplicateKeyError, AliasExpansionError) as exc:
        raise CatalogError(path, None, None, str(exc)) from None
    except UnicodeDecodeError as exc:
        raise CatalogError(path, None, None, f"not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except Exception as exc:  # yaml.YAMLError
        raise CatalogError(path, None, None, f"not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
        raise CatalogError(path, None, "models", "the file must be a mapping with a 'models' mapping of id -> fields")
    specs = [ModelSpec.from_mapping(str(mid), entry, str(path), undeclared_task_ok=True)
             for mid, entry in (data.get("models") or {}).items()]
    _check_names_unique(specs, path)
    return specs


def _parsed_catalog(path: Path):
    """The file's YAML, parsed and checked (no key twice, aliases that expand to little), or as cached when the
    file is unchanged since (see :mod:`hub.cache`): a catalogue parsed once is not parsed on every start.
    Entries are validated by the caller every time, since which tasks are known depends on the plugins."""
    from hub.cache import file_stats, read_cached, settled, short_name, write_cached

    where = os.path.abspath(path)  # a relative HUB_CATALOG path names another file in another directory
    stats = file_stats([where])
    name = f"catalog-{short_name(where)}.json"
    cached = read_cached(name, stats)
    if isinstance(cached, dict) and "data" in cached:
        return cached["data"]
    data = _yaml_load(path.read_text(encoding="utf-8"))
    if settled(stats) and file_stats([where]) == stats:  # unchanged while it was read
        write_cached(name, stats, {"data": data})
    return data


def _check_names_unique(specs: list[ModelSpec], path: Path) -> None:
    """Within one file, an alias may name neither another entry nor another entry's alias."""
    owner = {spec.id: spec.id for spec in specs}
    for spec in specs:
        for alias in spec.aliases:
            first = owner.setdefault(alias, spec.id)
            if first != spec.id:
                what = "the id of entry" if alias == first else "already an alias of entry"
                raise CatalogError(path, spec.id, "aliases", f"the alias '{alias}' is {what} '{first}' in the "
                                   "same file; rename or remove one of them")


def _read_model_dir(path: Path) -> list[ModelSpec]:
    """A directory in a catalogue list: a model directory written by ``hub finetune`` (its mmhub.yaml)."""
    from hub.local import spec_from_directory

    spec = spec_from_directory(path)
    if spec is None:
        raise CatalogError(path, None, None, "directory has no mmhub.yaml (is it a 'hub finetune' output?)")
    return [spec]


class CatalogWarning(UserWarning):
    """A catalogue entry replaced or shadowed another one."""


class Catalog:
    """All known specs, by id, with alias lookup and filtering.

    Specs are added in order of precedence; ``overrides`` lists, one sentence each, every id or
    alias that a later spec took from an earlier one (see the module docstring).
    """

    def __init__(self, specs=()):
        self.specs: dict[str, ModelSpec] = {}
        self.aliases: dict[str, str] = {}
        self.overrides: list[str] = []
        for spec in specs:
            self.overrides.extend(self.add(spec))

    def add(self, spec: ModelSpec) -> list[str]:
        """Add ``spec``, replacing an entry with its id; return what it replaced or shadowed."""
        notes = []
        old = self.specs.get(spec.id)
        if old is not None:
            notes.append(f"'{spec.id}' from {_origin(spec)} replaces the entry from {_origin(old)}")
        elif spec.id in self.aliases:
            owner = self.specs[self.aliases[spec.id]]
            notes.append(f"'{spec.id}' from {_origin(spec)} replaces the alias '{spec.id}' of '{owner.id}' "
                         f"from {_origin(owner)}")
        self.specs[spec.id] = spec
        self.aliases.pop(spec.id, None)
        for alias in spec.aliases:
            notes.extend(self._add_alias(alias, spec))
        return notes

    def _add_alias(self, alias: str, spec: ModelSpec) -> list[str]:
        if alias == spec.id:
            return []
        if alias in self.specs:
            other = self.specs[alias]
            return [f"alias '{alias}' of '{spec.id}' from {_origin(spec)} is shadowed by the id '{alias}' "
                    f"from {_origin(other)}, which lookups find first"]
        previous = self.aliases.get(alias)
        self.aliases[alias] = spec.id
        if previous is not None and previous != spec.id and previous in self.specs:
            return [f"alias '{alias}' now means '{spec.id}' from {_origin(spec)} instead of '{previous}' "
                    f"from {_origin(self.specs[previous])}"]
        return []

    def subset(self, keep) -> "Catalog":
        """A catalogue of the specs for which ``keep(spec)`` is true (no new override notes)."""
        out = Catalog()
        out.specs = {k: s for k, s in self.specs.items() if keep(s)}
        out.aliases = {a: k for a, k in self.aliases.items() if k in out.specs}
        return out

    def get(self, model_id: str) -> ModelSpec:
        if model_id in self.specs:
            return self.specs[model_id]
        if model_id in self.aliases:
            return self.specs[self.aliases[model_id]]
        lowered = {k.lower(): k for k in list(self.specs) + list(self.aliases)}
        if model_id.lower() in lowered:
            return self.get(lowered[model_id.lower()])
        raise UnknownModelError(model_id, sorted(list(self.specs) + list(self.aliases)))

    def filter(self, pattern=None, task=None, modality=None, plugin=None) -> list[ModelSpec]:
        task = resolve_task(task) if task else None
        if modality and modality not in {t.modality for t in TASKS.values()}:
            from hub.tasks import MODALITIES

            raise HubError(f"unknown modality '{modality}'. Valid modalities: {', '.join(MODALITIES)}.")
        out = []
        for spec in self.specs.values():
            if pattern and not _matches(spec, pattern):
                continue
            if task and spec.task != task:
                continue
            if modality and spec.modality != modality:
                continue
            if plugin and not fnmatch.fnmatch(spec.plugin, plugin):
                continue
            out.append(spec)
        return sorted(out, key=lambda s: (s.modality, s.task, s.id))


def _origin(spec: ModelSpec) -> str:
    return spec.origin or "an unnamed source"


def _matches(spec: ModelSpec, pattern: str) -> bool:
    pattern = pattern.lower()
    if not any(ch in pattern for ch in "*?["):
        pattern = f"*{pattern}*"
    names = [spec.id, *spec.aliases]
    return any(fnmatch.fnmatchcase(n.lower(), pattern) for n in names)
