"""A misspelled hook argument: pluggy refuses the implementation."""
from hub import hookimpl


@hookimpl
def register_models(registr):
    registr({"id": "bad-hook-arg-model", "task": "text-embedding", "source": "x"})
