"""Int8 with the runtimes' own quantizers, tried per task in the order most likely to keep the gate.

- ONNX Runtime: dynamic quantization (int8 weights, activations quantized on the fly; no calibration)
  for transformers; static QDQ quantization (per-channel int8 weights, uint8 activations calibrated
  with min/max) for image models, with dynamic as the fallback.
- OpenVINO: NNCF post-training quantization (``nncf.quantize`` over a calibration dataset; the
  transformer preset for text graphs), then NNCF int8 weight compression as the fallback.

Each method returns a short description of what it did; the caller measures the result and keeps the
first method whose export passes its gate.
"""
from __future__ import annotations

from pathlib import Path

CALIBRATION_BATCH = 8


def methods(fmt: str, kind: str) -> list[str]:
    """The int8 methods to try for a graph of ``kind`` (text or image) in format ``fmt``, best first."""
    if fmt == "onnx":
        return ["dynamic"] if kind == "text" else ["static", "dynamic"]
    return ["nncf-quantize", "nncf-weights"]


def needs_calibration(method: str) -> bool:
    return method in ("static", "nncf-quantize")


def quantize(fmt: str, method: str, source: Path, target: Path, feeds: list[dict], kind: str) -> str:
    """Quantize graph file ``source`` into ``target`` with ``method``; ``feeds`` are calibration inputs."""
    if fmt == "onnx":
        return _onnx(method, source, target, feeds)
    return _openvino(method, source, target, feeds, kind)


def _onnx(method: str, source: Path, target: Path, feeds: list[dict]) -> str:
    import logging

    logging.disable(logging.WARNING)  # the quantizer's advice goes to the root logger, line by line
    try:
        return _ort(method, source, target, feeds)
    finally:
        logging.disable(logging.NOTSET)


def _ort(method: str, source: Path, target: Path, feeds: list[dict]) -> str:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if method == "dynamic":
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                         extra_options={"MatMulConstBOnly": True})
        return "onnxruntime dynamic int8 (int8 weights, activations quantized at run time)"
    quantize_static(str(source), str(target), _Reader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return f"onnxruntime static int8 (QDQ, per-channel weights, calibrated on {_count(feeds)} inputs)"


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
        what = f"NNCF post-training int8 ({'transformer preset, ' if preset else ''}calibrated on {_count(feeds)} inputs)"
    else:
        model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        what = "NNCF int8 weight compression (weights int8, activations in the inference precision)"
    ov.save_model(model, str(target), compress_to_fp16=False)
    return what


def _count(feeds: list[dict]) -> int:
    return sum(len(next(iter(f.values()))) for f in feeds) if feeds else 0
