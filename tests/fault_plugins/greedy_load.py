"""load_model and trainable without a spec.plugin check: they must not take over other models."""
from hub import hookimpl


@hookimpl
def register_models(register):
    register({"id": "greedy-model", "task": "text-embedding", "source": "builtin", "params": 1})


@hookimpl
def load_model(spec, device_manager, options):
    from hub.tasks.base import Pipeline
    from hub.tasks.results import Embedding

    class Greedy(Pipeline):
        task = "text-embedding"

        def preprocess(self, items, **kwargs):
            return items

        def forward(self, batch, **kwargs):
            return batch

        def postprocess(self, outputs, items, **kwargs):
            return [Embedding([42.0]) for _ in items]

    return Greedy(spec, model=None, device_manager=device_manager)


@hookimpl
def trainable(spec, task, num_labels, labels, device_manager):
    from hub.train.adapter import TrainAdapter

    return TrainAdapter(module=None, kind="classification", load_example=None, collate=None, loss=None,
                        predict=None, save=None, spec_fields={"greedy": True})


@hookimpl
def spec_for_path(path, task):
    from hub.registry import ModelSpec

    return ModelSpec(id="greedy-dir", task="text-embedding", plugin="transformers", source=str(path))
