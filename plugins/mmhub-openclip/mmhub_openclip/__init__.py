"""mmhub plugin for open_clip: CLIP zero-shot image classification and image-text similarity, CoCa captioning.

Only ``hub`` is imported here; open_clip and torch are imported when a model loads.
"""
from __future__ import annotations

from hub import hookimpl
from hub.plugin_kit import build_pipeline, pipeline_options, register_catalog, resolve_ref

PLUGIN = "openclip"
MMHUB_PLUGIN_API = "1.0"  # the hub plugin-API version this plugin is written against
PIPELINES: dict[str, str] = {
    "zero-shot-image-classification": "mmhub_openclip.pipelines:ZeroShotImageClassificationPipeline",
    "image-text-similarity": "mmhub_openclip.pipelines:ImageTextSimilarityPipeline",
    "image-captioning": "mmhub_openclip.caption:CaptionPipeline",
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
    """A directory in open_clip's hub layout (open_clip_config.json with a model_cfg)."""
    from mmhub_openclip.loading import detect

    return detect(path, task, set(PIPELINES))


@hookimpl
def trainable(spec, task, num_labels, labels, device_manager):
    if spec.plugin != PLUGIN:
        return None
    return resolve_ref("mmhub_openclip.train:trainable")(spec, task, num_labels, labels, device_manager)
