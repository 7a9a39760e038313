"""The model catalogue: the merge of catalogue files with plugin registrations (``ModelSpec`` is :mod:`hub.spec`).

Sources of entries, in order of precedence (a later source replaces an entry of an earlier one
with the same id, and every replacement is reported as a warning naming both sides):

1. the shipped ``registry.yaml`` (inside the installed package, or at the top of a source checkout);
2. models registered by plugins through the ``register_models`` hook, plugin by plugin (the core,
   the shipped plugins, then the rest by distribution name); a plugin's own catalogue file (``catalog.yaml``
   in its package, registered through :func:`hub.plugin_kit.register_catalog`) comes in here. A plugin may replace only entries
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
from pathlib import Path

from hub.errors import CatalogError, HubError, UnknownModelError
from hub.safe_yaml import AliasExpansionError, DuplicateKeyError
from hub.safe_yaml import load as _yaml_load
from hub.spec import COMMIT, REQUIRED_FIELDS, ModelSpec, ref_problem
from hub.tasks import TASKS, resolve_task
from hub.tasks.table import may_declare

__all__ = ["COMMIT", "PLUGIN_CATALOG", "REQUIRED_FIELDS", "Catalog", "CatalogWarning", "ModelSpec", "read_catalog_file",
           "ref_problem", "shipped_catalog_path", "user_catalog_paths"]  # ModelSpec and its checks live in hub.spec

PLUGIN_CATALOG = "catalog.yaml"  # a plugin's own catalogue file, beside its package's __init__.py (package data)


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
    specs = [ModelSpec.from_mapping(str(mid), entry, str(path), undeclared_task_ok=may_declare)
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
