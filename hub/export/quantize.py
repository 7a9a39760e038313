"""Int8 with the runtimes' own quantizers, tried per task in the order most likely to keep the gate.

- ONNX Runtime, text graphs: dynamic quantization (per-channel int8 weights of every MatMul, activations
  quantized on the fly; no calibration), then the same with the feed-forward output projections kept fp32,
  then with all feed-forward projections kept fp32 (mixed precision).
- ONNX Runtime, image graphs: static QDQ quantization (per-channel int8 weights, uint8 activations
  calibrated with min/max), then dynamic.
- OpenVINO: NNCF post-training quantization (``nncf.quantize`` over a calibration dataset), then NNCF
  int8 weight compression. Text graphs use the transformer preset, whose SmoothQuant step moves activation
  outliers into the weights by a strength alpha; the best alpha differs per model (all-MiniLM-L6-v2:
  minimum held-out cosine 0.95 at NNCF's default 0.95, 0.993 at 0.65), so several are tried and the one
  whose graph outputs agree best with fp32 on the calibration inputs is kept. MatMuls of two activations
  (attention scores, and scores times values) stay in the inference precision: quantizing them bought
  all-MiniLM-L6-v2 no speed and cost agreement (minimum cosine over 512 texts: 0.9907 quantized, 0.9936 kept).

Each method returns a short description of what it did; the caller measures the result and keeps the
first method whose export passes its gate.
"""
from __future__ import annotations

from pathlib import Path

CALIBRATION_BATCH = 8
SMOOTH_QUANT_ALPHAS = (0.95, 0.85, 0.75, 0.65, 0.5)  # NNCF's transformer default first


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

    if method == "nncf-quantize" and kind == "text":
        model, alpha, agreement = _best_smooth_quant(nncf, source, feeds)
        what = (f"NNCF post-training int8 (transformer preset, SmoothQuant alpha {alpha} of "
                f"{', '.join(map(str, SMOOTH_QUANT_ALPHAS))}: calibration cosine {agreement:.4f}; "
                f"calibrated on {_count(feeds)} inputs)")
    elif method == "nncf-quantize":
        model = ov.Core().read_model(str(source))
        model = nncf.quantize(model, nncf.Dataset(feeds), subset_size=max(1, len(feeds)))
        what = f"NNCF post-training int8 (calibrated on {_count(feeds)} inputs)"
    else:
        model = nncf.compress_weights(ov.Core().read_model(str(source)), mode=nncf.CompressWeightsMode.INT8_ASYM)
        what = "NNCF int8 weight compression (weights int8, activations in the inference precision)"
    ov.save_model(model, str(target), compress_to_fp16=False)
    return what


def _best_smooth_quant(nncf, source: Path, feeds: list[dict]):
    """The transformer-preset quantization of ``source`` over SMOOTH_QUANT_ALPHAS whose outputs agree best
    with the fp32 graph's on the calibration feeds: (model, alpha, its minimum cosine)."""
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

    core = ov.Core()
    fp32 = core.read_model(str(source))
    reference = _outputs(core, fp32, feeds)
    unweighted = activation_matmuls(fp32)
    ignored = nncf.IgnoredScope(names=unweighted, validate=False) if unweighted else None
    best = None
    for alpha in SMOOTH_QUANT_ALPHAS:
        smooth = AdvancedSmoothQuantParameters(matmul=alpha)
        model = nncf.quantize(core.read_model(str(source)), nncf.Dataset(feeds), subset_size=max(1, len(feeds)),
                              model_type=nncf.ModelType.TRANSFORMER, ignored_scope=ignored,
                              advanced_parameters=AdvancedQuantizationParameters(smooth_quant_alphas=smooth))
        agreement = min_cosine(reference, _outputs(core, model, feeds), feeds)
        if best is None or agreement > best[2]:
            best = (model, alpha, agreement)
    return best


PASS_THROUGH = {"Convert", "Transpose", "Reshape", "Unsqueeze", "Squeeze", "FakeQuantize"}


def fed_by(op, type_name: str) -> bool:
    """Whether an input of ``op`` comes from a node of ``type_name``, seen through up to four
    ``PASS_THROUGH`` nodes (conversions, reshapes, quantization)."""
    def comes_from(output, depth=0) -> bool:
        node = output.get_node()
        if node.get_type_name() == type_name:
            return True
        return (depth < 4 and node.get_type_name() in PASS_THROUGH
                and comes_from(node.input(0).get_source_output(), depth + 1))

    return any(comes_from(op.input(i).get_source_output()) for i in range(op.get_input_size()))


def activation_matmuls(model) -> list[str]:
    """The names of ``model``'s MatMuls neither of whose inputs is a weight (a Constant): in a transformer,
    the attention scores and the scores times the values."""
    return [op.get_friendly_name() for op in model.get_ordered_ops()
            if op.get_type_name() == "MatMul" and not fed_by(op, "Constant")]


def _outputs(core, model, feeds: list[dict]) -> list:
    """The first output of ``model`` (compiled in f32) on each calibration feed."""
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return [compiled(feed)[compiled.outputs[0]].copy() for feed in feeds]


def min_cosine(reference: list, candidate: list, feeds: list[dict]) -> float:
    """The smallest cosine between matching inputs' outputs over all feeds: a sequence output ([batch,
    tokens, width]) is first mean-pooled over the tokens its ``attention_mask`` keeps, anything else is
    compared flattened per input."""
    import numpy as np

    from hub.export.gates import cosines

    found = []
    for ref, cand, feed in zip(reference, candidate, feeds):
        ref, cand = np.asarray(ref, dtype="float64"), np.asarray(cand, dtype="float64")
        mask = feed.get("attention_mask")
        if ref.ndim == 3 and mask is not None and mask.shape == ref.shape[:2]:
            keep = np.asarray(mask, dtype="float64")[..., None]
            ref, cand = (ref * keep).sum(1), (cand * keep).sum(1)
        found.extend(cosines(ref.reshape(len(ref), -1), cand.reshape(len(cand), -1)))
    return float(min(found))


def _count(feeds: list[dict]) -> int:
    return sum(len(next(iter(f.values()))) for f in feeds) if feeds else 0
