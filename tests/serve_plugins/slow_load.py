"""A text-embedding model whose load takes HUB_TEST_LOAD_S seconds (default 60): requests wait for it."""
import os
import time

from hub import hookimpl

MODEL = "slow-loading-model"


@hookimpl
def register_models(register):
    register({"id": MODEL, "task": "text-embedding", "source": "builtin", "params": 1,
              "description": "A model that takes long to load (a test plugin)."})


@hookimpl
def load_model(spec, device_manager, options):
    if spec.id != MODEL:
        return None
    from hub.tasks.base import Pipeline
    from hub.tasks.results import Embedding

    class Slow(Pipeline):
        task = "text-embedding"

        def preprocess(self, items, **kwargs):
            return items

        def forward(self, batch, **kwargs):
            return batch

        def postprocess(self, outputs, items, **kwargs):
            return [Embedding([float(len(item))]) for item in items]

    time.sleep(float(os.environ.get("HUB_TEST_LOAD_S", "60")))
    return Slow(spec, model=None, device_manager=device_manager)
