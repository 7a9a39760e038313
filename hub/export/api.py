"""``hub.export.export``: the Python call behind ``hub export``.

Checked before any weights load: the format, the task, ``--out`` (a new or empty directory that is not
the model's own source, with a writable parent) and the calibration data. The export is written into a
directory beside ``--out`` and renamed into place only once it passed its gate, so a refused or failed
export leaves nothing behind.
"""
from __future__ import annotations

import os
from pathlib import Path

from hub.errors import OutputDirError
from hub.outputs import check_output_dir
from hub.export.gates import Gates
from hub.export.manifest import FORMATS, UnsupportedExportError


def export(model_id: str, fmt: str, out, int8: bool = False, calibration=None, task: str | None = None,
           gates: Gates | None = None, trust_remote_code: bool = False) -> dict:
    """Export ``model_id`` to ``fmt`` (onnx or openvino) into the new directory ``out``; returns its export info."""
    from hub.api import get_spec
    from hub.export.exporter import build, check_exportable, check_pipeline, export_card
    from hub.export.heldout import read_calibration
    from hub.export.manifest import export_info
    from hub.io import atomic_directory
    from hub.local import write_card

    if fmt not in FORMATS:
        raise UnsupportedExportError(f"format '{fmt}' is not an export format; use one of {', '.join(FORMATS)}")
    spec = get_spec(model_id, task)
    if export_info(spec) is not None:
        raise UnsupportedExportError(f"'{model_id}' is already an export; export its source model "
                                     f"'{export_info(spec).get('source_model')}' instead")
    check_exportable(spec)
    target = check_out(Path(out), spec, calibration)
    from hub.tasks import TASKS

    kind = "text" if TASKS[spec.task].inputs == "text" else "image"  # CLIP's calibration inputs are images
    items = read_calibration(calibration, kind) if calibration else None
    reference = _torch_pipeline(model_id, spec, trust_remote_code)
    check_pipeline(spec, reference)
    with atomic_directory(target) as stage:
        info = build(reference, spec, fmt, Path(stage), int8=int8, calibration=items, gates=gates)
        write_card(stage, export_card(spec, info))
    return info


def check_out(out: Path, spec, calibration=None) -> Path:
    """``out`` if a new export may go there: new or empty, not a special file, not the model's source nor
    the calibration data, parent writable."""
    out = check_output_dir(out, "--out", [("--calibration", calibration)])
    if out.is_dir() and any(out.iterdir()):
        raise OutputDirError(f"--out '{out}' is not empty; choose a new or empty directory (an export is never "
                             "written over other files)")
    source = Path(spec.source)
    if source.is_dir():
        resolved, src = out.resolve(), source.resolve()
        if resolved == src or src in resolved.parents or resolved in src.parents:
            raise OutputDirError(f"--out '{out}' is, or is inside, the model's own directory '{source}'; choose a "
                                 "directory elsewhere")
    parent = out.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputDirError(f"--out '{out}' cannot be created: '{parent}' is a file, not a directory; choose a "
                             "directory you can write to")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputDirError(f"--out '{out}' cannot be created: '{parent}' is not writable; choose a directory "
                             "you can write to")
    return out


def _torch_pipeline(model_id: str, spec, trust_remote_code: bool):
    """The fp32 torch pipeline on the CPU (uncached): the reference every export is measured against."""
    from hub.api import load

    options = {"trust_remote_code": True} if trust_remote_code else {}
    return load(model_id, device="cpu", dtype="fp32", task=spec.task, cache=False, backend="torch", **options)
