"""The digits network with nothing random in a step (no dropout, no noise), for comparing runs.

With one process and batch ``2b``, or two ranks and batch ``b`` each, every optimiser step sees
the same 2b examples (``DistributedSampler`` deals rank r the indices r, r+2, ...), so the loss
curves of single-process, DDP and FSDP runs agree up to floating-point rounding. Run as a script
(``python _train_exact.py DATA OUT [json kwargs for finetune]``, alone or under torchrun) it
trains plugin ``digits-exact`` through :func:`hub.train.api.finetune`, logging every step.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _train_digits as D  # noqa: E402

from hub import hookimpl  # noqa: E402

PLUGIN = "digits-exact"


def make_adapter(labels, source=None):
    adapter = D.make_adapter(labels, source, dropout=0.0)
    load = adapter.load_example
    return dataclasses.replace(adapter, load_example=lambda record, train: load(record, False),
                               spec_fields={**adapter.spec_fields, "plugin": PLUGIN})


class ExactPlugin:
    @hookimpl
    def register_models(self, register):
        register({"id": "digits-exact", "task": "image-classification", "plugin": PLUGIN,
                  "source": "builtin:digits", "description": "an untrained MLP for 8x8 digits (tests)"})

    @hookimpl
    def trainable(self, spec, task, num_labels, labels, device_manager):
        if spec.plugin != PLUGIN or task != "image-classification":
            return None
        return make_adapter(labels or [str(i) for i in range(10)], spec.source)


def register() -> None:
    from hub.api import invalidate_catalog
    from hub.plugins import get_plugin_manager

    pm = get_plugin_manager()
    if pm.get_plugin(PLUGIN) is None:
        pm.register(ExactPlugin(), name=PLUGIN)
    invalidate_catalog()


def main(argv: list[str]) -> None:
    os.environ.setdefault("HUB_PLUGINS", "")
    register()
    from hub.train.api import finetune

    kwargs = json.loads(argv[2]) if len(argv) > 2 else {}
    # log_every=1: one metrics.jsonl line per optimiser step, the whole loss curve
    result = finetune("digits-exact", argv[0], out=argv[1], progress=False, log_every=1, **kwargs)
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps({"metrics": {k: v for k, v in result.metrics.items() if isinstance(v, float)},
                          "steps": result.steps, "val_rows": result.val_rows, "train_rows": result.train_rows}))


if __name__ == "__main__":
    main(sys.argv[1:])
