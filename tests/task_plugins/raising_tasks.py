"""register_tasks declares one task, then raises: none of its tasks (nor its models) may appear."""
from hub import hookimpl


@hookimpl
def register_tasks(register):
    register({"name": "raising-task", "modality": "nlp", "inputs": "text", "result": "mmhub_task_raising_tasks:R"})
    raise RuntimeError("task declaration exploded halfway")


@hookimpl
def register_models(register):
    register({"id": "raising-task-model", "task": "raising-task", "source": "x"})
