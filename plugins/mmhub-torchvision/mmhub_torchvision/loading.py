"""Weights and models for this plugin: torchvision's weights enums and cache, or a local directory.

Two kinds of source:

- ``torchvision:<Enum>.<MEMBER>`` (e.g. ``torchvision:FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1``): the
  checkpoint lives in torch's hub cache (``$TORCH_HOME/hub/checkpoints/<file name of the weights' URL>``),
  where torchvision itself keeps it. It is downloaded there only when ``HF_HUB_OFFLINE`` is not set;
  otherwise a missing file is a :class:`hub.errors.ModelUnavailableError` naming the file and how to get it.
- a local directory holding ``torchvision_config.json`` (the builder, classes and preprocessing) and
  ``model.safetensors``: what tests and fine-tuned models use.

Checkpoints are read as plain tensors only (``torch.load(weights_only=True)`` or safetensors). The
model is built with ``weights=None, weights_backbone=None`` and loaded strictly. Preprocessing is
the weights' own ``transforms()`` (with the catalogue's ``preprocess`` settings passed to it).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import ModelUnavailableError, WeightsError, shell_command
from mmhub_torchvision.catalog import BUILDERS, SOURCE_PREFIX

CONFIG_NAME = "torchvision_config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_SETTINGS = ("min_size", "max_size")  # detection builders' own resize settings
TRANSFORM_SETTINGS = ("resize_size", "crop_size")  # keywords of the weights' transforms()


@dataclass
class Loaded:
    """A built model with its weights, the weights' transform and the class names."""

    model: object
    transform: object
    categories: list[str]
    builder: str
    config: dict = field(default_factory=dict)


def get_weights(name: str):
    """The torchvision weights enum member called ``name`` (``Enum.MEMBER``); a WeightsError otherwise."""
    from torchvision.models import get_weight

    try:
        return get_weight(name)
    except (ValueError, KeyError, AttributeError) as exc:
        raise WeightsError(f"'{name}' is not a torchvision weights name ({exc}); use an enum member such as "
                           "FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1") from None


def checkpoint_path(weights) -> Path:
    """Where torchvision caches ``weights``: torch's hub dir / checkpoints / the URL's file name."""
    import torch.hub
    from urllib.parse import urlparse

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def load(spec) -> Loaded:
    """The model of ``spec`` with its weights, transform and classes (from the enum or a local directory)."""
    directory = local_directory(spec)
    if directory is not None:
        return load_directory(directory, spec)
    if not spec.source.startswith(SOURCE_PREFIX):
        raise ModelUnavailableError(f"weights for model '{spec.id}' not found at '{spec.source}'; give a directory "
                                    f"with {CONFIG_NAME} and {WEIGHTS_NAME}, or a source "
                                    f"{SOURCE_PREFIX}<Enum>.<MEMBER>")
    return load_enum(spec, get_weights(spec.source[len(SOURCE_PREFIX):]))


def local_directory(spec) -> Path | None:
    """``spec.local`` or ``spec.source`` when it is an existing directory (a package directory too)."""
    from hub import weights

    for source in (spec.local, spec.source):
        if source and not source.startswith(SOURCE_PREFIX):
            path = weights.local_path(source)
            if path is not None and path.is_dir():
                return path
    return None


def load_enum(spec, weights) -> Loaded:
    """A catalogue model: the builder named by ``spec.arch``, its checkpoint from torch's hub cache."""
    builder = spec.arch or builder_for(weights)
    state = read_checkpoint(spec.id, weights)
    categories = list(weights.meta["categories"])
    settings = dict(spec.preprocess or {})
    model = build(builder, len(categories), state, model_args(settings), str(checkpoint_path(weights)))
    return Loaded(model, transform_for(weights, settings), categories, builder)


def builder_for(weights) -> str:
    """The builder whose weights enum ``weights`` belongs to."""
    from torchvision.models import get_model_weights

    for name, (module, _) in BUILDERS.items():
        if module.startswith("torchvision.") and get_model_weights(name) is type(weights):
            return name
    raise WeightsError(f"{type(weights).__name__} is not the weights of a model this plugin serves "
                       f"({', '.join(BUILDERS)})")


def read_checkpoint(model_id: str, weights) -> dict:
    """The checkpoint's tensors, from the cache; fetched into it only when online."""
    from hub import weights as hub_weights

    path = checkpoint_path(weights)
    fix = f"delete '{path}' and run the model once while online, or {download_hint(weights, path)}"
    if not path.is_file():
        if hub_weights.offline():
            raise ModelUnavailableError(
                f"weights for model '{model_id}' ({type(weights).__name__}.{weights.name}) are not in torch's cache: "
                f"'{path}' is missing and HF_HUB_OFFLINE=1 is set. On a machine with network access, "
                f"{download_hint(weights, path)}, or unset HF_HUB_OFFLINE to download them")
        download(model_id, weights, path)
    return hub_weights.load_pickled_tensors(path, fix)


def download_hint(weights, path: Path) -> str:
    """The command that puts the checkpoint where torchvision (and this plugin) looks for it."""
    name = f"{type(weights).__name__}.{weights.name}"
    code = f"import torchvision; torchvision.models.get_weight({name!r}).get_state_dict()"
    return f"run {shell_command(sys.executable, '-c', code)} (it writes '{path}')"


def download(model_id: str, weights, path: Path) -> None:
    """Fetch the checkpoint into torch's cache, checking the hash in its file name as torchvision does."""
    import re

    from torch.hub import download_url_to_file

    found = re.search(r"-([a-f0-9]+)\.", path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        download_url_to_file(weights.url, str(path), hash_prefix=found.group(1) if found else None, progress=True)
    except Exception as exc:
        raise ModelUnavailableError(f"weights for model '{model_id}' could not be downloaded from {weights.url} "
                                    f"({type(exc).__name__}: {exc}); {download_hint(weights, path)}") from None


def model_args(settings: dict) -> dict:
    """The builder keywords among the catalogue's ``preprocess`` settings (detection resize sizes)."""
    return {k: settings[k] for k in MODEL_SETTINGS if k in settings}


def transform_for(weights, settings: dict):
    """The weights' own ``transforms()``, with any resize/crop size the catalogue sets."""
    return weights.transforms(**{k: settings[k] for k in TRANSFORM_SETTINGS if k in settings})


def build(builder: str, num_classes: int, state: dict, args: dict, where: str):
    """``builder`` with ``num_classes`` outputs and ``state`` loaded strictly; an auxiliary head is dropped."""
    aux = any(k.startswith("aux_classifier.") for k in state)
    kwargs = {"weights": None, "weights_backbone": None, "num_classes": num_classes, **args}
    if BUILDERS[builder][1] == "image-segmentation":
        kwargs["aux_loss"] = aux
    model = _build_without_init(builder, kwargs, state, where)
    if model is None:
        model = _get_model(builder, kwargs)
        _strict_load(model, state, where, builder, num_classes)
    if getattr(model, "aux_classifier", None) is not None:
        model.aux_classifier = None  # only used in training; inference reads "out"
    return model.eval()


def _get_model(builder: str, kwargs: dict):
    from torchvision.models import get_model

    module = BUILDERS[builder][0]
    if module.startswith("mmhub_torchvision."):  # this plugin's own builders (mmhub_torchvision.small)
        import importlib

        return getattr(importlib.import_module(module), builder)(**kwargs)
    return get_model(builder, **kwargs)


def _build_without_init(builder: str, kwargs: dict, state: dict, where: str):
    """Build on the meta device and adopt the checkpoint's tensors (no random init); None if that fails."""
    import torch

    try:
        with torch.device("meta"):
            model = _get_model(builder, kwargs)
    except Exception:
        return None
    _strict_load(model, state, where, builder, kwargs["num_classes"], assign=True)
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        return None
    return model


def _strict_load(model, state: dict, where: str, builder: str, num_classes: int, assign: bool = False) -> None:
    try:
        model.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as exc:
        first = " ".join(str(exc).splitlines()[:3])
        raise WeightsError(f"the weights in '{where}' do not fit torchvision's {builder} with {num_classes} classes: "
                           f"{first}") from None


# -- local directories -----------------------------------------------------------------------------
def read_config(directory: Path) -> dict:
    """The parsed ``torchvision_config.json`` of a model directory; errors name the file and the fix."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise ModelUnavailableError(f"'{directory}' has no {CONFIG_NAME}; a torchvision model directory holds "
                                    f"{CONFIG_NAME} and {WEIGHTS_NAME} (see mmhub_torchvision.loading.save_directory)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"'{path}' is not valid JSON ({exc}); save the model again") from None
    if not is_config(config):
        raise WeightsError(f"'{path}' names no known 'builder' (one of {', '.join(BUILDERS)}); save the model again")
    return config


def is_config(config) -> bool:
    """Whether ``config`` is this plugin's directory config (a known builder)."""
    return isinstance(config, dict) and config.get("builder") in BUILDERS


def load_directory(directory: Path, spec=None) -> Loaded:
    """A model saved by :func:`save_directory`: builder, classes and transform from its config."""
    from hub import weights as hub_weights

    config = read_config(directory)
    path = Path(directory) / WEIGHTS_NAME
    if not path.is_file():
        raise WeightsError(f"'{directory}' has {CONFIG_NAME} but no {WEIGHTS_NAME}; save the model again")
    state = hub_weights.load_safetensors(path, "save the model again")
    builder = config["builder"]
    settings = {**config.get("preprocess", {}), **((spec.preprocess or {}) if spec is not None else {})}
    categories = [str(c) for c in config.get("categories") or []]
    num_classes = int(config.get("num_classes") or len(categories))
    if len(categories) != num_classes:
        categories = [f"class_{i}" for i in range(num_classes)]
    args = {**dict(config.get("model_args") or {}), **model_args(settings)}
    model = build(builder, num_classes, state, args, str(path))
    return Loaded(model, transform_for(transform_weights(config), settings), categories, builder, config)


def transform_weights(config: dict):
    """The weights whose ``transforms()`` a directory uses: the one it names, else its builder's default."""
    if config.get("weights"):
        return get_weights(config["weights"])
    from torchvision.models import get_model_weights

    return get_model_weights(config["builder"]).DEFAULT


def save_directory(model, directory, builder: str, categories: list[str], weights: str | None = None,
                   preprocess: dict | None = None, model_args: dict | None = None) -> Path:
    """Write ``model`` as a directory this plugin loads (config + safetensors), atomically through hub.io.

    ``weights`` names the torchvision weights whose ``transforms()`` the model takes (default: the builder's
    default weights); ``preprocess`` holds resize settings; ``model_args`` more keywords for the builder.
    """
    from safetensors.torch import save_file

    from hub.io import atomic_directory

    config = {"builder": builder, "num_classes": len(categories), "categories": list(categories),
              "weights": weights, "preprocess": dict(preprocess or {}), "model_args": dict(model_args or {})}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_directory(directory) as stage:
        save_file(state, str(Path(stage) / WEIGHTS_NAME))
        (Path(stage) / CONFIG_NAME).write_text(json.dumps(config, indent=2), encoding="utf-8")
    return Path(directory)
