"""Registers an alias another plugin's model uses: only that alias is dropped, its model stays."""
from hub import hookimpl


@hookimpl
def register_models(register):
    register({"id": "alias-collision-own", "task": "text-embedding", "source": "x", "aliases": ["minilm"]})
