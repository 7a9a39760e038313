"""A misspelled hook name: the implementation would never be called."""
from hub import hookimpl


@hookimpl
def register_model(register):
    register({"id": "bad-hook-name-model", "task": "text-embedding", "source": "x"})
