"""The Python API behind ``hub``: catalogue lookups (no torch) and loading/running models."""
from __future__ import annotations

import os
from pathlib import Path

from hub.errors import HubError, NoLoaderError, PluginNotInstalledError
from hub.registry import Catalog, ModelSpec, read_catalog_file, shipped_catalog_path, user_catalog_paths

_catalog: Catalog | None = None
_all_catalog: Catalog | None = None
_built_for: tuple | None = None  # (plugin manager, its generation) the cached catalogue was built from


def invalidate_catalog() -> None:
    global _catalog, _all_catalog
    _catalog = _all_catalog = None


def _plugin_specs(pm) -> list[ModelSpec]:
    specs: list[ModelSpec] = []
    for name, plugin in pm.list_name_plugin():
        impl = getattr(plugin, "register_models", None)
        if impl is None:
            continue

        def register(entry, _name=name):
            specs.append(_as_spec(entry, _name))

        try:
            impl(register=register)
        except HubError:
            raise
        except Exception as exc:
            pm.problem(name, f"register_models failed: {type(exc).__name__}: {exc}", exc)
    return specs


def _failure(pm, name, message):
    from hub.plugins import PluginInfo

    dist, version = pm.dists.get(name, (None, None))
    return PluginInfo(name, version, dist, error=message)


def _as_spec(entry, plugin_name: str) -> ModelSpec:
    if isinstance(entry, ModelSpec):
        return entry
    data = dict(entry)
    model_id = data.pop("id", None)
    if not model_id:
        from hub.errors import CatalogError

        raise CatalogError(f"plugin '{plugin_name}'", None, "id", "registered model has no id")
    data.setdefault("plugin", plugin_name)
    return ModelSpec.from_mapping(model_id, data, f"plugin '{plugin_name}'")


def catalog(installed_only: bool = True) -> Catalog:
    """Every known model; by default only those whose plugin is loaded."""
    global _catalog, _all_catalog, _built_for
    from hub.plugins import get_plugin_manager

    pm = get_plugin_manager()
    if _all_catalog is None or _built_for != (id(pm), pm.generation):
        _built_for = (id(pm), pm.generation)
        specs = read_catalog_file(shipped_catalog_path())
        specs += _plugin_specs(pm)
        for path in user_catalog_paths():
            specs += read_catalog_file(path)
        _all_catalog = Catalog(specs)
        loaded = pm.names()
        _catalog = Catalog([s for s in _all_catalog.specs.values() if s.plugin in loaded])
    return _catalog if installed_only else _all_catalog


def list_models(pattern: str | None = None, task: str | None = None, modality: str | None = None,
                plugin: str | None = None, installed_only: bool = True) -> list[ModelSpec]:
    """Models matching an fnmatch ``pattern`` (substring when it has no wildcard) and filters."""
    return catalog(installed_only).filter(pattern, task, modality, plugin)


def get_spec(model_id: str, task: str | None = None) -> ModelSpec:
    """The spec for a catalogue id or alias, or for a model directory on disk."""
    path = Path(model_id).expanduser()
    known = catalog(installed_only=False)
    if path.is_dir() and (os.sep in model_id or model_id.startswith(".") or model_id not in known.specs):
        return spec_for_path(path, task)
    spec = known.get(model_id)
    from hub.plugins import get_plugin_manager

    if spec.plugin not in get_plugin_manager().names():
        raise PluginNotInstalledError(spec.id, spec.plugin)
    return spec.with_task(task) if task else spec


def _with_task(spec: ModelSpec, task: str) -> ModelSpec:
    from dataclasses import replace

    return replace(spec, task=task)


def spec_for_path(path: Path, task: str | None = None) -> ModelSpec:
    """A spec for a local model directory: its mmhub.yaml, else the first plugin that claims it."""
    from hub.local import spec_from_directory

    spec = spec_from_directory(path)
    if spec is not None:
        return _with_task(spec, _resolved(task)) if task else spec
    from hub.plugins import get_plugin_manager

    found = get_plugin_manager().hook.spec_for_path(path=str(path), task=_resolved(task) if task else None)
    if found is None:
        raise HubError(
            f"no installed plugin recognises the model directory '{path}'. Expected a transformers "
            "save_pretrained directory, a timm config.json + model.safetensors, an open_clip hub layout, "
            "or a 'hub finetune' output; pass --task if the directory serves several tasks."
        )
    return found


def _resolved(task: str) -> str:
    from hub.tasks import resolve_task

    return resolve_task(task)


def load(model_id: str, device: str | None = None, dtype: str | None = None, task: str | None = None,
         cache: bool = True, **options):
    """Load a model (catalogue id, alias or directory) as a callable pipeline, through the cache."""
    from hub.device import get_device_manager

    spec = get_spec(model_id, task)
    dm = get_device_manager(device, dtype)
    key = (spec.id, spec.source, spec.task, tuple(sorted((k, repr(v)) for k, v in options.items())))
    if not cache:
        return _load_uncached(spec, dm, options)
    return dm.cached(key, lambda: _load_uncached(spec, dm, options))


def _load_uncached(spec: ModelSpec, dm, options: dict):
    from hub.plugins import get_plugin_manager

    pipeline = get_plugin_manager().hook.load_model(spec=spec, device_manager=dm, options=options)
    if pipeline is None:
        raise NoLoaderError(spec.id, spec.plugin)
    return pipeline


def run(model_id: str, inputs, device: str | None = None, dtype: str | None = None, task: str | None = None,
        batch_size: int | None = None, **kwargs):
    """Load (or reuse) a model and run it on ``inputs``; returns result objects."""
    pipeline = load(model_id, device=device, dtype=dtype, task=task)
    return pipeline(inputs, batch_size=batch_size, **kwargs)
