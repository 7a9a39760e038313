"""A small pure-torch TrainAdapter on scikit-learn's digits, for the fine-tuning loop's tests.

Records hold either an index into the digits array (fast, for Trainer-level tests) or a path
to an 8x8 PNG written by :func:`write_image_folder` (for tests through the data reader and
the CLI). Training examples get a little Gaussian noise drawn from torch's RNG, and the
network has dropout, so a resumed run only matches an uninterrupted one when the RNG states
are restored too. ``DigitsPlugin`` serves it through the ``trainable`` hook as plugin
``digits-test``; run as a script this file trains through :func:`hub.train.api.finetune`
(used under torchrun and for the kill-and-resume test).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from hub import hookimpl
from hub.train.adapter import Record, TrainAdapter

PLUGIN = "digits-test"
HIDDEN = 64


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype("float32") / 16.0, data.target


def index_records(n: int | None = None) -> list[Record]:
    _, target = digits()
    n = len(target) if n is None else n
    return [Record(input=i, label=str(int(target[i])), where=f"digits:{i}") for i in range(n)]


def write_image_folder(root: Path, n: int | None = None) -> Path:
    """``root/<digit>/<i>.png`` for the first ``n`` digits."""
    import numpy as np
    from PIL import Image

    x, target = digits()
    n = len(target) if n is None else n
    for i in range(n):
        folder = root / str(int(target[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((x[i].reshape(8, 8) * 255).astype(np.uint8), mode="L").save(folder / f"{i:04d}.png")
    return root


def build_module(num_labels: int = 10, depth: int = 3, dropout: float = 0.1):
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(HIDDEN, HIDDEN)
            self.norm = nn.LayerNorm(HIDDEN)
            self.drop = nn.Dropout(dropout)

        def forward(self, x):
            return x + self.drop(torch.nn.functional.gelu(self.norm(self.linear(x))))

    class DigitsNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Linear(64, HIDDEN)
            self.blocks = nn.ModuleList(Block() for _ in range(depth))
            self.head = nn.Linear(HIDDEN, num_labels)

        def forward(self, x):
            h = self.stem(x)
            for block in self.blocks:
                h = block(h)
            return self.head(h)

    return DigitsNet()


def make_adapter(labels: list[str], source: str | None = None, dropout: float = 0.1) -> TrainAdapter:
    """The adapter; weights come from ``source/model.safetensors`` when it is a trained output."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    x, _ = digits()
    module = build_module(len(labels), dropout=dropout)
    if source and (Path(source) / "model.safetensors").is_file():
        from safetensors.torch import load_model

        load_model(module, str(Path(source) / "model.safetensors"))
    index = {name: i for i, name in enumerate(labels)}

    def load_example(record: Record, train: bool):
        if isinstance(record.input, int):
            pixels = torch.from_numpy(x[record.input].copy())
        else:
            from PIL import Image

            pixels = torch.from_numpy(np.asarray(Image.open(record.input), dtype=np.float32).ravel() / 255.0)
        if train:
            pixels = pixels + 0.05 * torch.randn(64)
        return {"x": pixels, "label": index[record.label], "n": int((pixels > 0.3).sum())}

    slow = float(os.environ.get("DIGITS_SLOW", "0"))  # seconds per batch, to catch a run mid-epoch

    def collate(examples):
        if slow:
            time.sleep(slow)
        return {"x": torch.stack([e["x"] for e in examples]),
                "labels": torch.tensor([e["label"] for e in examples])}

    def save(mod, out_dir):
        from safetensors.torch import save_model

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        save_model(mod, str(out_dir / "model.safetensors"))
        (out_dir / "digits.json").write_text(json.dumps({"labels": labels}))

    return TrainAdapter(module=module, kind="classification", load_example=load_example, collate=collate,
                        loss=lambda m, b: F.cross_entropy(m(b["x"]), b["labels"]),
                        predict=lambda m, b: m(b["x"]), save=save,
                        spec_fields={"task": "image-classification", "plugin": PLUGIN},
                        head_prefixes=("head",), blocks=lambda m: list(m.blocks), length=lambda e: e["n"],
                        labels=list(labels))


class DigitsPlugin:
    """Serves the digits network: catalogue id ``digits-mlp`` and its fine-tuned directories."""

    @hookimpl
    def register_models(self, register):
        register({"id": "digits-mlp", "task": "image-classification", "plugin": PLUGIN, "source": "builtin:digits",
                  "description": "an untrained MLP for 8x8 digits (tests)"})

    @hookimpl
    def trainable(self, spec, task, num_labels, labels, device_manager):
        if spec.plugin != PLUGIN or task != "image-classification":
            return None
        return make_adapter(labels or [str(i) for i in range(10)], spec.source)


def register() -> None:
    from hub.plugins import get_plugin_manager

    pm = get_plugin_manager()
    if pm.get_plugin(PLUGIN) is None:
        pm.register(DigitsPlugin(), name=PLUGIN)
    from hub.api import invalidate_catalog

    invalidate_catalog()


def main(argv: list[str]) -> None:
    """``python _train_digits.py DATA OUT [json kwargs for finetune]``."""
    os.environ.setdefault("HUB_PLUGINS", "")
    register()
    from hub.train.api import finetune

    kwargs = json.loads(argv[2]) if len(argv) > 2 else {}
    result = finetune("digits-mlp", argv[0], out=argv[1], progress=False, **kwargs)
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps({"metrics": {k: v for k, v in result.metrics.items() if isinstance(v, float)},
                          "count": result.metrics.get("count"), "val_rows": result.val_rows,
                          "steps": result.steps, "best_step": result.best_step}))


if __name__ == "__main__":
    main(sys.argv[1:])
