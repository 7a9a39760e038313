"""Registers a valid model, one with an unknown task, and a ModelSpec object that skipped validation."""
from hub import hookimpl


@hookimpl
def register_models(register):
    from hub.registry import ModelSpec

    register({"id": "invalid-registration-ok", "task": "text-embedding", "source": "x"})
    register({"id": "invalid-registration-task", "task": "text-telepathy", "source": "x"})
    register(ModelSpec(id="invalid-registration-spec", task="no-such-task", plugin="invalid_registration",
                       source=""))
