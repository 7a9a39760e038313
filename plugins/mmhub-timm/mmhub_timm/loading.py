"""Loading timm models for the hub: a directory in timm's own hub format, strict weights, labels.

The format is what ``timm.models.save_for_hf`` / ``push_to_hf_hub`` write: ``config.json`` with
``architecture``, ``num_classes``, ``pretrained_cfg`` (and optionally ``model_args``,
``label_names``, ``label_descriptions``) beside ``model.safetensors`` (or ``pytorch_model.bin``).

The model is built with ``pretrained=False`` from that config and the weights are loaded with
``strict=True``: a missing or mismatched weights file is an error, never random weights.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from hub.errors import ModelUnavailableError, WeightsError

CONFIG_NAME = "config.json"
SAFE_WEIGHTS = "model.safetensors"
PICKLE_WEIGHTS = "pytorch_model.bin"
_IMAGENET_HINT = re.compile(r"in1k|imagenet", re.IGNORECASE)
RESAVE = "save the model again with timm.models.save_for_hf(model, directory, safe_serialization=True)"
CONVERT = (f"convert it to {SAFE_WEIGHTS} where you trust the file: load it with timm and save it with "
           f"timm.models.save_for_hf(model, directory, safe_serialization=True)")


def read_config(directory: Path) -> dict:
    """The parsed ``config.json`` of a timm model directory; errors name the file."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise ModelUnavailableError(f"'{directory}' has no {CONFIG_NAME}; a timm model directory holds "
                                    f"{CONFIG_NAME} and {SAFE_WEIGHTS} as timm.models.save_for_hf writes them")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"'{path}' is not valid JSON ({exc}); {RESAVE}") from None
    if not isinstance(config, dict) or not config.get("architecture"):
        raise WeightsError(f"'{path}' names no timm 'architecture'; {RESAVE}")
    return config


def is_timm_config(config: dict) -> bool:
    """A config.json written by timm (not transformers' ``architectures`` / open_clip's layout)."""
    return isinstance(config, dict) and "architecture" in config and "pretrained_cfg" in config


def weights_dir(spec) -> Path:
    """A local directory with the spec's config and weights (safetensors fetched before pickles)."""
    from hub import weights

    directory = weights.resolve(spec, allow_patterns=[CONFIG_NAME, SAFE_WEIGHTS])
    if weights_file(directory) is None and weights.is_hub_id(spec.source):
        directory = weights.resolve(spec, allow_patterns=[CONFIG_NAME, PICKLE_WEIGHTS])
    return directory


def weights_file(directory: Path) -> Path | None:
    for name in (SAFE_WEIGHTS, PICKLE_WEIGHTS):
        path = Path(directory) / name
        if path.is_file():
            return path
    return None


def load_state_dict(path: Path, spec=None) -> dict:
    """Tensors from a checked safetensors file, else from a pickle through ``torch.load(weights_only=True)``."""
    from hub import weights

    if Path(path).suffix == ".safetensors":
        return weights.load_safetensors(path, weights.refetch_hint(spec, RESAVE))
    return weights.load_pickled_tensors(path, CONVERT)


def create_model(directory: Path, config: dict):
    """``timm.create_model`` for the directory's architecture, config and model args, untrained."""
    import timm

    num_classes = int(config.get("num_classes", config["pretrained_cfg"].get("num_classes", 1000)))
    try:
        timm.models.parse_model_name(f"local-dir:{directory}")
    except ValueError:  # timm before 'local-dir:' sources: apply the config by hand
        return _create_from_config(config, num_classes)
    return timm.create_model(f"local-dir:{directory}", pretrained=False, num_classes=num_classes)


def _create_from_config(config: dict, num_classes: int):
    import dataclasses

    import timm
    from timm.models import PretrainedCfg

    known = {f.name for f in dataclasses.fields(PretrainedCfg)}
    cfg = {k: v for k, v in config["pretrained_cfg"].items() if k in known}
    for key in ("label_names", "label_descriptions"):
        if key in config and key in known:
            cfg[key] = config[key]
    return timm.create_model(config["architecture"], pretrained=False, pretrained_cfg=cfg,
                             num_classes=num_classes, **config.get("model_args", {}))


def load_model(spec, directory: Path):
    """The timm model of ``directory`` with its weights loaded strictly."""
    config = read_config(directory)
    path = weights_file(directory)
    if path is None:
        from hub import weights

        raise WeightsError(f"model '{spec.id}': '{directory}' has {CONFIG_NAME} but no weights ({SAFE_WEIGHTS} or "
                           f"{PICKLE_WEIGHTS}); {weights.refetch_hint(spec, RESAVE)}")
    state = load_state_dict(path, spec)
    model = _load_without_init(directory, config, state, path)
    if model is None:  # the architecture computes buffers at construction: build it for real
        model = create_model(directory, config)
        _strict_load(model, state, path, config)
    return model.eval(), config


def _load_without_init(directory: Path, config: dict, state: dict, path: Path):
    """Build on the meta device (no random init to throw away) and adopt the weights' tensors.

    Returns None when the constructor needs real tensors or some tensor is not in the weights (a
    non-persistent buffer computed in ``__init__``); the caller then builds the model normally.
    """
    import torch

    try:
        with torch.device("meta"):
            model = create_model(directory, config)
    except Exception:  # an architecture whose constructor needs real tensors
        return None
    _strict_load(model, state, path, config, assign=True)
    tensors = list(model.parameters()) + list(model.buffers())
    if any(t.is_meta for t in tensors):
        return None
    if any(t.is_floating_point() and t.dtype != torch.float32 for t in tensors):
        model = model.float()  # half-precision checkpoints: weights stay fp32, autocast does the rest
    return model


def _strict_load(model, state: dict, path: Path, config: dict, assign: bool = False) -> None:
    try:
        model.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise WeightsError(f"the weights in '{path}' do not fit timm architecture '{config['architecture']}' with "
                           f"{config.get('num_classes')} classes: {' '.join(first)}. Check config.json") from None


def label_names(model, config: dict, spec=None) -> list[str]:
    """A readable name per class: the weights' own labels, ImageNet's for ImageNet-1k heads, else class_N."""
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    num_classes = int(getattr(model, "num_classes", 0) or 0)
    names = config.get("label_names", cfg.get("label_names"))
    descriptions = config.get("label_descriptions", cfg.get("label_descriptions")) or {}
    if isinstance(names, dict):
        names = [names.get(str(i), names.get(i, f"class_{i}")) for i in range(num_classes)]
    if names and len(names) == num_classes:
        return [str(descriptions.get(n, n)) if isinstance(descriptions, dict) else str(n) for n in names]
    if num_classes == 1000 and _says_imagenet(cfg, spec):
        from timm.data import ImageNetInfo

        return list(ImageNetInfo("imagenet-1k").label_descriptions())
    return [f"class_{i}" for i in range(num_classes)]


def _says_imagenet(cfg: dict, spec) -> bool:
    hints = [cfg.get("tag"), cfg.get("hf_hub_id"), cfg.get("dataset")]
    if spec is not None:
        hints += [spec.source, spec.id, (spec.options or {}).get("labels")]
    return any(isinstance(h, str) and _IMAGENET_HINT.search(h) for h in hints)


def data_config(model, overrides: dict | None = None) -> dict:
    """timm's eval preprocessing for the weights (size, crop, mean/std, interpolation), with overrides.

    As timm's model cards do (``resolve_model_data_config``), the train-time input size is used;
    a catalogue entry may set ``preprocess: {use_test_size: true}`` for the test size and crop, as
    timm's validate.py does, or override ``input_size``, ``crop_pct``, ``crop_mode``, ``mean``, ``std``,
    ``interpolation`` themselves.
    """
    from timm.data import resolve_data_config

    args = dict(overrides or {})
    use_test_size = bool(args.pop("use_test_size", False))
    return resolve_data_config(args=args, model=model, use_test_size=use_test_size)
