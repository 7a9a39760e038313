"""Declares a good task and one whose alias is an alias of the core's: only that alias is dropped."""
from hub import hookimpl

RESULT = "hub.tasks.results:Classification"


@hookimpl
def register_tasks(register):
    register({"name": "conflict-free-task", "modality": "nlp", "inputs": "text", "result": RESULT})
    register({"name": "text-sentiment", "modality": "nlp", "inputs": "text", "result": RESULT,
              "aliases": ["sentiment-analysis"]})


@hookimpl
def register_models(register):
    register({"id": "conflicting-task-model", "task": "conflict-free-task", "source": "x"})
