"""Registers an id another plugin serves, beside one of its own: only the clashing one is dropped."""
from hub import hookimpl


@hookimpl
def register_models(register):
    register({"id": "id-collision-own", "task": "text-embedding", "source": "x"})
    register({"id": "all-minilm-l6-v2", "task": "text-embedding", "source": "x"})
