"""Contrastive fine-tuning of open_clip models (CLIP-style image/text towers) through the hub's loop.

The starting point is any model the plugin loads (open_clip's hub layout on disk, a catalogue
``hf-hub:`` source, or an ``arch`` + checkpoint), built by :func:`mmhub_openclip.loading.create`.
Examples are (image, caption) pairs: the image goes through open_clip's own train transform
(random resized crop, scale 0.9-1, no flip) or its eval transform, the caption through the model's
tokenizer. The loss is CLIP's symmetric InfoNCE with the model's ``logit_scale`` (clamped at 100 as
open_clip's trainer does; SigLIP-style models with a ``logit_bias`` get their pairwise sigmoid loss
instead), with *multi-positive* targets: examples of a batch that share a key are
all positives of each other, each row of targets normalised to sum to one. The key is the record's
``label`` when the data has one (``{"image": ..., "caption": ..., "label": "seven"}``), else the
caption itself, so two images with the same caption are never pushed apart. On data with few
classes this is what gets a small CLIP past the ``log(batch)`` plateau of one-hot targets.

There is no new head, so ``--freeze-backbone`` / ``--unfreeze-last`` are not offered; every
parameter trains at the same learning rate. The output is open_clip's hub layout again
(``open_clip_config.json`` with the model and preprocess configs, ``open_clip_model.safetensors``,
and the tokenizer files of the start when it had any), which the plugin's pipelines load:
``hub run OUT image.png --label cat --label dog``.
"""
from __future__ import annotations

import math
from pathlib import Path

from hub.errors import HubError, InputError
from mmhub_openclip import loading

TASKS = ("zero-shot-image-classification", "image-text-similarity")
MAX_LOGIT_SCALE = math.log(100.0)


def trainable(spec, task, num_labels, labels, device_manager):
    """A contrastive TrainAdapter for ``spec``, or None for tasks this plugin does not train."""
    if task not in TASKS:
        return None
    from hub.train.adapter import TrainAdapter

    directory = loading.weights_dir(spec)
    model, eval_tf, tokenizer = loading.create(spec, directory)
    model = model.float().train()
    return TrainAdapter(
        module=model,
        kind="contrastive",
        load_example=_example_loader(train_transform(model), eval_tf, tokenizer),
        collate=collate,
        loss=loss,
        predict=predict,
        save=_saver(model_config(spec, directory), directory),
        spec_fields={"task": task, "plugin": "openclip", "arch": spec.arch},
    )


def train_transform(model):
    """open_clip's training transform for the model's own preprocess config."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    return image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=True)


def _example_loader(train_tf, eval_tf, tokenizer):
    from hub.inputs import load_image

    def load_example(record, train: bool) -> dict:
        try:
            image = load_image(record.input)
        except InputError as exc:
            raise InputError(f"{record.where}: {exc}") from None
        if not record.text:
            raise InputError(f"{record.where}: no caption; contrastive training needs one per image")
        key = f"label:{record.label}" if isinstance(record.label, str) and record.label else f"caption:{record.text}"
        return {"pixel_values": (train_tf if train else eval_tf)(image), "input_ids": tokenizer([record.text])[0],
                "key": key}

    return load_example


def collate(examples: list[dict]) -> dict:
    """Stacked images and token ids, and ``groups``: equal ids mark positives of each other."""
    import torch

    ids: dict[str, int] = {}
    groups = [ids.setdefault(e["key"], len(ids)) for e in examples]
    return {"pixel_values": torch.stack([e["pixel_values"] for e in examples]),
            "input_ids": torch.stack([e["input_ids"] for e in examples]),
            "groups": torch.tensor(groups, dtype=torch.long)}


def predict(module, batch: dict):
    """``(image_embeddings, text_embeddings)``, L2-normalised, float32."""
    image = module.encode_image(batch["pixel_values"], normalize=True).float()
    text = module.encode_text(batch["input_ids"], normalize=True).float()
    return image, text


def loss(module, batch: dict):
    """CLIP: symmetric InfoNCE with multi-positive targets from ``groups``; SigLIP: its sigmoid loss."""
    image, text = predict(module, batch)
    scale = module.logit_scale.float().clamp(max=MAX_LOGIT_SCALE).exp()
    logits = scale * image @ text.T
    bias = getattr(module, "logit_bias", None)
    if bias is not None:
        return sigmoid_loss(logits + bias.float(), batch["groups"])
    return contrastive_loss(logits, batch["groups"])


def contrastive_loss(logits, groups):
    """Mean of image->text and text->image cross-entropy against row-normalised positive masks."""
    import torch

    positives = (groups[:, None] == groups[None, :]).float()
    targets = positives / positives.sum(dim=1, keepdim=True)  # symmetric mask: same targets both ways
    i2t = -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
    t2i = -(targets * torch.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
    return (i2t + t2i) / 2


def sigmoid_loss(logits, groups):
    """SigLIP's pairwise loss (open_clip's ``SigLipLoss``): every positive pair +1, every other -1."""
    import torch.nn.functional as F

    signs = 2 * (groups[:, None] == groups[None, :]).float() - 1
    return -F.logsigmoid(signs * logits).sum() / logits.shape[0]


# -- saving ----------------------------------------------------------------------------------
def model_config(spec, directory: Path) -> dict:
    """The open_clip ``model_cfg`` of the start: its saved config, else the config of ``spec.arch``."""
    config = loading.read_config(directory)
    if config is not None:
        return dict(config["model_cfg"])
    import open_clip

    found = open_clip.get_model_config(spec.arch) if spec.arch else None
    if not found:
        raise HubError(f"cannot save a fine-tuned '{spec.id}': no {loading.CONFIG_NAME} in '{directory}' and "
                       f"no open_clip model config for arch '{spec.arch}'")
    found = dict(found)
    tag = open_clip.get_pretrained_cfg(spec.arch, spec.pretrained) if spec.pretrained else {}
    if tag.get("quick_gelu"):
        found["quick_gelu"] = True  # as loading.create builds it (force_quick_gelu)
    return found


def _saver(model_cfg: dict, start: Path):
    def save(module, out_dir) -> None:
        """open_clip's hub layout: config (model + preprocess), safetensors weights, tokenizer files.

        Each file is written atomically (hub.io); ``hub finetune`` also passes a fresh directory that
        is renamed into place only when complete.
        """
        from safetensors.torch import save_file

        from hub.io import atomic_path, atomic_write_bytes, atomic_write_json

        module = getattr(module, "module", module)  # unwrap DistributedDataParallel
        out = Path(out_dir)
        state = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
        with atomic_path(out / loading.SAFE_WEIGHTS[0]) as tmp:
            save_file(state, str(tmp))
        config = {"model_cfg": model_cfg, "preprocess_cfg": dict(module.visual.preprocess_cfg)}
        atomic_write_json(out / loading.CONFIG_NAME, config)
        for pattern in loading.TOKENIZER_FILES:
            for file in Path(start).glob(pattern):
                if file.is_file() and Path(start).resolve() != out.resolve():
                    atomic_write_bytes(out / file.name, file.read_bytes())

    return save

