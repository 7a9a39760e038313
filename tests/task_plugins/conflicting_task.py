"""Declares a good task and one whose alias is a task of the core: both are dropped, and its model too."""
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
