"""Exports to ONNX Runtime and OpenVINO (fp32 or int8, each measured against the fp32 torch model).

``hub export MODEL --format onnx|openvino [--int8] --out DIR`` writes a model directory that ``hub run``,
``hub info``, ``hub serve`` and the catalogue treat as a model. A runtime replaces only a pipeline's
``forward``; its pre- and postprocessing stay the pipeline's own. A pipeline class takes part by overriding
four members that :class:`hub.tasks.base.Pipeline` declares and refuses by default
(``Pipeline.export_members_missing()`` names those a class leaves out; see the shipped plugins):

- ``export_graphs(texts, images) -> list[GraphSpec]``: the torch module(s) its forward runs, with
  example inputs made by its own preprocessing;
- ``graph_inputs(name, items) -> dict``: graph ``name``'s tensors for raw inputs (calibration);
- ``export_assets(directory)``: the files its pre- and postprocessing read (tokenizer, transform, labels);
- ``from_runtime(spec, device_manager, runtime, **options)`` (classmethod): the same pipeline with
  ``forward_fn`` (or the model object it calls) backed by the runtime's graphs.

Modules: ``api`` (export into a new directory), ``exporter`` (graphs, int8, measurement), ``onnx``
(torch.onnx.export, OpenVINO conversion), ``quantize``, ``gates``, ``heldout``, ``runtime`` (sessions),
``backends`` (the backend choice and exports on first use), ``manifest`` (mmhub.yaml, the cache).
"""
