"""mmhub plugin for torchvision: object detection and semantic segmentation on ResNet-50 backbones.

Written against the hub's public plugin contract only. Importing it imports ``hub`` and plain data;
torch and torchvision are imported when a model loads.
"""
from __future__ import annotations

from hub import hookimpl
from hub.plugin_kit import build_pipeline, pipeline_options
from mmhub_torchvision.catalog import DETECTION, PLUGIN, SEGMENTATION, TASK_DECLARATIONS, model_entries

MMHUB_PLUGIN_API = "1.0"  # the hub plugin-API version this plugin is written against

# task -> "module:Class" of the pipeline that serves it (imported on load)
PIPELINES: dict[str, str] = {
    DETECTION: "mmhub_torchvision.pipelines:ObjectDetectionPipeline",
    SEGMENTATION: "mmhub_torchvision.pipelines:SegmentationPipeline",
}


@hookimpl
def register_tasks(register):
    for declaration in TASK_DECLARATIONS:
        register(dict(declaration))


@hookimpl
def register_models(register):
    for entry in model_entries():
        register(entry)


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
    """A spec for a directory holding this plugin's ``torchvision_config.json`` (a known builder)."""
    from pathlib import Path

    from hub.plugin_kit import read_json_file
    from mmhub_torchvision.catalog import BUILDERS
    from mmhub_torchvision.loading import CONFIG_NAME, is_config

    root = Path(path).resolve()
    config = read_json_file(root / CONFIG_NAME)
    if not is_config(config):
        return None
    own_task = BUILDERS[config["builder"]][1]
    if task not in (None, own_task):
        return None
    from hub.registry import ModelSpec

    return ModelSpec(id=root.name, task=own_task, plugin=PLUGIN, source=str(root), arch=config["builder"],
                     description=f"local torchvision {config['builder']} model", origin=str(root))


# --- training ------------------------------------------------------------------------------------
# Fine-tuning lives in mmhub_torchvision/train.py; its ``trainable`` hook goes below this line.
@hookimpl
def trainable(spec, task, num_labels, labels, device_manager):
    """Semantic segmentation fine-tuning (a kind of training this plugin brings: mmhub_torchvision.train)."""
    if spec.plugin != PLUGIN or task != SEGMENTATION:
        return None
    from mmhub_torchvision.train import trainable as segmentation_trainable

    return segmentation_trainable(spec, task, num_labels, labels, device_manager)
