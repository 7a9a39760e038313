"""Imports torch and sleeps at import: slow and heavy, but it works."""
import time

import torch  # noqa: F401

from hub import hookimpl

time.sleep(0.15)


@hookimpl
def register_models(register):
    register({"id": "heavy-import-model", "task": "text-embedding", "source": "x"})
