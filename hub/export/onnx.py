"""Torch -> ONNX with ``torch.onnx.export`` (the dynamo exporter), dynamic batch and sequence axes.

A pipeline describes what to export as :class:`GraphSpec` objects (``pipeline.export_graphs()``): a
torch module whose forward takes tensors by name and returns one tensor, example inputs made by the
pipeline's own preprocessing, and the axes that vary. Whether the graph computes what the module does
is measured afterwards, through the whole pipeline (:mod:`hub.export.gates`). OpenVINO IR is converted
from the ONNX file with ``openvino.convert_model`` and written with ``openvino.save_model``.
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


def exporter_choice() -> str:
    """``HUB_ONNX_EXPORTER``: dynamo (default, torch's current exporter) or torchscript (the older one, faster)."""
    import os

    value = os.environ.get("HUB_ONNX_EXPORTER", "").strip().lower() or "dynamo"
    if value not in ("dynamo", "torchscript"):
        raise HubError(f"HUB_ONNX_EXPORTER={value!r} is not an exporter; use dynamo or torchscript")
    return value


def export_onnx(graph: GraphSpec, path: Path) -> dict:
    """Write ``graph`` as an ONNX file at ``path``; returns what was done (exporter, opset).

    The dynamo exporter is tried first (unless HUB_ONNX_EXPORTER=torchscript); a graph it cannot export
    goes through the TorchScript exporter, and the card says which one wrote the file.
    """
    names = list(graph.inputs)
    first = exporter_choice()
    try:
        _export(graph, path, names, dynamo=first == "dynamo")
        return {"exporter": f"torch.onnx.export ({first})", "opset": OPSET}
    except Exception as exc:
        if first != "dynamo":
            raise _failed(graph, exc) from exc
        dynamo_error = exc
    try:
        _export(graph, path, names, dynamo=False)
    except Exception as exc:
        raise _failed(graph, dynamo_error) from exc
    return {"exporter": "torch.onnx.export (torchscript; the dynamo exporter failed)", "opset": OPSET}


def _export(graph: GraphSpec, path: Path, names: list[str], dynamo: bool) -> None:
    import torch

    args = tuple(graph.inputs[n] for n in names)
    # TorchScript tracing runs with grad on, so that modules take their plain path (not inference fast
    # paths such as aten::_native_multi_head_attention, which has no ONNX form)
    with _quiet(), torch.inference_mode(False), torch.set_grad_enabled(not dynamo):
        if dynamo:
            dims: dict = {}
            shapes = tuple({axis: dims.setdefault(label, torch.export.Dim(label, min=1))
                            for axis, label in graph.dynamic.get(name, {}).items()} for name in names)
            torch.onnx.export(_Named(graph.module, names), args, str(path), input_names=names,
                              output_names=list(graph.outputs), dynamic_shapes=(shapes,), opset_version=OPSET,
                              dynamo=True, external_data=False, verbose=False)
        else:
            torch.onnx.export(_Named(graph.module, names), args, str(path), input_names=names,
                              output_names=list(graph.outputs), dynamic_axes=dict(graph.dynamic),
                              opset_version=OPSET, dynamo=False)


def _failed(graph: GraphSpec, exc: Exception) -> HubError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return HubError(f"torch.onnx.export could not export the graph '{graph.name}': {first}")


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
