"""Loading open_clip models for the hub: the hub layout on disk, open_clip's own factory, safe weights.

The on-disk form is open_clip's Hugging Face hub layout: ``open_clip_config.json`` (``model_cfg`` and
``preprocess_cfg``) beside ``open_clip_model.safetensors`` (or ``open_clip_pytorch_model.bin``) and,
for models with a Hugging Face tokenizer, its tokenizer files. A catalogue source ``hf-hub:ORG/NAME``
is fetched through :func:`hub.weights.resolve` (pinned revision, offline errors that name the fix) and
then built with ``open_clip.create_model_from_pretrained('local-dir:DIR')``; the tokenizer comes from
``open_clip.get_tokenizer('local-dir:DIR')``, so preprocessing and tokenisation follow the model's own
config. A directory without ``open_clip_config.json`` but with a checkpoint is built from the
catalogue's ``arch`` (an open_clip model name) and the preprocessing of its ``pretrained`` tag.
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import HubError, WeightsError
from hub.plugin_kit import read_json_file

CONFIG_NAME = "open_clip_config.json"
SAFE_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors")
PICKLE_WEIGHTS = ("open_clip_pytorch_model.bin",)
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.*",
                   "merges.txt", "spiece.model", "*.tiktoken"]
DEFAULT_TASK = "zero-shot-image-classification"
CAPTION_TASK = "image-captioning"


def read_config(directory) -> dict | None:
    """The parsed ``open_clip_config.json`` of ``directory`` when it has a ``model_cfg``, else None."""
    data = read_json_file(Path(directory) / CONFIG_NAME)
    return data if isinstance(data, dict) and isinstance(data.get("model_cfg"), dict) else None


def detect(path, task, supported: set[str]):
    """A ModelSpec for a directory in open_clip's hub layout, or None when ``path`` is not one."""
    from hub.registry import ModelSpec

    root = Path(path)
    config = read_config(root)
    if config is None:
        return None
    cfg = config["model_cfg"]
    coca = "multimodal_cfg" in cfg  # CoCa writes captions: that is its task unless another is asked for
    task = task or (CAPTION_TASK if coca else DEFAULT_TASK)
    if task not in supported or (task == CAPTION_TASK and not coca):
        return None
    vision = cfg.get("vision_cfg", {})
    what = vision.get("timm_model_name") or f"ViT width {vision.get('width', '?')}, {vision.get('layers', '?')} layers"
    # The id is the full path: the device manager caches by id, and two runs/*/model dirs must not collide.
    return ModelSpec(id=str(root.resolve()), task=task, plugin="openclip", source=str(root.resolve()),
                     description=f"local open_clip model ({what}, embed_dim {cfg.get('embed_dim', '?')})",
                     origin=str(root.resolve()))


def weights_dir(spec) -> Path:
    """A local directory with the config and a checkpoint: safetensors first, the pickle only if needed."""
    from hub import weights

    directory = weights.resolve(spec, allow_patterns=[CONFIG_NAME, *SAFE_WEIGHTS, *TOKENIZER_FILES])
    if checkpoint_in(directory) is None and weights.is_hub_id(spec.source):
        directory = weights.resolve(spec, allow_patterns=[CONFIG_NAME, *PICKLE_WEIGHTS, *TOKENIZER_FILES])
    return directory


def checkpoint_in(directory: Path) -> Path | None:
    """The checkpoint file open_clip would pick in ``directory`` (safetensors preferred), or None."""
    for name in (*SAFE_WEIGHTS, *PICKLE_WEIGHTS):
        if (Path(directory) / name).is_file():
            return Path(directory) / name
    found = sorted(Path(directory).glob("*.safetensors")) + sorted(Path(directory).glob("*.bin"))
    return found[0] if found else None


RESAVE = "save the model again in open_clip's hub layout (open_clip.push_to_hf_hub.save_for_hf)"
CONVERT = (f"convert it to {SAFE_WEIGHTS[0]} where you trust the file: load it with open_clip and save it with "
           "open_clip.push_to_hf_hub.save_for_hf(model, tokenizer, model_config, directory, safe_serialization=True)")


def create(spec, directory: Path):
    """``(model, preprocess, tokenizer)`` built by open_clip from ``directory`` (fp32, on the CPU)."""
    import open_clip

    checkpoint = checked_checkpoint(spec, directory)
    try:
        from hub.weights import quiet_pickle_warnings

        with quiet_pickle_warnings():
            if read_config(directory) is not None:
                name = f"local-dir:{Path(directory).resolve()}"
                model, preprocess = open_clip.create_model_from_pretrained(name, device="cpu", weights_only=True)
                tokenizer = open_clip.get_tokenizer(name)
            else:
                model, preprocess, tokenizer = _create_from_arch(spec, checkpoint)
    except HubError:
        raise
    except Exception as exc:
        raise build_error(spec, directory, checkpoint, exc) from exc
    return model, preprocess, tokenizer


def checked_checkpoint(spec, directory: Path) -> Path:
    """The checkpoint open_clip will read, present and (safetensors) with a whole header; else WeightsError."""
    from hub import weights

    checkpoint = checkpoint_in(directory)
    if checkpoint is None:
        raise WeightsError(
            f"model '{spec.id}': no weights in '{directory}'. Expected {SAFE_WEIGHTS[0]} (or {PICKLE_WEIGHTS[0]}) "
            f"beside {CONFIG_NAME}, as open_clip's hub layout has them; {weights.refetch_hint(spec, RESAVE)}")
    if checkpoint.suffix == ".safetensors":
        weights.check_safetensors(checkpoint, weights.refetch_hint(spec, RESAVE))
    return checkpoint


def build_error(spec, directory: Path, checkpoint: Path, exc: Exception) -> WeightsError:
    """One line for a model open_clip could not build: an unsafe pickle, or the library's first line."""
    from hub.weights import is_pickle_failure, unsafe_pickle_error

    if is_pickle_failure(exc):
        return unsafe_pickle_error(checkpoint, exc, CONVERT)
    lines = str(exc).strip().splitlines()
    return WeightsError(f"open_clip could not build model '{spec.id}' from '{directory}': {type(exc).__name__}"
                        + (f": {lines[0].rstrip('.')}" if lines else "") + f"; {RESAVE}")


def _create_from_arch(spec, checkpoint: Path):
    """Build ``spec.arch`` with the preprocessing of its pretrained tag and load ``checkpoint``."""
    import open_clip

    if not spec.arch:
        raise HubError(f"model '{spec.id}': '{checkpoint.parent}' has no {CONFIG_NAME}; give the catalogue entry "
                       f"an 'arch' (an open_clip model name, see open_clip.list_models()).")
    tag = open_clip.get_pretrained_cfg(spec.arch, spec.pretrained) if spec.pretrained else {}
    model, preprocess = open_clip.create_model_from_pretrained(
        spec.arch, pretrained=str(checkpoint), device="cpu", weights_only=True,
        force_quick_gelu=bool(tag.get("quick_gelu", False)),
        image_mean=tag.get("mean"), image_std=tag.get("std"),
        image_interpolation=tag.get("interpolation"), image_resize_mode=tag.get("resize_mode"))
    return model, preprocess, open_clip.get_tokenizer(spec.arch)


def wants_channels_last(model) -> bool:
    """Channels-last pays off for convolutional image towers (ResNets, ConvNeXts), not for ViTs."""
    import torch

    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.visual.modules())
    return convs > 1
