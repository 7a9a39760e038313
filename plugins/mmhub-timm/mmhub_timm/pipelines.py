"""Vision pipelines of the timm plugin: image classification and pooled image embeddings.

Preprocessing is timm's own eval transform, built from the weights' pretrained config
(``resolve_data_config`` + ``create_transform``), so results match a direct timm call exactly
in fp32. Images are decoded per batch (a list of paths never sits in memory all at once),
in a small thread pool: PIL decoding and resizing release the GIL.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hub.errors import InputError
from hub.options import TOP_K
from hub.tasks.base import Pipeline
from hub.tasks.results import Classification, Embedding, LabelScore
from mmhub_timm import loading


class TimmPipeline(Pipeline):
    """Base of this plugin's pipelines: a timm model plus its eval transform."""

    default_batch_size = 32

    def __init__(self, spec, model, device_manager, transform=None, config=None, data_config=None, forward_fn=None,
                 **options):
        super().__init__(spec, model, device_manager, **options)
        self.transform = transform
        self.config = config or {}
        self.data_config = data_config or {}
        self.workers = max(1, min(8, os.cpu_count() or 1))
        self.forward_fn = forward_fn or self.torch_forward  # the runtime seam: an export replaces only this

    def torch_forward(self, pixels):
        """The torch module's forward for this task (logits, or pooled features)."""
        return self.model(pixels)

    # -- export: the graph, the files that go with it, and the pipeline around a runtime ---------------
    def graph_inputs(self, name: str, items: list) -> dict:
        return {"pixel_values": self.preprocess([self.prepare(x) for x in items])}

    def export_graphs(self, texts=(), images=()) -> list:
        from hub.export.onnx import GraphSpec

        return [GraphSpec("model", _Forward(self.torch_forward), self.graph_inputs("model", images), ["model_output"],
                          {"pixel_values": {0: "batch"}}, kind="image")]

    def export_assets(self, directory: Path) -> None:
        """timm's config.json (with the label names in use) and the resolved eval transform."""
        from hub.export.assets import write_json

        labels = getattr(self, "labels", None)
        write_json(Path(directory) / "config.json", {**self.config, **({"label_names": labels} if labels else {})})
        write_json(Path(directory) / "preprocess.json", {"data_config": self.data_config, "labels": labels})

    @classmethod
    def from_runtime(cls, spec, device_manager, runtime, **options):
        from timm.data import create_transform

        found = runtime.read_json("preprocess.json")
        data_cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in found["data_config"].items()}
        graph = runtime.graph("model")
        pipeline = cls(spec, runtime, device_manager, transform=create_transform(**data_cfg, is_training=False),
                       config=runtime.read_json("config.json"), data_config=data_cfg,
                       forward_fn=lambda pixels: graph(pixel_values=pixels)["model_output"], **options)
        if found.get("labels"):
            pipeline.labels = list(found["labels"])
        return pipeline

    @classmethod
    def from_spec(cls, spec, device_manager, **options):
        from timm.data import create_transform

        directory = loading.weights_dir(spec)
        model, config = loading.load_model(spec, directory)
        data_cfg = loading.data_config(model, spec.preprocess)
        transform = create_transform(**data_cfg, is_training=False)
        model = device_manager.place(model, channels_last=True)
        return cls(spec, model, device_manager, transform=transform, config=config, data_config=data_cfg, **options)

    def prepare(self, item):
        """Check a path early (exists, looks like an image); decoding waits for its batch."""
        if isinstance(item, (str, Path)):
            return _checked_path(Path(item))
        if isinstance(item, (bytes, bytearray)) or hasattr(item, "convert"):
            return item
        from hub.inputs import load_image

        return load_image(item)  # arrays: convert now, so a bad shape fails before any work

    def preprocess(self, items, **kwargs):
        import torch

        if len(items) == 1 or self.workers == 1:
            tensors = [self._tensor(x) for x in items]
        else:
            with ThreadPoolExecutor(min(self.workers, len(items))) as pool:
                tensors = list(pool.map(self._tensor, items))
        return torch.stack(tensors)

    def _tensor(self, item):
        from hub.inputs import load_image

        return self.transform(load_image(item))

    def model_input(self, batch):
        """The batch in the memory format the model was placed in (channels-last under bf16/fp16)."""
        import torch

        if self.device_manager.dtype != "fp32":
            return batch.contiguous(memory_format=torch.channels_last)
        return batch


class ImageClassificationPipeline(TimmPipeline):
    """Top-k classes with softmax scores; names from the weights' config, ImageNet, or class_N."""

    task = "image-classification"
    call_options = (TOP_K,)

    def __init__(self, spec, model, device_manager, **options):
        super().__init__(spec, model, device_manager, **options)
        self.labels = loading.label_names(model, self.config, spec)

    def forward(self, batch, **kwargs):
        return self.forward_fn(self.model_input(batch)).float().softmax(dim=-1)

    def postprocess(self, outputs, items, top_k: int = TOP_K.default, **kwargs):
        scores, indices = outputs.cpu().topk(min(top_k, outputs.shape[-1]), dim=-1)
        return [Classification([LabelScore(self.labels[i], s, i) for s, i in zip(row_s, row_i)])
                for row_s, row_i in zip(scores.tolist(), indices.tolist())]


class ImageEmbeddingPipeline(TimmPipeline):
    """The pooled features before the classifier: ``forward_head(forward_features(x), pre_logits=True)``."""

    task = "image-embedding"

    def torch_forward(self, pixels):
        return self.model.forward_head(self.model.forward_features(pixels), pre_logits=True)

    def forward(self, batch, **kwargs):
        return self.forward_fn(self.model_input(batch)).float().flatten(1)

    def postprocess(self, outputs, items, **kwargs):
        return [Embedding(row) for row in outputs.cpu().tolist()]


def _Forward(fn):  # noqa: N802  (builds a module lazily: torch is imported here)
    """A torch module whose forward is ``fn(pixel_values)`` (what the exporter traces)."""
    import torch

    class Forward(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = getattr(fn, "__self__", None) and fn.__self__.model

        def forward(self, pixel_values):
            return fn(pixel_values)

    return Forward().eval()


def _checked_path(path: Path) -> Path:
    """The path if it exists and its header is an image of a sane declared size; else an InputError naming it."""
    from hub.inputs import open_image

    if not path.is_file():
        raise InputError(f"image file '{path}' does not exist")
    open_image(path, f"image file '{path}'").close()
    return path
