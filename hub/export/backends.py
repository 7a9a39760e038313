"""Which backend runs a model's forward, and the pipeline built for it.

- An exported directory (``options.export`` in its ``mmhub.yaml``) runs on its runtime: ``onnx`` exports
  on ONNX Runtime (or OpenVINO, which reads ONNX too), ``openvino`` exports on OpenVINO. It has no
  torch weights, so ``--backend torch`` is refused by name.
- Any other model runs on the device manager's backend: ``torch``, ``onnx``, ``openvino``, or ``auto``
  (what ``hub bench`` measured fastest here at the chosen dtype; torch when nothing was measured). A
  runtime backend exports the model on first use (fp32, measured against torch, refused below the
  default gate) into the hub's cache, keyed by id, revision, task, runtime version and precision, and
  loads it from there afterwards.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from hub.errors import HubError
from hub.export.manifest import export_info
from hub.runtimes import RUNTIME_NAMES, RUNTIMES, TORCH, runtimes_reading


def exported(spec) -> dict | None:
    """The export info of ``spec``: its own ``options.export``, or that of the ``mmhub.yaml`` at its source
    (a user catalogue entry may point at an exported directory)."""
    info = export_info(spec)
    source = Path(str(getattr(spec, "source", "") or ""))
    if info is None and source.is_absolute() and (source / "mmhub.yaml").is_file():
        from hub.local import spec_from_directory

        found = spec_from_directory(source)
        info = export_info(found) if found is not None else None
    return info


def choose(spec, device_manager) -> str:
    """The backend that will run ``spec``: torch, onnx or openvino."""
    wanted = getattr(device_manager, "backend", "torch")
    info = exported(spec)
    if info is not None:
        return _for_export(spec, info, wanted, device_manager)
    if wanted != "auto":
        return wanted
    if device_manager.device != "cpu":
        return "torch"  # the runtimes here run on the CPU; an accelerator keeps torch
    found = measured_fastest(spec, device_manager)
    return found if found in (TORCH, *RUNTIME_NAMES) else TORCH


def measured_fastest(spec, device_manager) -> str | None:
    """The backend ``hub bench`` measured fastest for ``spec`` on this machine at the manager's dtype."""
    from hub.benchstore import fastest_backend, model_key

    return fastest_backend(model_key(spec), device_manager.dtype, device="cpu")


def _for_export(spec, info: dict, wanted: str, device_manager) -> str:
    fmt = info.get("format")
    readers = runtimes_reading(fmt) if isinstance(fmt, str) else ()  # e.g. an ONNX graph also runs on OpenVINO
    if not readers:
        known = sorted({f for runtime in RUNTIMES.values() for f in runtime.reads})
        raise HubError(f"model '{spec.id}': its mmhub.yaml names the export format {fmt!r}, which no backend reads; "
                       f"expected one of {', '.join(known)}. Export it again with 'hub export', or install the "
                       "plugin whose backend reads it")
    if wanted == "auto" and len(readers) > 1:  # the one measured faster
        found = measured_fastest(spec, device_manager)
        return found if found in readers else fmt
    if wanted == "auto":
        return readers[0]
    if wanted in readers:
        return wanted
    raise HubError(f"model '{spec.id}' is an {fmt} export without torch weights; it runs on backend "
                   f"{' or '.join(readers)}, not '{wanted}'. Use --backend auto, or "
                   f"run the source model '{info.get('source_model', '?')}' for torch")


def load(cls, spec, device_manager, options: dict):
    """``cls`` (a pipeline class) built for ``spec`` on the backend chosen for it."""
    backend = choose(spec, device_manager)
    if backend == "torch":
        return cls.from_spec(spec, device_manager, **options)
    info = exported(spec)
    missing = cls.export_members_missing()
    if "from_runtime" in missing or (info is None and missing):  # an export on first use needs every member
        if info is None and getattr(device_manager, "backend", "torch") == "auto":
            return cls.from_spec(spec, device_manager, **options)
        raise HubError(f"model '{spec.id}' ({spec.task}) cannot run on backend '{backend}': its pipeline has no "
                       "runtime support; use --backend torch")
    from hub.export.runtime import Runtime

    if info is not None:
        directory = Path(spec.source)
    else:
        try:
            directory, info = cached_export(cls, spec, backend, options)
        except HubError as exc:
            if getattr(device_manager, "backend", "torch") != "auto":
                raise
            _warn(f"{spec.id}: backend auto falls back to torch: {exc}")
            return cls.from_spec(spec, device_manager, **options)
    runtime = Runtime(directory, backend, info, dtype=device_manager.dtype)
    pipeline = cls.from_runtime(spec, device_manager, runtime, **options)
    if pipeline.concurrent_batches:  # a call's batches share the runtime's streams, one batch per stream
        pipeline.parallel_batches = runtime.streams
    return pipeline


def cached_export(cls, spec, backend: str, options: dict) -> tuple[Path, dict]:
    """The fp32 export of ``spec`` for ``backend`` in the hub cache, made now if it is not there yet."""
    from hub.export.exporter import build, check_exportable, export_card
    from hub.export.manifest import cache_dir
    from hub.export.runtime import runtime_version
    from hub.io import atomic_directory
    from hub.local import spec_from_directory, write_card

    check_exportable(spec)
    fmt = _written_format(backend)
    target = cache_dir(spec, backend, "fp32", runtime_version(backend))
    if (target / "mmhub.yaml").is_file():
        cached = spec_from_directory(target)
        if cached is not None and export_info(cached) is not None:
            from hub.export.integrity import BrokenExportError, check

            try:
                check(target, export_info(cached))
                return target, export_info(cached)
            except BrokenExportError as exc:
                _warn(f"{spec.id}: the cached export is damaged ({exc}); exporting it again")
    from hub.device import get_device_manager

    reference = cls.from_spec(spec, get_device_manager("cpu", "fp32", "torch"), **options)
    _warn(f"{spec.id}: exporting to {backend} on first use into {target} (once per revision and runtime version)")
    with atomic_directory(target) as stage:
        info = build(reference, spec, fmt, Path(stage))
        write_card(stage, export_card(spec, info))
    return target, info


def _written_format(backend: str) -> str:
    """The format an export made for ``backend`` on first use is written in: the first it reads that hub export
    writes (a plugin's runtime may read onnx, or a format of its own that only its own tools write)."""
    from hub.runtimes import EXPORT_FORMATS

    info = RUNTIMES[backend]
    found = next((fmt for fmt in info.reads if fmt in EXPORT_FORMATS), None)
    if found is None:
        raise HubError(f"backend '{backend}' runs only {', '.join(info.reads)} exports, which hub export does not "
                       f"write; give it an exported model directory of that format (see plugin '{info.plugin}')")
    return found


def _warn(message: str) -> None:
    from hub.tasks.base import HubWarning

    warnings.warn(message, HubWarning, stacklevel=4)
