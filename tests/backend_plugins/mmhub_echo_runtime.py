"""A plugin that adds the runtime ``echo``: it reads ONNX exports and runs them through ONNX Runtime (the hub's own
opener), recording every graph it opens in ``OPENED`` so that a test sees which runtime ran the model."""
from __future__ import annotations

from hub import hookimpl

OPENED: list[tuple[str, int | None, str]] = []  # (graph path, threads, dtype) of each graph this runtime opened


@hookimpl
def register_backends(register):
    register({"name": "echo", "library": "onnxruntime", "suffix": ".onnx", "reads": ["onnx"],
              "opener": f"{__name__}:open_graph"})


def open_graph(path, threads, dtype):
    from hub.export.runtime import open_onnx

    OPENED.append((str(path), threads, dtype))
    return open_onnx(path, threads, dtype)
