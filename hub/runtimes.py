"""The backends that run a model's forward pass: the one list the device manager, the CLI's ``--backend`` and
``--format`` choices, ``hub export``, the runtime sessions and ``hub bench`` read.

``torch`` runs the model itself; each runtime runs the graphs of an export (:mod:`hub.export`), in the format
of the same name; ``auto`` picks what ``hub bench`` measured fastest (:mod:`hub.export.backends`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeInfo:
    """A runtime backend: what runs it and which export formats it reads."""

    name: str
    library: str  # the Python module that runs its graphs (and the distribution to install)
    suffix: str  # the graph file's suffix in an export of this format
    reads: tuple[str, ...]  # the export formats it runs, its own first


TORCH, AUTO = "torch", "auto"
RUNTIMES = {
    "onnx": RuntimeInfo("onnx", "onnxruntime", ".onnx", ("onnx",)),
    "openvino": RuntimeInfo("openvino", "openvino", ".xml", ("openvino", "onnx")),  # OpenVINO reads ONNX too
}
RUNTIME_NAMES = tuple(RUNTIMES)  # the runtimes, which are also the export formats
BACKENDS = (TORCH, *RUNTIME_NAMES, AUTO)


def runtimes_reading(fmt: str) -> tuple[str, ...]:
    """The runtimes that run an export of format ``fmt``, its own first."""
    return tuple(name for name, info in RUNTIMES.items() if fmt in info.reads)
