"""mmhub plugin for timm: ResNet image classification and image embeddings.

Only ``hub`` is imported here; timm and torch are imported when a model loads.
"""
from __future__ import annotations

from hub import hookimpl
from hub.plugin_kit import build_pipeline, pipeline_options, register_catalog, resolve_ref

PLUGIN = "timm"
MMHUB_PLUGIN_API = "1.0"  # the hub plugin-API version this plugin is written against
# task -> "module:Class" of the pipeline that serves it (imported on load)
PIPELINES: dict[str, str] = {
    "image-classification": "mmhub_timm.pipelines:ImageClassificationPipeline",
    "image-embedding": "mmhub_timm.pipelines:ImageEmbeddingPipeline",
}


@hookimpl
def register_models(register):
    register_catalog(register, __file__)  # catalog.yaml in this package


@hookimpl
def load_model(spec, device_manager, options):
    if spec.plugin != PLUGIN or spec.task not in PIPELINES:
        return None
    return build_pipeline(PIPELINES[spec.task], spec, device_manager, options)


@hookimpl
def model_options(spec):
    if spec.plugin != PLUGIN:
        return None
    return pipeline_options(PIPELINES, spec)


@hookimpl
def spec_for_path(path, task):
    """A spec for a directory holding timm's config.json (architecture + pretrained_cfg)."""
    from pathlib import Path

    from hub.plugin_kit import read_json_file

    root = Path(path)
    config = read_json_file(root / "config.json")
    from mmhub_timm.loading import is_timm_config

    if not isinstance(config, dict) or not is_timm_config(config):
        return None
    task = task or "image-classification"
    if task not in PIPELINES:
        return None
    from hub.registry import ModelSpec

    return ModelSpec(id=root.resolve().name, task=task, plugin=PLUGIN, source=str(root.resolve()),
                     arch=str(config["architecture"]), description=f"local timm {config['architecture']} model",
                     origin=str(root))


@hookimpl
def trainable(spec, task, num_labels, labels, device_manager):
    if spec.plugin != PLUGIN:
        return None
    return resolve_ref("mmhub_timm.train:trainable")(spec, task, num_labels, labels, device_manager)
