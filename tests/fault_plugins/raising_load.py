"""load_model raises: one line naming the plugin and the model."""
from hub import hookimpl


@hookimpl
def register_models(register):
    register({"id": "raising-load-model", "task": "text-embedding", "source": "builtin"})


@hookimpl
def load_model(spec, device_manager, options):
    if spec.plugin != "raising_load":
        return None
    raise RuntimeError("weights exploded while loading")


@hookimpl
def trainable(spec, task, num_labels, labels, device_manager):
    if spec.plugin != "raising_load":
        return None
    raise RuntimeError("adapter exploded")
