"""Export a loaded fp32 torch pipeline into a directory: graphs, int8, assets, measured quality, card.

Steps: the pipeline names its graphs (``export_graphs``), each is exported to ONNX with the dynamo
exporter (and converted to OpenVINO IR when asked), quantized to int8 when asked (methods tried in
order until one keeps the gate), the pipeline writes the files its pre- and postprocessing read
(``export_assets``), the same pipeline class is built around the runtime (``from_runtime``) and measured
against the torch pipeline on held-out inputs. An export that misses its gate raises
:class:`ExportGateError` with the figures; the caller's atomic directory then leaves nothing behind.
"""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from hub.export import gates as quality
from hub.export import heldout, integrity, quantize
from hub.export.manifest import SUFFIX, ExportGateError, UnsupportedExportError, card
from hub.export.onnx import export_onnx, onnx_to_openvino

WORK = ".export-work"


def exportable_tasks() -> list[str]:
    """The tasks whose declaration says how an export of them is checked (``TaskInfo.export``)."""
    from hub.tasks import TASKS

    return [name for name, info in TASKS.items() if info.export]


def check_exportable(spec) -> None:
    """Refuse, in one line, a task that cannot be exported."""
    if spec.task not in exportable_tasks():
        raise UnsupportedExportError(f"model '{spec.id}' is for the task '{spec.task}', which hub export cannot "
                                     f"export; exportable tasks: {', '.join(exportable_tasks())}")


def check_pipeline(spec, pipeline) -> None:
    missing = type(pipeline).export_members_missing()
    if missing:
        raise UnsupportedExportError(f"model '{spec.id}' ({spec.task}) is served by plugin '{spec.plugin}', whose "
                                     f"pipeline has no export support ({', '.join(missing)} missing)")


def build(reference, spec, fmt: str, stage: Path, int8: bool = False, calibration: list | None = None,
          gates: quality.Gates | None = None) -> dict:
    """Write the export of ``reference`` (an fp32 torch pipeline of ``spec``) into ``stage``; returns its info.

    The pipelines' warnings about the held-out inputs (e.g. a text cut to a tiny model's context) stay quiet."""
    import warnings

    from hub.tasks.base import HubWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HubWarning)
        return _build(reference, spec, fmt, stage, int8, calibration, gates or quality.Gates())


def _build(reference, spec, fmt: str, stage: Path, int8: bool, calibration: list | None, gates) -> dict:
    texts, images, calib_texts, calib_images = _inputs(spec, calibration)
    graphs = reference.export_graphs(texts=calib_texts[:4], images=calib_images[:4])
    work = stage / WORK
    work.mkdir()
    done = {g.name: export_onnx(g, work / f"{g.name}.onnx") for g in graphs}
    first = done[graphs[0].name]
    info = {"format": fmt, "graphs": {g.name: f"{g.name}{SUFFIX[fmt]}" for g in graphs}, "opset": first["opset"],
            "exporter": first["exporter"], "precision": "int8" if int8 else "fp32",
            "source_model": spec.id, "source": spec.source, "source_revision": spec.revision or "unpinned"}
    reference.export_assets(stage)
    attempts = max(len(quantize.methods(fmt, g.kind)) for g in graphs) if int8 else 1
    figures, methods, missed = {}, [], []
    for attempt in range(attempts):
        try:
            methods = _write_graphs(reference, graphs, fmt, work, stage, attempt if int8 else None,
                                    calib_texts, calib_images)
        except quantize.NothingQuantized as exc:
            missed = missed or [str(exc)]
        else:
            figures = _measure(reference, spec, stage, fmt, info, texts, images)
            missed = quality.failures(figures, gates)
        if not missed:
            break
        if attempt + 1 == attempts:
            raise ExportGateError(f"the {fmt}{' int8' if int8 else ''} export of '{spec.id}' was refused: "
                                  f"{'; '.join(missed)} ({quality.summary(figures) if figures else 'not measured'}; "
                                  f"methods: {'; '.join(methods) or 'fp32'}). "
                                  "Nothing was written. Try without --int8, another --format, or lower the gate "
                                  "(--min-cosine / --min-agreement) if that accuracy is acceptable.")
    from hub.export.runtime import runtime_version

    info.update({"runtime": runtime_version(fmt), "quantization": methods or ["none (fp32)"],
                 "quality": {**figures, "gate": gates.describe(), "reference": "fp32 torch"}})
    shutil.rmtree(work)
    info["files"] = integrity.record(stage)  # verified on every load (hub.export.integrity)
    return info


def _inputs(spec, calibration: list | None):
    """(held-out texts, held-out images, calibration texts, calibration images)."""
    texts, images = list(heldout.HELDOUT_TEXTS), heldout.images("heldout")
    calib_texts, calib_images = list(heldout.CALIBRATION_TEXTS), heldout.images("calibration")
    if calibration:
        cut = max(1, len(calibration) // 4)  # a quarter of the user's data is held out for the measurement
        given, kept = calibration[:-cut], calibration[-cut:]
        if isinstance(calibration[0], str):
            calib_texts, texts = given, texts + kept
        else:
            calib_images, images = given, images + kept
    return texts, images, calib_texts, calib_images


def _write_graphs(reference, graphs, fmt, work: Path, stage: Path, attempt: int | None, calib_texts, calib_images):
    """Each graph into ``stage`` in ``fmt``; int8 with the ``attempt``-th method of its kind. Returns the methods."""
    done = []
    for graph in graphs:
        fp32 = work / f"{graph.name}.onnx"
        target = stage / f"{graph.name}{SUFFIX[fmt]}"
        if fmt == "openvino":
            fp32_ir = work / f"{graph.name}.xml"
            if not fp32_ir.exists():
                onnx_to_openvino(fp32, fp32_ir)
            fp32 = fp32_ir
        if attempt is None:
            _copy_graph(fp32, target)
            continue
        options = quantize.methods(fmt, graph.kind)
        method = options[min(attempt, len(options) - 1)]
        items = calib_texts if graph.kind == "text" else calib_images
        feeds = _feeds(reference, graph.name, items) if quantize.needs_calibration(method) else []
        done.append(f"{graph.name}: {quantize.quantize(fmt, method, fp32, target, feeds, graph.kind)}")
    return done


def _copy_graph(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    if source.suffix == ".xml":
        shutil.copyfile(source.with_suffix(".bin"), target.with_suffix(".bin"))


def _feeds(reference, name: str, items: list) -> list[dict]:
    """Calibration inputs for graph ``name``: the pipeline's own preprocessing, in small batches, as numpy."""
    size = quantize.CALIBRATION_BATCH
    return [{k: v.numpy() for k, v in reference.graph_inputs(name, items[i:i + size]).items()}
            for i in range(0, len(items), size)]


def _measure(reference, spec, stage: Path, fmt: str, info: dict, texts, images) -> dict:
    from hub.device import get_device_manager
    from hub.export.runtime import Runtime

    runtime = Runtime(stage, fmt, info, dtype="fp32")
    dm = get_device_manager("cpu", "fp32", fmt)
    candidate = type(reference).from_runtime(replace(spec, source=str(stage)), dm, runtime)
    return quality.measure(spec.task, reference, candidate, texts, images)


def export_card(spec, info: dict) -> dict:
    return card(spec, info)
