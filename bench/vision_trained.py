"""Top-1 agreement of the ``auto`` policy with fp32 on a *trained* ResNet-50.

Offline there are no ImageNet weights, and an untrained network's near-tied logits make any
agreement figure meaningless. So a full-width ResNet-50 is first fine-tuned through the hub's own
loop on scikit-learn's digits (32x32 inputs, a few epochs), and the agreement is then measured on the
held-out digits through the hub's image-classification pipeline, fp32 against the auto policy
(bf16 autocast + channels-last on CPUs with AMX / AVX-512 BF16).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Row

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SMALL = {"input_size": (3, 32, 32), "crop_pct": 1.0, "test_input_size": None, "mean": (0.5,) * 3, "std": (0.5,) * 3}


def run(quick: bool = False) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = write_digits(root / "digits")
        out, val_paths, accuracy = train_resnet50(root, data, epochs=1 if quick else 4)
        agree, n, acc_fp32 = agreement(out, val_paths)
    notes = (f"ResNet-50 fine-tuned through hub finetune on sklearn digits (32x32), held-out accuracy "
             f"{acc_fp32:.3f} (fp32); {n} held-out digits")
    return [Row("vision: ResNet-50 image classification (CPU)",
                "top-1 agreement, hub auto vs hub fp32, trained ResNet-50 (%)", agree, "identical (100%)", 100.0,
                "%", ">= 99%", notes)]


def write_digits(directory: Path) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        path = directory / NAMES[target] / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels * (255 / 16)).astype("uint8")).save(path)
    return directory


def train_resnet50(root: Path, data: Path, epochs: int, size: int = 32):
    """A full-width ResNet-50 fine-tuned on ``data`` at ``size`` x ``size`` through ``hub finetune``: (its
    directory, the held-out (path, label) pairs, held-out accuracy)."""
    import timm
    import torch
    from timm.models import save_for_hf

    from hub.local import write_card
    from hub.train.api import finetune
    from hub.train.data import read_records, stratified_split

    torch.manual_seed(0)
    overlay = {**SMALL, "input_size": (3, size, size)}
    start = timm.create_model("resnet50", pretrained=False, pretrained_cfg_overlay=overlay)
    base = root / "resnet50-start"
    save_for_hf(start, str(base), safe_serialization=True)
    write_card(base, {"task": "image-classification", "plugin": "timm",
                      "options": {"augment": {"hflip": 0.0, "scale": [0.85, 1.0]}}})
    result = finetune(str(base), data, out=root / "out", epochs=epochs, lr=2e-3, batch_size=64, head_lr_mult=1.0,
                      precision="auto", progress=False)
    _, val = stratified_split(read_records(data, "classification", "image")[0], 0.2, seed=0)
    return root / "out", [(r.input, r.label) for r in val], result.metrics.get("accuracy")


def agreement(out: Path, val: list[tuple]) -> tuple[float, int, float]:
    import hub

    paths = [p for p, _ in val]
    fp32 = hub.load(str(out), device="cpu", dtype="fp32", cache=False)(paths, top_k=1)
    auto = hub.load(str(out), device="cpu", dtype="auto", cache=False)(paths, top_k=1)
    same = sum(a.top.label == b.top.label for a, b in zip(fp32, auto))
    correct = sum(a.top.label == label for a, (_, label) in zip(fp32, val))
    return 100.0 * same / len(val), len(val), correct / len(val)
