"""The Python API behind ``hub``: catalogue lookups (no torch) and loading/running models.

Calls into plugins are isolated here: registrations are validated per plugin (all or nothing),
``spec_for_path`` asks each plugin in turn, and ``load_model`` goes only to the plugin named in
``spec.plugin``, whose pipeline must serve the task asked for.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from hub.errors import CatalogError, HubError, NoLoaderError, PluginError, UnknownModelError, capped, shell_command
from hub.registry import (Catalog, CatalogWarning, ModelSpec, read_catalog_file, shipped_catalog_path,
                          user_catalog_paths)

_catalog: Catalog | None = None
_all_catalog: Catalog | None = None
_built_for: tuple | None = None  # (plugin manager, its generation) the cached catalogue was built from


def invalidate_catalog() -> None:
    global _catalog, _all_catalog
    _catalog = _all_catalog = None


# -- the catalogue --------------------------------------------------------------------------------
def catalog(installed_only: bool = True) -> Catalog:
    """Every known model; by default only those whose plugin is loaded.

    Built from registry.yaml, then plugin registrations (the shipped plugins' catalog.yaml files among them),
    then user catalogue files (the order of precedence in :mod:`hub.registry`); every replaced id or alias
    is warned about.
    """
    global _catalog, _all_catalog, _built_for
    from hub.plugins import get_plugin_manager

    pm = get_plugin_manager()
    if _all_catalog is None or _built_for != (id(pm), pm.generation):
        _all_catalog = _build_catalog(pm)
        loaded = pm.names()
        _catalog = _all_catalog.subset(lambda s: s.plugin in loaded and _declared(s.task))
        _built_for = (id(pm), pm.generation)
        for note in _all_catalog.overrides + _undeclared_notes(_all_catalog, loaded):
            warnings.warn(capped(note), CatalogWarning, stacklevel=2)
    return _catalog if installed_only else _all_catalog


def _declared(task: str) -> bool:
    from hub.tasks import TASKS

    return task in TASKS


def _undeclared_notes(all_specs: Catalog, loaded: set[str]) -> list[str]:
    """A note per entry whose plugin is loaded but does not declare its task (left out of the list)."""
    return [f"model '{s.id}' from {s.origin or 'an unnamed source'} is for the task '{s.task}', which plugin "
            f"'{s.plugin}' does not declare; it is left out (see 'hub plugins' and 'hub tasks')"
            for s in all_specs.specs.values() if s.plugin in loaded and not _declared(s.task)]


def _build_catalog(pm) -> Catalog:
    shipped = read_catalog_file(shipped_catalog_path())
    owners = {key: s.plugin for s in shipped for key in (s.id, *s.aliases)}
    specs = shipped + _plugin_specs(pm, owners)
    for path in user_catalog_paths():
        specs += read_catalog_file(path)
    return Catalog(specs)


def _plugin_specs(pm, owners: dict[str, str]) -> list[ModelSpec]:
    """Every plugin's registrations, in plugin order; problems are recorded against the plugin.

    An invalid registration drops all of that plugin's models. ``owners`` maps each id and alias seen so
    far to the plugin that serves it; an id or alias another plugin took first is a clash that drops only
    that model (an id) or that alias, with a warning naming both plugins (see :func:`_settled`).
    """
    from hub.plugins import guarded_call, plugin_impls

    specs: list[ModelSpec] = []
    for name, impl in plugin_impls("register_models", pm):  # the core, shipped plugins, then by distribution
        entries: list[ModelSpec] = []
        problems: list[str] = []
        try:
            guarded_call(name, "register_models", impl, {"register": _register_into(name, entries, problems)})
        except HubError as exc:
            pm.problem(name, f"register_models failed, its models are left out: {exc}",
                       getattr(exc, "original", None) or exc)
            continue
        if problems:
            shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
            pm.problem(name, f"invalid model registrations, all of its models are left out: {shown}")
            continue
        mine: set[str] = set()
        for spec in entries:
            kept = _settled(pm, name, spec, owners, mine)
            if kept is not None:
                owners.update({key: name for key in (kept.id, *kept.aliases)})
                mine.add(kept.id)
                specs.append(kept)
    return specs


def _register_into(plugin_name: str, entries: list, problems: list):
    """The ``register`` callback handed to one plugin: validates each entry and never raises."""

    def register(entry):
        try:
            entries.append(_as_spec(entry, plugin_name))
        except HubError as exc:
            problems.append(str(exc))

    return register


def _settled(pm, plugin: str, spec: ModelSpec, owners: dict[str, str], mine: set[str]) -> ModelSpec | None:
    """``spec`` without what was taken first: None when its id is another plugin's (or registered twice), else
    the spec with only the aliases free to it. Each clash is recorded against ``plugin`` and warned about."""
    from dataclasses import replace

    if spec.id in mine:
        _model_clash(pm, plugin, None, f"the model id '{spec.id}' twice", "the second registration is left out")
        return None
    owner = owners.get(spec.id)
    if owner is not None and owner != plugin:
        _model_clash(pm, plugin, owner, f"the model id '{spec.id}'", "the model is left out")
        return None
    kept = []
    for alias in dict.fromkeys(spec.aliases):
        owner = owners.get(alias)
        if owner is None or owner == plugin:
            kept.append(alias)
        else:
            _model_clash(pm, plugin, owner, f"the alias '{alias}' of model '{spec.id}'", "the alias is left out")
    return spec if kept == spec.aliases else replace(spec, aliases=kept)


def _model_clash(pm, plugin: str, owner: str | None, what: str, outcome: str) -> None:
    from hub.errors import PluginClashWarning

    if owner is None:
        message = f"plugin {pm.describe(plugin)} registers {what}; {outcome}"
    else:
        message = (f"plugin {pm.describe(plugin)} registers {what}, which plugin {pm.describe(owner)} serves and "
                   "which comes first (the catalogue and the core, then the shipped plugins, then the rest by "
                   f"distribution name); {outcome}, the other models of both plugins stay")
    message = capped(message)
    pm.problem(plugin, message)
    warnings.warn(message, PluginClashWarning, stacklevel=2)


def _as_spec(entry, plugin_name: str) -> ModelSpec:
    """A validated spec from a registered dict or ModelSpec (re-validated: it may have skipped checks)."""
    from dataclasses import asdict

    origin = f"plugin '{plugin_name}'"
    if isinstance(entry, ModelSpec):
        data = {k: v for k, v in asdict(entry).items() if k not in ("id", "origin") and v not in (None, [], {}, "")}
        model_id = entry.id
        if entry.origin and entry.origin != origin:  # read from a file (hub.plugin_kit.register_catalog): name it
            origin = f"{origin} ({entry.origin})"
    elif isinstance(entry, dict):
        data = dict(entry)
        model_id = data.pop("id", None)
    else:
        raise CatalogError(origin, None, None, f"register() takes a dict or a ModelSpec, got {type(entry).__name__}")
    if not isinstance(model_id, str) or not model_id.strip():
        raise CatalogError(origin, None, "id", f"registered model has no valid id (got {model_id!r})")
    data.setdefault("plugin", plugin_name)
    return ModelSpec.from_mapping(model_id, data, origin)


def list_models(pattern: str | None = None, task: str | None = None, modality: str | None = None,
                plugin: str | None = None, installed_only: bool = True) -> list[ModelSpec]:
    """Models matching an fnmatch ``pattern`` (substring when it has no wildcard) and filters."""
    return catalog(installed_only).filter(pattern, task, modality, plugin)


# -- specs ----------------------------------------------------------------------------------------
def get_spec(model_id: str, task: str | None = None) -> ModelSpec:
    """The spec for a catalogue id or alias, or for a model directory on disk."""
    path = Path(model_id).expanduser()
    known = catalog(installed_only=False)
    if path.is_dir() and (os.sep in model_id or model_id.startswith(".") or model_id not in known.specs):
        return spec_for_path(path, task)
    try:
        spec = known.get(model_id)
    except UnknownModelError as exc:
        from hub.local import looks_like_path, not_a_model_directory

        if looks_like_path(model_id):  # a path that is no directory: say so, not "unknown model id"
            raise not_a_model_directory(model_id, _meant(known, model_id)) from None
        _note_failed_plugins(exc)
        raise
    from hub.plugins import require_plugin

    require_plugin(spec.plugin, spec.id)
    if not _declared(spec.task):
        raise HubError(f"model '{spec.id}' is for the task '{spec.task}', which its plugin '{spec.plugin}' does not "
                       "declare (its task declarations may have been refused: see 'hub plugins'); update or "
                       "reinstall the plugin")
    return spec.with_task(task) if task else spec  # a task of another modality is refused by name


def _meant(known: Catalog, text: str) -> list[str]:
    """Catalogue ids a path-like MODEL may have meant: those served from the Hub repository ``text``
    (e.g. 'google/vit-base-patch16-224'), else ids close to its last part ('./all-minilm-l6')."""
    import difflib

    wanted = f"hf-hub:{text}".lower()
    served = [spec.id for spec in known.specs.values() if (spec.source or "").lower() == wanted]
    return served or difflib.get_close_matches(Path(text).name, list(known.specs), n=3, cutoff=0.8)


def _note_failed_plugins(exc: UnknownModelError) -> None:
    """Add to an unknown-id error the plugins that failed to load or that HUB_PLUGINS disables: the model may be
    one of theirs (a plugin registers its own models, so the catalogue cannot know them)."""
    from hub.plugins import get_plugin_manager

    pm = get_plugin_manager()
    notes = []
    if pm.failures:
        shown = "; ".join(f"'{name}': {info.error}" for name, info in sorted(pm.failures.items()))
        notes.append(f"Plugins that failed to load, whose models are missing: {shown} "
                     f"(see {shell_command('hub', 'plugins', '--verbose')}).")
    disabled = sorted(set(pm.disabled) - set(pm.failures))
    if disabled:
        notes.append(f"Plugins installed but disabled by HUB_PLUGINS={os.environ.get('HUB_PLUGINS', '')!r}, whose "
                     f"models are missing: {', '.join(disabled)} (add them to HUB_PLUGINS, or unset it to load "
                     "every plugin).")
    if notes:
        exc.args = (capped(" ".join([exc.args[0], *notes])),)


def _with_task(spec: ModelSpec, task: str) -> ModelSpec:
    from dataclasses import replace

    return replace(spec, task=task)


def spec_for_path(path: Path, task: str | None = None) -> ModelSpec:
    """A spec for a local model directory: its mmhub.yaml, else the first plugin that claims it."""
    from hub.local import spec_from_directory

    spec = spec_from_directory(path)
    if spec is not None:
        return _with_task(spec, _resolved(task)) if task else spec
    failed: list[PluginError] = []
    found = _ask_plugins_for_path(path, _resolved(task) if task else None, failed)
    if found is not None:
        for exc in failed:
            warnings.warn(f"{exc} (plugin '{found.plugin}' recognised the directory)", CatalogWarning, stacklevel=2)
        return found
    from hub.local import MODEL_DIR_CONTENTS

    why = f" Plugin errors: {'; '.join(str(e) for e in failed)}" if failed else ""
    raise HubError(f"no installed plugin recognises the model directory '{path}': {MODEL_DIR_CONTENTS}. Pass --task "
                   f"if the directory serves several tasks.{why}")


def _ask_plugins_for_path(path: Path, task: str | None, failed: list) -> ModelSpec | None:
    """The first valid spec a plugin returns for ``path``; plugins that fail are collected in ``failed``."""
    from hub.plugins import get_plugin_manager, guarded_call, plugin_impls

    pm = get_plugin_manager()
    for name, impl in plugin_impls("spec_for_path", pm):
        try:
            found = guarded_call(name, "spec_for_path", impl, {"path": str(path), "task": task})
            if found is None:
                continue
            return _checked_path_spec(name, found, path)
        except PluginError as exc:
            failed.append(exc)
    return None


def _checked_path_spec(plugin_name: str, found, path: Path) -> ModelSpec:
    """A plugin's answer to spec_for_path, re-validated, and served by that same plugin."""
    what = f"plugin '{plugin_name}' returned an invalid spec for the model directory '{path}'"
    if not isinstance(found, ModelSpec):
        raise PluginError(plugin_name, f"{what}: expected a ModelSpec, got {type(found).__name__}")
    if found.plugin != plugin_name:
        raise PluginError(plugin_name, f"{what}: it names the plugin '{found.plugin}' instead of itself")
    try:
        spec = _as_spec(found, plugin_name)
    except HubError as exc:
        raise PluginError(plugin_name, f"{what}: {exc}") from None
    from dataclasses import replace

    return replace(spec, origin=found.origin or spec.origin)


def _resolved(task: str) -> str:
    from hub.tasks import resolve_task

    return resolve_task(task)


# -- loading --------------------------------------------------------------------------------------
HUB_LOAD_OPTIONS = ("trust_remote_code",)  # load options of the hub's own; the others are the model's call options


def load(model_id: str, device: str | None = None, dtype: str | None = None, task: str | None = None,
         cache: bool = True, backend: str | None = None, **options):
    """Load a model (catalogue id, alias or directory) as a callable pipeline, through the cache.

    ``backend`` (torch, onnx, openvino or auto; default HUB_BACKEND, else auto) runs its forward pass.
    ``options`` are load options: ``trust_remote_code``, and any of the model's call options, whose value
    becomes its default for this pipeline (``hub.load(model, top_k=3)``). Anything else is an OptionError
    listing the valid ones, before the weights load when the plugin declares its options."""
    from hub.device import get_device_manager
    from hub.model_options import model_options

    spec = get_spec(model_id, task)
    declared = model_options(spec) if options else None
    if declared is not None:
        check_load_options(spec, options, declared)
    dm = get_device_manager(device, dtype, backend)
    key = (spec.id, spec.source, spec.task, tuple(sorted((k, repr(v)) for k, v in options.items())))
    if not cache:
        return _load_uncached(spec, dm, options)
    return dm.cached(key, lambda: _load_uncached(spec, dm, options))


def _load_uncached(spec: ModelSpec, dm, options: dict):
    """Ask the plugin named in ``spec.plugin`` (and no other) for the pipeline, and check it."""
    from hub.plugins import call_plugin, get_plugin_manager, require_plugin

    pipeline = call_plugin(spec.plugin, "load_model", spec=spec, device_manager=dm, options=options)
    if pipeline is None:
        if spec.plugin not in get_plugin_manager().names():
            require_plugin(spec.plugin, spec.id)
        raise NoLoaderError(spec.id, spec.plugin)
    check_pipeline(spec, pipeline)
    if options:
        check_load_options(spec, options, tuple(pipeline.call_options))
        _check_kept(spec, pipeline, options)
    from hub.tasks import TASKS

    TASKS[spec.task].result_type()  # a plugin's result class that cannot be imported fails here, by name
    return pipeline


def check_pipeline(spec: ModelSpec, pipeline) -> None:
    """Raise a PluginError unless ``pipeline`` is a :class:`~hub.tasks.base.Pipeline` that serves ``spec.task``."""
    from hub.tasks.base import Pipeline

    served = pipeline.task if isinstance(pipeline, Pipeline) else None
    if served != spec.task:
        got = f"a pipeline for task '{served}'" if served else f"a {type(pipeline).__name__} (not a pipeline)"
        raise PluginError(spec.plugin, f"plugin '{spec.plugin}' returned {got} when loading model '{spec.id}' for "
                                       f"task '{spec.task}'. The plugin is at fault: report it to its authors, or "
                                       "pass --task with a task the model serves.")


def check_load_options(spec: ModelSpec, options: dict, declared) -> None:
    """Refuse a load option that is neither the hub's own nor one of the model's call options (``declared``),
    listing the valid ones, and a value its option does not accept."""
    from hub.errors import OptionError
    from hub.options import unknown_option_error

    by_name = {option.name: option for option in declared}
    owner = f"{spec.id} ({spec.task})"
    unknown = sorted(set(options) - set(HUB_LOAD_OPTIONS) - set(by_name))
    if unknown:
        raise unknown_option_error(unknown, [*HUB_LOAD_OPTIONS, *by_name], owner, what="load option")
    for name, value in options.items():
        if name in by_name and value is not None:
            by_name[name].convert(value, owner)
    if not isinstance(options.get("trust_remote_code", False), (bool, type(None))):
        raise OptionError(f"load option 'trust_remote_code' of {owner} must be true or false; got "
                          f"{options['trust_remote_code']!r}")


def _check_kept(spec: ModelSpec, pipeline, options: dict) -> None:
    """Refuse a pipeline that dropped the call options given as load options (its plugin's load_model did not
    pass ``options`` on), so that they are never silently lost."""
    declared = {option.name for option in pipeline.call_options}
    kept = pipeline.options or {}
    lost = sorted(name for name, value in options.items() if name in declared and value is not None and name not in kept)
    if lost:
        raise PluginError(spec.plugin, f"plugin '{spec.plugin}' dropped the load option(s) {', '.join(lost)} given for "
                                       f"model '{spec.id}': its load_model must pass its options on "
                                       "(Pipeline(spec, model, device_manager, **options)); report it to the plugin's "
                                       "authors, and meanwhile give the option(s) to each call instead")


def run(model_id: str, inputs, device: str | None = None, dtype: str | None = None, task: str | None = None,
        batch_size: int | None = None, backend: str | None = None, **kwargs):
    """Load (or reuse) a model and run it on ``inputs``; returns result objects."""
    pipeline = load(model_id, device=device, dtype=dtype, task=task, backend=backend)
    return pipeline(inputs, batch_size=batch_size, **kwargs)
