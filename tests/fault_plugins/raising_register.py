"""register_models registers one model, then raises: none of its models may appear."""
from hub import hookimpl


@hookimpl
def register_models(register):
    register({"id": "raising-register-model", "task": "text-embedding", "source": "x"})
    raise RuntimeError("registration exploded halfway")
