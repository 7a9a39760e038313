"""Int8 with the runtimes' own quantizers, tried per task in the order most likely to keep the gate.

- ONNX Runtime, text graphs: dynamic quantization (per-channel int8 weights of every MatMul, activations
  quantized on the fly; no calibration), then the same with the feed-forward output projections kept fp32,
  then with all feed-forward projections kept fp32 (mixed precision).
- ONNX Runtime, image graphs: static QDQ quantization (per-channel int8 weights, uint8 activations
  calibrated with min/max), then dynamic.
- OpenVINO: NNCF post-training quantization (``nncf.quantize`` over a calibration dataset; the
  transformer preset for text graphs), then NNCF int8 weight compression.

Each method returns a short description of what it did; the caller measures the result and keeps the
first method whose export passes its gate.
"""
from __future__ import annotations

from pathlib import Path

CALIBRATION_BATCH = 8


def methods(fmt: str, kind: str) -> list[str]:
    """The int8 methods to try for a graph of ``kind`` (text or image) in format ``fmt``, best first."""
    if fmt == "onnx":
        return ["dynamic", "dynamic-mixed", "dynamic-attention"] if kind == "text" else ["static", "dynamic"]
    return ["nncf-quantize", "nncf-weights"]


def needs_calibration(method: str) -> bool:
    return method in ("static", "nncf-quantize")


def quantize(fmt: str, method: str, source: Path, target: Path, feeds: list[dict], kind: str) -> str:
    """Quantize graph file ``source`` into ``target`` with ``method``; ``feeds`` are calibration inputs.

    Raises NothingQuantized when the result holds no int8 tensor (e.g. dynamic quantization of a graph
    without the ops it handles), so an fp32 graph is never labelled int8."""
    if fmt == "onnx":
        what = _onnx(method, source, target, feeds, kind)
    else:
        what = _openvino(method, source, target, feeds, kind)
    if not has_int8(target):
        raise NothingQuantized(f"{method} quantized nothing in this graph")
    return what


class NothingQuantized(Exception):
    """A quantizer that left every tensor in floating point."""


def has_int8(path: Path) -> bool:
    """Whether an ONNX file or OpenVINO IR holds int8 / uint8 weights."""
    if Path(path).suffix == ".xml":
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        return 'element_type="i8"' in text or 'element_type="u8"' in text
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    small = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    return any(init.data_type in small for init in model.graph.initializer)


def _onnx(method: str, source: Path, target: Path, feeds: list[dict], kind: str) -> str:
    import logging

    logging.disable(logging.WARNING)  # the quantizer's advice goes to the root logger, line by line
    try:
        return _ort(method, source, target, feeds, kind)
    finally:
        logging.disable(logging.NOTSET)


def _ort(method: str, source: Path, target: Path, feeds: list[dict], kind: str) -> str:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if method.startswith("dynamic"):
        keep = {"dynamic": [], "dynamic-mixed": _projections(source, down_only=True),
                "dynamic-attention": _projections(source, down_only=False)}[method]
        ops = ["MatMul"] if kind == "text" else ["MatMul", "Conv"]
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=ops, nodes_to_exclude=keep, extra_options={"MatMulConstBOnly": True})
        what = (f"onnxruntime dynamic int8 (per-channel int8 weights of every {' and '.join(ops)}, "
                "activations quantized at run time")
        kept = "feed-forward down-projections" if method == "dynamic-mixed" else "feed-forward projections"
        return what + (f"; {len(keep)} {kept} kept fp32)" if keep else ")")
    quantize_static(str(source), str(target), _Reader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return f"onnxruntime static int8 (QDQ, per-channel weights, calibrated on {_count(feeds)} inputs)"


def _projections(path: Path, down_only: bool) -> list[str]:
    """MatMul nodes with a non-square weight: a feed-forward block's projections (only the output ones,
    which narrow their input, with ``down_only``).

    Their inputs carry the activation outliers that per-tensor dynamic int8 handles worst (and, in a padded
    batch, the range is taken over the padding too); keeping them fp32 is the usual mixed-precision fix for
    BERT-style encoders. Attention projections are square and stay int8."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}

    def picked(dims):
        return len(dims) == 2 and (dims[0] > dims[1] if down_only else dims[0] != dims[1])

    return [node.name for node in model.graph.node if node.op_type == "MatMul" and len(node.input) > 1
            and picked(shapes.get(node.input[1], []))]


class _Reader:
    """ONNX Runtime's CalibrationDataReader over a list of input dicts."""

    def __init__(self, feeds: list[dict]):
        self._feeds = iter(feeds)

    def get_next(self):
        return next(self._feeds, None)


def _openvino(method: str, source: Path, target: Path, feeds: list[dict], kind: str) -> str:
    import contextlib
    import io
    import logging

    import nncf

    logging.getLogger("nncf").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # NNCF's progress bars
        return _nncf(nncf, method, source, target, feeds, kind)


def _nncf(nncf, method: str, source: Path, target: Path, feeds: list[dict], kind: str) -> str:
    import openvino as ov

    model = ov.Core().read_model(str(source))
    if method == "nncf-quantize":
        preset = {"model_type": nncf.ModelType.TRANSFORMER} if kind == "text" else {}
        model = nncf.quantize(model, nncf.Dataset(feeds), subset_size=max(1, len(feeds)), **preset)
        what = (f"NNCF post-training int8 ({'transformer preset, ' if preset else ''}"
                f"calibrated on {_count(feeds)} inputs)")
    else:
        model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        what = "NNCF int8 weight compression (weights int8, activations in the inference precision)"
    ov.save_model(model, str(target), compress_to_fp16=False)
    return what


def _count(feeds: list[dict]) -> int:
    return sum(len(next(iter(f.values()))) for f in feeds) if feeds else 0
