"""Detection and segmentation benchmark: Faster R-CNN (and DeepLabV3) on 16 JPEGs, the hub against torchvision.

Both sides read the same JPEG files, apply the weights' own ``transforms()`` and run the 16 images
as one list on the CPU. The anchor is torchvision's documented recipe (``weights.transforms()`` +
``PIL.Image.open`` + ``model(list_of_images)`` under ``torch.inference_mode``) in fp32. The hub
runs once in fp32 (target: at least 0.97x the anchor) and once under the ``auto`` dtype policy
(bf16 autocast + channels-last where the CPU runs bf16 fast), reported with its detection agreement.

Offline, so the model has random weights (seeded, ``weights=None``), saved in the plugin's directory
format and loaded by path; speed does not depend on the values. Random heads score every box alike,
so the classifier is rescaled to give spread-out scores, and agreement is measured on the boxes the
fp32 anchor keeps at score >= 0.5: a box agrees when the other run has one of the same label at
IoU >= 0.5. The images are resized by the model to a 320-pixel short side (``min_size``) instead of
the weights' 800, to keep a CPU run short; a GPU run would use the weights' own sizes.

DeepLabV3 ResNet-50 (random weights, a 256-pixel short side instead of 520) runs the same images in
one batch; its ``auto`` run is compared pixel by pixel with torchvision's fp32 class maps.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.common import Row, command_time

GROUP = "detection: Faster R-CNN ResNet-50 FPN v2 (CPU)"
BUILDER = "fasterrcnn_resnet50_fpn_v2"
WEIGHTS = "FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1"
SIZES = {"min_size": 320, "max_size": 427}
THRESHOLD = 0.5


def run(quick: bool = False) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = write_jpegs(root / "images", 4 if quick else 16)
        model_dir = save_model(root / "frcnn-random")
        repeat = 1  # a CPU pass over 16 images takes about a minute: warm-up plus one timed pass each
        times, outs, plan = measure(model_dir, paths, repeat)
        detection = rows(times, outs, plan, len(paths), repeat)
        segmentation = segmentation_rows(save_segmenter(root / "deeplabv3-random"), paths)
    return detection + segmentation + [list_row(quick)]


def save_model(directory: Path) -> Path:
    """A seeded random Faster R-CNN whose classifier gives spread-out scores, in the plugin's format."""
    import torch
    from torchvision.models import get_model, get_weight

    from mmhub_torchvision.loading import save_directory

    torch.manual_seed(0)
    model = get_model(BUILDER, weights=None, weights_backbone=None, **SIZES).eval()
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.weight.mul_(1.5)  # std 0.01 -> scores from near 0 to near 1
        model.roi_heads.box_predictor.cls_score.bias.normal_(-1.0, 1.0)
    categories = get_weight(WEIGHTS).meta["categories"]
    return save_directory(model, directory, BUILDER, categories, weights=WEIGHTS, preprocess=SIZES)


class DirectTorchvision:
    """The anchor: torchvision's own recipe in fp32, on the same files, as one list."""

    def __init__(self, model_dir: Path):
        from safetensors.torch import load_file
        from torchvision.models import get_model, get_weight

        self.model = get_model(BUILDER, weights=None, weights_backbone=None, **SIZES).eval()
        self.model.load_state_dict(load_file(str(model_dir / "model.safetensors")))
        self.transform = get_weight(WEIGHTS).transforms()

    def __call__(self, paths):
        import torch
        from PIL import Image

        images = [self.transform(Image.open(p).convert("RGB")) for p in paths]
        with torch.inference_mode():
            return self.model(images)


def measure(model_dir: Path, paths: list[Path], repeat: int):
    """Best wall time (s) per run of 16 images, and the outputs, of the anchor, hub fp32 and hub auto."""
    import hub
    from bench.bench_vision import interleaved

    anchor = DirectTorchvision(model_dir)
    fp32 = hub.load(str(model_dir), device="cpu", dtype="fp32", cache=False)
    auto = hub.load(str(model_dir), device="cpu", dtype="auto", cache=False)
    files = [str(p) for p in paths]
    fns = {"anchor": lambda: anchor(paths),
           "fp32": lambda: fp32(files, batch_size=len(files), score_threshold=0.0),
           "auto": lambda: auto(files, batch_size=len(files), score_threshold=0.0)}
    rates, outs = interleaved(fns, len(paths), repeat)
    return {name: len(paths) / rate for name, rate in rates.items()}, outs, auto.device_manager.plan


def rows(times: dict, outs: dict, plan, n: int, repeat: int) -> list[Row]:
    import torch

    reference = [{"boxes": o["boxes"].tolist(), "labels": o["labels"].tolist(), "scores": o["scores"].tolist()}
                 for o in outs["anchor"]]
    fp32_agree, _ = agreement(reference, outs["fp32"])
    auto_agree, mean_iou = agreement(reference, outs["auto"])
    kept = sum(sum(s >= THRESHOLD for s in r["scores"]) for r in reference)
    notes = (f"{n} JPEGs (320x240, shapes on texture), one list of {n}, best of {repeat}; random weights (offline), "
             f"min_size {SIZES['min_size']}; {torch.get_num_threads()} torch threads")
    agree_notes = (f"{kept} anchor boxes at score >= {THRESHOLD}; a box agrees at IoU >= 0.5 with the same label "
                   f"(mean IoU of agreeing boxes {mean_iou:.3f}); hub fp32 vs anchor: {fp32_agree:.1f}%")
    return [
        Row(GROUP, f"hub fp32, {n} images (s)", times["fp32"], "torchvision direct fp32", times["anchor"], "s",
            ">= 0.97x", notes, {"box_agreement_fp32_pct": fp32_agree}),
        Row(GROUP, f"hub auto policy: {plan.dtype}, channels-last, {n} images (s)", times["auto"],
            "torchvision direct fp32", times["anchor"], "s", "informational", f"{notes}; {plan.reason}"),
        Row(GROUP, f"box agreement, hub auto ({plan.dtype}) vs torchvision fp32 (%)", auto_agree,
            "identical (100%)", 100.0, "%", "informational", agree_notes),
    ]


def agreement(reference: list[dict], results: list) -> tuple[float, float]:
    """Percent of the reference's boxes (score >= THRESHOLD) matched by a box of the same label at IoU >= 0.5."""
    matched, total, ious = 0, 0, []
    for ref, result in zip(reference, results):
        candidates = [(b.box, b.index) for b in result.boxes if b.score >= THRESHOLD / 2]
        for box, label, score in zip(ref["boxes"], ref["labels"], ref["scores"]):
            if score < THRESHOLD:
                continue
            total += 1
            best = max((iou(box, other) for other, lab in candidates if lab == label), default=0.0)
            if best >= 0.5:
                matched += 1
                ious.append(best)
    return 100.0 * matched / max(1, total), sum(ious) / max(1, len(ious))


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


SEG_GROUP = "segmentation: DeepLabV3 ResNet-50 (CPU)"
SEG_BUILDER = "deeplabv3_resnet50"
SEG_WEIGHTS = "DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"
SEG_SIZE = {"resize_size": 256}


def save_segmenter(directory: Path) -> Path:
    """A seeded random DeepLabV3 (21 classes) in the plugin's format, resized to a 256-pixel short side."""
    import torch
    from torchvision.models import get_model, get_weight

    from mmhub_torchvision.loading import save_directory

    torch.manual_seed(0)
    model = get_model(SEG_BUILDER, weights=None, weights_backbone=None, num_classes=21).eval()
    categories = get_weight(SEG_WEIGHTS).meta["categories"]
    return save_directory(model, directory, SEG_BUILDER, categories, weights=SEG_WEIGHTS, preprocess=SEG_SIZE)


class DirectSegmentation:
    """The anchor: transforms, one stacked batch, ``model(x)["out"]`` resized to each image, argmax; fp32."""

    def __init__(self, model_dir: Path):
        from safetensors.torch import load_file
        from torchvision.models import get_model, get_weight

        self.model = get_model(SEG_BUILDER, weights=None, weights_backbone=None, num_classes=21).eval()
        self.model.load_state_dict(load_file(str(model_dir / "model.safetensors")))
        self.transform = get_weight(SEG_WEIGHTS).transforms(**SEG_SIZE)

    def __call__(self, paths):
        import torch
        import torch.nn.functional as F
        from PIL import Image

        images = [Image.open(p).convert("RGB") for p in paths]
        with torch.inference_mode():
            logits = self.model(torch.stack([self.transform(img) for img in images]))["out"]
            return [F.interpolate(logits[i:i + 1], size=(img.height, img.width), mode="bilinear",
                                  align_corners=False)[0].argmax(0) for i, img in enumerate(images)]


def segmentation_rows(model_dir: Path, paths: list[Path]) -> list[Row]:
    """Hub fp32 and auto against torchvision direct fp32, and the pixel agreement of auto with the anchor."""
    import hub
    import torch
    from bench.bench_vision import interleaved

    anchor = DirectSegmentation(model_dir)
    fp32 = hub.load(str(model_dir), device="cpu", dtype="fp32", cache=False)
    auto = hub.load(str(model_dir), device="cpu", dtype="auto", cache=False)
    files = [str(p) for p in paths]
    fns = {"anchor": lambda: anchor(paths), "fp32": lambda: fp32(files, batch_size=len(files)),
           "auto": lambda: auto(files, batch_size=len(files))}
    rates, outs = interleaved(fns, len(paths), 1)
    maps = {name: [torch.tensor(r.class_map) for r in outs[name]] for name in ("fp32", "auto")}
    total = sum(m.numel() for m in outs["anchor"])
    agree = {name: 100.0 * sum(int((a == b).sum()) for a, b in zip(outs["anchor"], maps[name])) / total
             for name in maps}
    classes = len(set(torch.cat([m.flatten() for m in outs["anchor"]]).tolist()))
    times = {name: len(paths) / rate for name, rate in rates.items()}
    n, plan = len(paths), auto.device_manager.plan
    notes = (f"{n} JPEGs (320x240), one batch, resize_size 256, best of 1; random weights (offline); "
             f"{torch.get_num_threads()} torch threads")
    return [
        Row(SEG_GROUP, f"hub fp32, {n} images (s)", times["fp32"], "torchvision direct fp32", times["anchor"], "s",
            ">= 0.97x", f"{notes}; pixel agreement with the anchor {agree['fp32']:.2f}%"),
        Row(SEG_GROUP, f"hub auto policy: {plan.dtype}, channels-last, {n} images (s)", times["auto"],
            "torchvision direct fp32", times["anchor"], "s", "informational", f"{notes}; {plan.reason}"),
        Row(SEG_GROUP, f"pixel agreement, hub auto ({plan.dtype}) vs torchvision fp32 (%)", agree["auto"],
            "identical (100%)", 100.0, "%", "informational",
            f"{classes} distinct classes in the anchor's maps; untrained weights have near-tied logits"),
    ]


def list_row(quick: bool) -> Row:
    """`hub list` with the four shipped plugins installed, against Python importing the core's dependencies."""
    from hub.plugins import installed_plugin_names

    bin_dir = Path(sys.executable).parent
    repeat = 3 if quick else 11
    ours = command_time([str(bin_dir / "hub"), "list"], repeat=repeat)
    anchor = command_time([sys.executable, "-c", "import click, pluggy, yaml"], repeat=repeat)
    plugins = installed_plugin_names()
    return Row("hub list (four plugins)", f"hub list with {len(plugins)} plugins installed (median wall time)", ours,
               "python + click, pluggy, yaml imported", anchor, "s", "<= 0.12 s", ", ".join(plugins))


def write_jpegs(directory: Path, count: int) -> list[Path]:
    """320x240 JPEGs: coloured ellipses and rectangles on a noisy texture, one seed per image."""
    import numpy as np
    from PIL import Image, ImageDraw

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        rng = np.random.default_rng(i)
        img = Image.fromarray(rng.integers(40, 215, (240, 320, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(4):
            x, y = rng.integers(0, 260), rng.integers(0, 180)
            w, h = rng.integers(20, 60), rng.integers(20, 60)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=colour)
        path = directory / f"img{i:03d}.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row.name}: {row.ours:.4g} vs {row.anchor_name} {row.anchor:.4g} -> {row.ratio:.2f}x  ({row.notes})")
