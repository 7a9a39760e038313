"""Declarations with invalid fields: an unknown modality, a new input kind without a loader, a result
that is not a "module:Class" reference. All of this plugin's tasks are dropped."""
from hub import hookimpl


@hookimpl
def register_tasks(register):
    register({"name": "odour-classification", "modality": "smell", "inputs": "text",
              "result": "mmhub_task_bad_fields:Odour"})
    register({"name": "midi-tagging", "modality": "speech", "inputs": "midi", "result": "mmhub_task_bad_fields:Tags"})
    register({"name": "plain-result", "modality": "nlp", "inputs": "text", "result": "Classification"})
