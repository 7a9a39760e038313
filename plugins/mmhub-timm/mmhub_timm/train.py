"""Fine-tuning timm image classifiers: backbone weights from the spec, a new classifier head.

The starting point is a directory in timm's own format (``config.json`` + ``model.safetensors``,
resolved through :func:`hub.weights.resolve`, so a local dir, a package dir or a hub id). The
model is rebuilt with ``num_classes`` set to the new labels; every backbone tensor must load.
The checkpoint's head is kept when it was trained for the same labels (``label_names`` in
``config.json``, in the same order), else it is dropped and a new one initialised. With
``labels=None`` the model is taken as saved, head included, its labels read as the pipelines
read them (``hub eval`` measures that model). Preprocessing comes from the weights' pretrained config:
timm's eval transform for validation, its train transform with light augmentation for training
(random resized crop, scale 0.8-1, horizontal flip 0.5, no colour jitter). Change the
augmentation with ``options: {augment: {hflip: 0.0, scale: [0.9, 1.0], color_jitter: 0.1}}`` in
the catalogue entry (or the model directory's ``mmhub.yaml``); e.g. digits must not be flipped.

The output directory is timm's own format again (``timm.models.save_for_hf``), with the class
names as ``label_names``, so the hub's timm pipelines load it back.
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import HubError, InputError
from mmhub_timm import loading

TASKS = ("image-classification",)
DEFAULT_AUGMENT = {"hflip": 0.5, "scale": (0.8, 1.0), "color_jitter": 0.0}


def trainable(spec, task, num_labels, labels, device_manager):
    """A TrainAdapter for ``spec`` on ``task``, or None for tasks this plugin does not train."""
    if task not in TASKS:
        return None
    from hub.train.adapter import TrainAdapter

    directory = loading.weights_dir(spec)
    if labels is None and num_labels is None:  # the model as saved, head included
        model, config, labels = saved_model(spec, directory)
        num_labels, new_head = len(labels), False
    else:
        if not num_labels or num_labels < 2:
            raise HubError(f"image classification needs at least 2 classes to fine-tune '{spec.id}', "
                           f"got {num_labels}")
        labels = list(labels) if labels else [f"class_{i}" for i in range(num_labels)]
        model, config, new_head = build_model(spec, directory, labels)
    train_tf, eval_tf = transforms(model, spec)
    arch = str(config["architecture"])
    return TrainAdapter(
        module=model,
        kind="classification",
        load_example=_example_loader({name: i for i, name in enumerate(labels)}, train_tf, eval_tf),
        collate=collate,
        loss=loss,
        predict=predict,
        save=_saver(labels),
        spec_fields={"task": "image-classification", "plugin": "timm", "arch": arch,
                     "description": f"{arch} fine-tuned from {spec.id} on {num_labels} classes"},
        head_prefixes=head_prefixes(model),
        blocks=blocks,
        length=None,
        labels=labels,
        new_head=new_head,
    )


def saved_head_labels(config: dict) -> list[str] | None:
    """The class names the checkpoint's head was trained for, when ``config.json`` names them."""
    names = config.get("label_names")
    if isinstance(names, list) and len(names) == int(config.get("num_classes") or 0):
        return [str(n) for n in names]
    return None


def saved_model(spec, directory: Path):
    """(model, config, labels): the checkpoint as saved, its head and its class names."""
    from hub.train.adapter import NoHeadError

    config = loading.read_config(directory)
    num_classes = int(config.get("num_classes") or 0)
    if num_classes < 2:
        raise NoHeadError(f"'{spec.id}' has no trained image-classification head "
                          f"(its config.json says num_classes={num_classes})")
    model, _ = _load_weights(spec, directory, config, num_classes, keep_head=True)
    return model, config, loading.label_names(model, config, spec)


def build_model(spec, directory: Path, labels: list[str]):
    """(model, config, new_head): the architecture of ``directory`` with a head for ``labels``.

    The saved head is kept when the checkpoint names the same labels in the same order.
    """
    config = loading.read_config(directory)
    keep = saved_head_labels(config) == list(labels)
    model, _ = _load_weights(spec, directory, config, len(labels), keep_head=keep)
    return model, config, not keep


def _load_weights(spec, directory: Path, config: dict, num_classes: int, keep_head: bool):
    """The model with ``num_classes`` outputs; every saved tensor loads, the head's only when kept."""
    import timm

    path = loading.weights_file(directory)
    if path is None:
        raise HubError(f"cannot fine-tune '{spec.id}': '{directory}' has no {loading.SAFE_WEIGHTS}; "
                       "the starting weights are needed (save them with timm.models.save_for_hf)")
    model = timm.create_model(f"local-dir:{directory}", pretrained=False, num_classes=num_classes)
    heads = () if keep_head else head_prefixes(model)
    state = {k: v for k, v in loading.load_state_dict(path).items() if not _under(k, heads)}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        problem = " ".join(str(exc).splitlines()[1:3]).strip()
    else:
        missing = [k for k in missing if not _under(k, heads)]
        problem = f"missing {missing[:3]}, unexpected {unexpected[:3]}" if missing or unexpected else ""
    if problem:
        raise HubError(f"the weights in '{path}' do not fit timm architecture '{config['architecture']}': "
                       f"{problem}. Check config.json")
    return model.float().train(), path


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def head_prefixes(model) -> tuple[str, ...]:
    """The classifier's parameter prefixes, from ``default_cfg['classifier']`` (e.g. ``fc``)."""
    names = (getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", {}) or {}).get("classifier")
    if not names:
        names = "fc" if hasattr(model, "fc") else "head"
    return tuple([names] if isinstance(names, str) else names)


def blocks(model) -> list:
    """Backbone stages in order: ResNet ``layer1..4``, else ``stages``/``blocks``, else feature_info."""
    if all(hasattr(model, f"layer{i}") for i in range(1, 5)):
        return [getattr(model, f"layer{i}") for i in range(1, 5)]
    for name in ("stages", "blocks", "layers"):
        group = getattr(model, name, None)
        if group is not None and hasattr(group, "__len__") and len(group) > 1:
            return list(group)
    info = getattr(model, "feature_info", None)
    if info:
        found = [model.get_submodule(i["module"]) for i in info if i.get("module")]
        if found:
            return found
    heads = head_prefixes(model)
    return [m for n, m in model.named_children() if not _under(n, heads)]


def transforms(model, spec):
    """(train, eval) transforms from the weights' pretrained config and the spec's settings."""
    from timm.data import create_transform

    data_cfg = loading.data_config(model, spec.preprocess)
    augment = {**DEFAULT_AUGMENT, **((spec.options or {}).get("augment") or {})}
    train = create_transform(**data_cfg, is_training=True, hflip=float(augment["hflip"]),
                             scale=tuple(augment["scale"]), color_jitter=float(augment["color_jitter"]))
    return train, create_transform(**data_cfg, is_training=False)


def _example_loader(index: dict, train_tf, eval_tf):
    from hub.inputs import load_image

    def load_example(record, train: bool):
        try:
            image = load_image(record.input)
        except InputError as exc:
            raise InputError(f"{record.where}: {exc}") from None
        label = index.get(record.label, -100)
        return (train_tf if train else eval_tf)(image), label

    return load_example


def collate(examples: list) -> dict:
    import torch

    return {"pixel_values": torch.stack([x for x, _ in examples]),
            "labels": torch.tensor([y for _, y in examples], dtype=torch.long)}


def predict(module, batch: dict):
    return module(batch["pixel_values"])


def loss(module, batch: dict):
    import torch.nn.functional as F

    return F.cross_entropy(predict(module, batch).float(), batch["labels"], ignore_index=-100)


def _saver(labels: list[str]):
    def save(module, out_dir) -> None:
        """timm's own format: config.json (architecture, num_classes, label_names) + model.safetensors.

        Both appear at once (hub.io.atomic_directory).
        """
        from timm.models import save_for_hf

        from hub.io import atomic_directory

        module = getattr(module, "module", module)  # unwrap DistributedDataParallel
        pretrained = {"label_names": list(labels), "num_classes": len(labels)}
        with atomic_directory(out_dir, carry_over=True) as out:
            save_for_hf(module, str(out), safe_serialization=True,
                        model_config={"label_names": list(labels), "pretrained_cfg": pretrained})

    return save
