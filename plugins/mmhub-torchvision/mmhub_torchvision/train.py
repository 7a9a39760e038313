"""Fine-tuning torchvision segmentation models (FCN, DeepLabV3) through the hub's shared loop.

Semantic segmentation is a kind of training the hub does not have, so this module brings it as a
:class:`hub.train.adapter.TrainKind`: how the data is read, which classes it declares, and how a
model is measured (mIoU, pixel accuracy, mean class accuracy and loss, summed across ranks).

Data: a folder with ``images/`` and ``masks/`` holding files of the same stem (``images/a.jpg``,
``masks/a.png``), or a CSV/JSONL file (or a folder holding ``metadata.jsonl``) with ``image`` and
``mask`` columns, paths relative to the file. A mask is a single-channel image (mode L or P) of
class indices at the image's size; 255 marks pixels to ignore. ``classes.txt`` beside the data
names the classes, one per line, index = line: fine-tuning on other classes than the model's
gives the model a new last layer for them. Without it the model's own classes are kept.

Examples go through the weights' own ``transforms()`` (training adds a horizontal flip). The loss
is per-pixel cross-entropy at the model's input size; evaluation resizes the logits to each image's
own size, as the pipeline does, so ``hub eval`` measures what ``hub run`` predicts. The output is
this plugin's model directory again (:func:`mmhub_torchvision.loading.save_directory`).
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import HubError, InputError
from mmhub_torchvision.loading import load, save_directory
from mmhub_torchvision.catalog import PLUGIN, SEGMENTATION

IGNORE = 255  # mask value of pixels that count for nothing
CLASSES_FILE = "classes.txt"
TABLES = ("metadata.jsonl", "data.jsonl", "metadata.csv")


# -- the data --------------------------------------------------------------------------------------
def read(path: Path, purpose: str):
    """(records, problems) of a segmentation data set: a folder images/ + masks/, or a table of image,mask."""
    if path.is_dir():
        if (path / "images").is_dir():
            return read_folder(path)
        for name in TABLES:
            if (path / name).is_file():
                return read_table(path / name)
        raise HubError(f"{purpose} data '{path}' has neither an images/ folder (with masks/ beside it) nor "
                       f"{' or '.join(TABLES)}; segmentation data is images/<name>.png + masks/<name>.png, or a "
                       "JSONL file of {\"image\": ..., \"mask\": ...}")
    return read_table(path)


def read_folder(root: Path):
    """Records for ``images/<stem>.*`` with ``masks/<stem>.*``; an image without a mask is a problem."""
    from hub.inputs import IMAGE_SUFFIXES
    from hub.train.adapter import Record

    masks_dir = root / "masks"
    masks = {p.stem: p for p in sorted(masks_dir.iterdir())} if masks_dir.is_dir() else {}
    records, problems = [], []
    for file in sorted((root / "images").iterdir()):
        if file.name.startswith(".") or file.is_dir():
            continue
        where = f"{root.name}/images/{file.name}"
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(f"{where}: not an image file (expected one of {', '.join(sorted(IMAGE_SUFFIXES))})")
        elif file.stem not in masks:
            problems.append(f"{where}: no mask of the same name in {root.name}/masks/")
        else:
            records.append(Record(input=str(file), target=str(masks.pop(file.stem)), where=where))
    stems = {Path(r.input).stem for r in records}
    problems += [f"{root.name}/masks/{p.name}: no image of the same name in {root.name}/images/"
                 for stem, p in masks.items() if stem not in stems and not p.name.startswith(".")]
    return records, problems


def read_table(file: Path):
    """Records of a CSV/JSONL file with ``image`` and ``mask`` columns (paths relative to the file)."""
    from hub.train.adapter import Record
    from hub.train.data import media_path, table_rows

    rows, problems = table_rows(file)
    present = {key for _, row in rows for key in row}
    missing = [c for c in ("image", "mask") if c not in present]
    if rows and missing:
        raise HubError(f"segmentation data file '{file}' has no column {' or '.join(repr(c) for c in missing)}; "
                       f"its columns are: {', '.join(sorted(present))}. Give each row an image and a mask path")
    records = []
    for where, row in rows:
        image, problem = media_path(file, row.get("image"), "image")
        mask, mask_problem = media_path(file, row.get("mask"), "image") if not problem else (None, None)
        if problem or mask_problem:
            problems.append(f"{where}: {problem or mask_problem.replace('image file', 'mask file')}")
        else:
            records.append(Record(input=image, target=mask, where=where))
    return records, problems


def classes(path: Path, records) -> list[str] | None:
    """The class names of ``classes.txt`` in the data folder (or beside the data file), else None."""
    file = (path if path.is_dir() else path.parent) / CLASSES_FILE
    if not file.is_file():
        return None
    names = [line.strip() for line in file.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    twice = sorted({n for n in names if names.count(n) > 1})
    if len(names) < 2 or twice:
        why = f"names {', '.join(twice)} twice" if twice else f"has {len(names)} class(es)"
        raise HubError(f"'{file}' {why}; it lists each class once, one per line (index = line), at least 2")
    return names


# -- the metrics -----------------------------------------------------------------------------------
def segmentation_metrics(adapter, device: str):
    """A fresh accumulator of pixel counts for one evaluation."""
    from hub.train.evaluation import SummedMetrics

    class SegmentationMetrics(SummedMetrics):
        """Confusion of pixels at each image's own size, summed loss and pixels, images."""

        def __init__(self):
            super().__init__(adapter, device)
            n = len(adapter.labels)
            self.confusion = self.counter("confusion", (n, n), "int64")
            self.loss = self.counter("loss")
            self.images = self.counter("images", (), "int64")

        def add(self, out, batch, records) -> None:
            for logits, mask in full_size(out, batch):
                self._count(logits, mask)
            self.images += len(records)

        def _count(self, logits, mask) -> None:
            import torch
            import torch.nn.functional as F

            keep = mask != IGNORE
            n = self.confusion.shape[0]
            truth, predicted = mask[keep], logits.argmax(dim=0)[keep]
            self.confusion += torch.bincount(truth * n + predicted, minlength=n * n).reshape(n, n)
            self.loss += F.cross_entropy(logits[None], mask[None], ignore_index=IGNORE, reduction="sum").double()

        def compute(self, sums: dict) -> dict:
            from hub.train.metrics import segmentation_report

            report = segmentation_report(sums["confusion"], adapter.labels)
            pixels = report["pixels"]
            return {"miou": report["miou"], "pixel_accuracy": report["pixel_accuracy"],
                    "mean_class_accuracy": report["mean_class_accuracy"],
                    "loss": float(sums["loss"]) / pixels if pixels else 0.0, "count": int(sums["images"]),
                    **{k: report[k] for k in ("pixels", "per_class", "confusion")}}

    return SegmentationMetrics()


def full_size(logits, batch):
    """(logits C x H x W, mask H x W) per image, the logits resized bilinearly to the image's own size."""
    import torch.nn.functional as F

    for i, ((h, w), (mh, mw)) in enumerate(zip(batch["input_sizes"].tolist(), batch["sizes"].tolist())):
        own = logits[i:i + 1, :, :h, :w].float()
        yield F.interpolate(own, size=(mh, mw), mode="bilinear", align_corners=False)[0], batch["labels"][i, :mh, :mw]


def _kind():
    from hub.train.adapter import TrainKind

    return TrainKind(name="segmentation", read=read, metrics=segmentation_metrics,
                     metric_names=("miou", "pixel_accuracy", "mean_class_accuracy", "loss"), default_metric="miou",
                     labels=classes, default_lr=1e-4)


# -- the model -------------------------------------------------------------------------------------
def trainable(spec, task, num_labels, labels, device_manager):
    """A TrainAdapter for a segmentation model; ``labels=None`` asks for the model as saved."""
    if task != SEGMENTATION:
        return None
    from hub.train.adapter import TrainAdapter

    loaded = load(spec)
    model, categories = loaded.model, list(loaded.categories)
    new_head = bool(labels) and list(labels) != categories
    if new_head:
        replace_last_layer(model, len(labels))
        categories = list(labels)
    model.float().train().requires_grad_(True)
    return TrainAdapter(module=model, kind=_kind(), load_example=example_loader(loaded.transform, len(categories)),
                        collate=collate, loss=loss, predict=predict, save=saver(spec, loaded, categories),
                        spec_fields={"task": SEGMENTATION, "plugin": PLUGIN, "arch": loaded.builder,
                                     "description": f"{loaded.builder} fine-tuned from {spec.id} on "
                                                    f"{len(categories)} classes"},
                        head_prefixes=("classifier",), blocks=blocks, labels=categories, new_head=new_head)


def replace_last_layer(model, num_classes: int) -> None:
    """A new 1x1 convolution for ``num_classes`` at the end of the classifier (the rest is kept)."""
    import torch

    last = model.classifier[-1]
    if not isinstance(last, torch.nn.Conv2d):
        raise HubError(f"cannot give this model a new head: its classifier ends in {type(last).__name__}, "
                       "not a 1x1 convolution")
    model.classifier[-1] = torch.nn.Conv2d(last.in_channels, num_classes, kernel_size=1)


def blocks(model) -> list:
    """The backbone's stages in order (ResNet ``layer1`` .. ``layer4``)."""
    return [getattr(model.backbone, f"layer{i}") for i in range(1, 5) if hasattr(model.backbone, f"layer{i}")]


def example_loader(transform, num_classes: int):
    """(record, train) -> example: the transformed image and its mask (at the input size when training)."""

    def load_example(record, train: bool):
        import torch

        from hub.inputs import load_image

        try:
            image = load_image(record.input)
        except InputError as exc:
            raise InputError(f"{record.where}: {exc}") from None
        mask = read_mask(record, image.size, num_classes)
        pixels = transform(image)
        if train:
            from PIL import Image

            mask = mask.resize((pixels.shape[-1], pixels.shape[-2]), Image.NEAREST)
        target = torch.from_numpy(_array(mask)).long()
        if train and torch.rand(()) < 0.5:
            pixels, target = pixels.flip(-1), target.flip(-1)
        return pixels, target

    return load_example


def _array(mask):
    import numpy as np

    return np.array(mask, dtype=np.int64)


def read_mask(record, size: tuple, num_classes: int):
    """The record's mask as a PIL image of class indices, checked against the image and the classes."""
    from PIL import Image

    try:
        mask = Image.open(record.target)
        mask.load()
    except (OSError, ValueError) as exc:
        raise InputError(f"{record.where}: the mask '{record.target}' cannot be read ({exc})") from None
    if mask.mode not in ("L", "P", "I", "I;16"):
        raise InputError(f"{record.where}: the mask is a {mask.mode} image; a mask holds one class index per pixel "
                         "(a single-channel PNG, mode L or P)")
    if mask.size != size:
        raise InputError(f"{record.where}: the mask is {mask.size[0]}x{mask.size[1]} but the image is "
                         f"{size[0]}x{size[1]}; they must be the same size")
    values = _array(mask)
    bad = values[(values >= num_classes) & (values != IGNORE)]
    if bad.size:
        raise InputError(f"{record.where}: the mask holds class index {int(bad.max())}, but there are {num_classes} "
                         f"classes (0-{num_classes - 1}, and {IGNORE} for pixels to ignore); list the classes in "
                         f"{CLASSES_FILE}")
    return mask.convert("L") if mask.mode == "P" else mask


def collate(examples: list) -> dict:
    """Images padded with zeros and masks with the ignore value to the batch's largest; their own sizes."""
    import torch

    h = max(x.shape[-2] for x, _ in examples)
    w = max(x.shape[-1] for x, _ in examples)
    mh = max(m.shape[-2] for _, m in examples)
    mw = max(m.shape[-1] for _, m in examples)
    pixels = torch.zeros((len(examples), examples[0][0].shape[0], h, w))
    labels = torch.full((len(examples), mh, mw), IGNORE, dtype=torch.long)
    for i, (x, m) in enumerate(examples):
        pixels[i, :, :x.shape[-2], :x.shape[-1]] = x
        labels[i, :m.shape[-2], :m.shape[-1]] = m
    return {"pixel_values": pixels, "labels": labels,
            "input_sizes": torch.tensor([list(x.shape[-2:]) for x, _ in examples]),
            "sizes": torch.tensor([list(m.shape[-2:]) for _, m in examples])}


def predict(module, batch: dict):
    """Logits at the input size (B x C x H x W); images of one size run together, without padding."""
    import torch

    pixels, sizes = batch["pixel_values"], batch["input_sizes"].tolist()
    groups: dict[tuple, list[int]] = {}
    for i, size in enumerate(sizes):
        groups.setdefault(tuple(size), []).append(i)
    if len(groups) == 1:
        return module(pixels)["out"]
    out = None
    for (h, w), rows in groups.items():
        logits = module(pixels[rows, :, :h, :w])["out"]
        if out is None:
            out = logits.new_zeros((len(sizes), logits.shape[1], *pixels.shape[-2:]))
        out[rows, :, :h, :w] = logits
    return out if out is not None else torch.empty(0)


def loss(module, batch: dict):
    """Per-pixel cross-entropy at the input size; padding and ignored pixels count for nothing."""
    import torch.nn.functional as F

    logits = module(batch["pixel_values"])["out"].float()
    return F.cross_entropy(logits, batch["labels"], ignore_index=IGNORE)


def saver(spec, loaded, categories: list[str]):
    """``save(module, out_dir)``: this plugin's model directory, with the weights' transform and settings."""
    config = dict(loaded.config or {})
    weights = config.get("weights") or _enum_name(spec)
    preprocess = {**dict(config.get("preprocess") or {}), **dict(spec.preprocess or {})}

    def save(module, out_dir) -> None:
        save_directory(module, out_dir, loaded.builder, categories, weights=weights, preprocess=preprocess,
                       model_args=config.get("model_args"))

    return save


def _enum_name(spec) -> str | None:
    from mmhub_torchvision.catalog import SOURCE_PREFIX

    source = spec.source or ""
    return source[len(SOURCE_PREFIX):] if source.startswith(SOURCE_PREFIX) else None
