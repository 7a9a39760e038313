"""A valid declaration whose result class cannot be imported: listing works, running names the plugin."""
from hub import hookimpl

from hub.tasks.base import Pipeline


@hookimpl
def register_tasks(register):
    register({"name": "broken-result-task", "modality": "nlp", "inputs": "text",
              "result": "mmhub_task_library_that_is_not_installed:Result"})


@hookimpl
def register_models(register):
    register({"id": "broken-result-model", "task": "broken-result-task", "source": "x"})


class Echo(Pipeline):
    task = "broken-result-task"

    def preprocess(self, items, **kwargs):
        return items

    def forward(self, batch, **kwargs):
        return batch

    def postprocess(self, outputs, items, **kwargs):
        return outputs


@hookimpl
def load_model(spec, device_manager, options):
    return Echo(spec, None, device_manager)
