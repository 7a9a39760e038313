"""Torch -> ONNX with ``torch.onnx.export`` (the dynamo exporter), dynamic batch and sequence axes.

A pipeline describes what to export as :class:`GraphSpec` objects (``pipeline.export_graphs()``): a
torch module whose forward takes tensors by name and returns one tensor or a tuple, example inputs,
and the axes that vary. The result is checked against the torch module on the example inputs.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import HubError

OPSET = 18


@dataclass
class GraphSpec:
    """One graph to export: ``module(**inputs)`` -> a tensor or a tuple of tensors named ``outputs``."""

    name: str
    module: object
    inputs: dict  # input name -> example tensor
    outputs: list[str]
    dynamic: dict = field(default_factory=dict)  # input name -> {axis: axis name}, e.g. {0: "batch", 1: "seq"}
    kind: str = "text"  # the raw inputs the graph's tensors come from: text or image


def export_onnx(graph: GraphSpec, path: Path) -> dict:
    """Write ``graph`` as an ONNX file at ``path``; returns what was done (exporter, opset)."""
    import torch

    names = list(graph.inputs)
    dims = {}
    shapes = {}
    for name in names:
        axes = graph.dynamic.get(name, {})
        shapes[name] = {axis: dims.setdefault(label, torch.export.Dim(label, min=1)) for axis, label in axes.items()}
    with _quiet(), torch.inference_mode(False), torch.no_grad():
        try:
            torch.onnx.export(_Named(graph.module, names), tuple(graph.inputs[n] for n in names), str(path),
                              input_names=names, output_names=list(graph.outputs), dynamic_shapes=(tuple(shapes[n] for n in names),),
                              opset_version=OPSET, dynamo=True, external_data=False, verbose=False)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise HubError(f"torch.onnx.export could not export the graph '{graph.name}': {first}") from exc
    return {"exporter": "torch.onnx.export (dynamo)", "opset": OPSET}


class _Named:
    """Positional arguments -> the module's keyword inputs (the exporter passes them positionally)."""

    def __new__(cls, module, names):
        import torch

        class Wrapper(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = module

            def forward(self, *args):
                return self.inner(**dict(zip(names, args)))

        return Wrapper().eval()


@contextlib.contextmanager
def _quiet():
    """The exporter's progress lines and warnings stay off the user's terminal."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def onnx_to_openvino(onnx_path: Path, xml_path: Path) -> dict:
    """Convert an ONNX file to OpenVINO IR (``.xml`` + ``.bin``) with ``openvino.convert_model``, weights fp32."""
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    return {"converter": "openvino.convert_model (from ONNX)"}
