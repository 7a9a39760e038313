"""A third party's own kind of training, for tests of the training extension: digit values by regression.

Plugin ``digitreg-test`` declares the task ``digit-value`` (through ``register_tasks``), the model
``digit-reg`` and, through ``trainable``, a :class:`hub.train.adapter.TrainKind` the hub does not
have: its data is a JSONL file of ``{"digit": <index into scikit-learn's digits>, "value": <number>}``
rows, its loss is the mean squared error, and its metrics are the mean absolute error (lower is
better), the share of predictions within 1 of the value, and the loss, counted with
:class:`hub.train.evaluation.SummedMetrics`. Run as a script it trains through
:func:`hub.train.api.finetune` (used under torchrun).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from hub import hookimpl

PLUGIN = "digitreg-test"
TASK = "digit-value"
FAIL_AT = {"batches": None}  # collate raises after this many batches (to stop a run midway)


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype("float32") / 16.0, data.target


def write_rows(path: Path, indices, extra: list[str] = ()) -> Path:
    """A JSONL file of digit rows (value = the digit), plus any raw ``extra`` lines."""
    _, target = digits()
    lines = [json.dumps({"digit": int(i), "value": int(target[i])}) for i in indices] + list(extra)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read(path: Path, purpose: str):
    """(records, problems): rows need a digit index in range and a numeric value."""
    from hub.train.adapter import Record
    from hub.train.data import table_rows

    x, _ = digits()
    rows, problems = table_rows(path)
    records = []
    for where, row in rows:
        digit, value = row.get("digit"), row.get("value")
        if not isinstance(digit, int) or not 0 <= digit < len(x):
            problems.append(f"{where}: no digit index (0-{len(x) - 1})")
        elif not isinstance(value, (int, float)):
            problems.append(f"{where}: no numeric value")
        else:
            records.append(Record(input=digit, target=float(value), where=where))
    return records, problems


def metrics(adapter, device: str):
    from hub.train.evaluation import SummedMetrics

    class RegressionMetrics(SummedMetrics):
        def __init__(self):
            super().__init__(adapter, device)
            self.sums_ = self.counter("sums", (4,))  # |error|, error^2, within 1, rows

        def add(self, out, batch, records) -> None:
            error = (out.float() - batch["values"]).abs()
            self.sums_ += self.sums_.new_tensor([float(error.sum()), float((error ** 2).sum()),
                                                 float((error <= 1).sum()), len(records)])

        def compute(self, sums: dict) -> dict:
            abs_err, sq_err, within, n = (float(v) for v in sums["sums"])
            return {"mae": abs_err / n, "within_1": within / n, "loss": sq_err / n, "count": int(n)}

    return RegressionMetrics()


def kind(names=("mae", "within_1", "loss")):
    from hub.train.adapter import TrainKind

    return TrainKind(name="regression", read=read, metrics=metrics, metric_names=tuple(names),
                     default_metric="mae", lower_is_better=("mae",), default_lr=1e-2)


def build_module():
    from torch import nn

    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))


def make_adapter(source: str | None, train_kind=None):
    import torch
    import torch.nn.functional as F

    from hub.train.adapter import TrainAdapter

    x, _ = digits()
    module = build_module()
    if source and (Path(source) / "model.safetensors").is_file():
        from safetensors.torch import load_model

        load_model(module, str(Path(source) / "model.safetensors"))

    def load_example(record, train: bool):
        pixels = torch.from_numpy(x[record.input].copy())
        if train:
            pixels = pixels + 0.02 * torch.randn(64)
        return pixels, record.target

    def collate(examples):
        if FAIL_AT["batches"] is not None:
            FAIL_AT["batches"] -= 1
            if FAIL_AT["batches"] < 0:
                raise RuntimeError("stopped on purpose")
        return {"x": torch.stack([p for p, _ in examples]),
                "values": torch.tensor([v for _, v in examples], dtype=torch.float32)}

    def predict(m, batch):
        return m(batch["x"]).squeeze(-1)

    def save(m, out_dir):
        from safetensors.torch import save_model

        save_model(m, str(Path(out_dir) / "model.safetensors"))

    return TrainAdapter(module=module, kind=train_kind or kind(), load_example=load_example, collate=collate,
                        loss=lambda m, b: F.mse_loss(predict(m, b).float(), b["values"]), predict=predict,
                        save=save, spec_fields={"task": TASK, "plugin": PLUGIN}, head_prefixes=("4",),
                        blocks=lambda m: [m[0], m[2]])


class RegressionPlugin:
    """Declares the task and the model, and trains it with its own kind."""

    kind_factory = None  # tests may swap in another TrainKind

    @hookimpl
    def register_tasks(self, register):
        register({"name": TASK, "modality": "vision", "inputs": "image", "result": "hub.tasks.results:Generation",
                  "description": "The value of a handwritten digit, by regression (tests)."})

    @hookimpl
    def register_models(self, register):
        register({"id": "digit-reg", "task": TASK, "plugin": PLUGIN, "source": "builtin:digit-reg",
                  "description": "an untrained MLP that reads a digit's value (tests)"})

    @hookimpl
    def trainable(self, spec, task, num_labels, labels, device_manager):
        if spec.plugin != PLUGIN or task != TASK:
            return None
        return make_adapter(spec.source, self.kind_factory() if self.kind_factory else None)


def register(plugin=None):
    """Register the plugin (once) and rebuild the task table and the catalogue."""
    from hub.api import invalidate_catalog
    from hub.plugins import get_plugin_manager
    from hub.tasks.table import invalidate

    pm = get_plugin_manager()
    if pm.get_plugin(PLUGIN) is None:
        pm.register(plugin or RegressionPlugin(), name=PLUGIN)
    invalidate()
    invalidate_catalog()
    return pm.get_plugin(PLUGIN)


def main(argv: list[str]) -> None:
    """``python _train_regression.py TRAIN VAL OUT [json kwargs for finetune]``."""
    os.environ.setdefault("HUB_PLUGINS", "")
    register()
    from hub.train.api import finetune

    kwargs = json.loads(argv[3]) if len(argv) > 3 else {}
    result = finetune("digit-reg", argv[0], val=argv[1], out=argv[2], progress=False, **kwargs)
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps({"metrics": result.metrics, "steps": result.steps, "val_rows": result.val_rows}))


if __name__ == "__main__":
    main(sys.argv[1:])
