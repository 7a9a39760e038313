"""The base of this plugin's pipelines: an open_clip model, its image transform and its tokenizer.

Images and texts are encoded to L2-normalised embeddings (float32 on the way out, whatever the
autocast dtype inside). Text embeddings are cached per tuple of texts (least recently used first
out), so that a zero-shot classifier or a retrieval gallery is encoded once, not once per batch.
"""
from __future__ import annotations

from collections import OrderedDict

from hub.errors import InputError
from hub.inputs import load_image
from hub.tasks.base import Pipeline
from mmhub_openclip.fast import patch_attention, precast_weights
from mmhub_openclip.loading import create, wants_channels_last, weights_dir


class ClipPipeline(Pipeline):
    """Shared loading, image preprocessing, text encoding and the ``embed_*`` helpers."""

    text_batch_size = 256
    cache_entries = 16

    def __init__(self, spec, model, device_manager, transform=None, tokenizer=None, directory=None,
                 channels_last: bool = False, **options):
        super().__init__(spec, model, device_manager, **options)
        self.transform = transform
        self.per_image, self.normalize = split_normalize(transform)
        self.tokenizer = tokenizer
        self.directory = directory
        self.channels_last = channels_last
        self._text_cache: OrderedDict = OrderedDict()

    @classmethod
    def from_spec(cls, spec, device_manager, **options):
        directory = weights_dir(spec)
        model, transform, tokenizer = create(spec, directory)
        reduced = device_manager.dtype != "fp32"
        channels_last = wants_channels_last(model) and reduced
        if reduced:  # the same numbers as plain autocast, without its per-batch weight casts and copies
            patch_attention(model)
            precast_weights(model, device_manager.torch_dtype())
        model = device_manager.place(model, channels_last=channels_last)
        return cls(spec, model, device_manager, transform=transform, tokenizer=tokenizer, directory=directory,
                   channels_last=channels_last, **options)

    # -- export: the two towers, the files that go with them, and the pipeline around a runtime ---------
    def graph_inputs(self, name: str, items: list) -> dict:
        """Pixels for the ``image`` graph (items are images), token ids for the ``text`` graph (texts)."""
        if name == "image":
            return {"pixel_values": self.preprocess([self.prepare(x) for x in items])}
        return {"input_ids": self.tokenize(list(items))}

    def export_graphs(self, texts: list[str], images: list) -> list:
        """The image and text towers, each returning unnormalised embeddings (normalised after the runtime)."""
        from hub.export.onnx import GraphSpec

        model = self.model
        return [GraphSpec("image", _Tower(model, "encode_image"), self.graph_inputs("image", images), ["embeds"],
                          {"pixel_values": {0: "batch"}}, kind="image"),
                GraphSpec("text", _Tower(model, "encode_text"), self.graph_inputs("text", texts), ["embeds"],
                          {"input_ids": {0: "batch"}}, kind="text")]

    def export_assets(self, directory) -> None:
        """open_clip's config and tokenizer files, plus the preprocessing and logit scale and bias in use."""
        from pathlib import Path

        from hub.export.assets import copy_matching, write_json
        from mmhub_openclip.loading import CONFIG_NAME, TOKENIZER_FILES

        copy_matching(Path(self.directory), Path(directory), [CONFIG_NAME, *TOKENIZER_FILES])
        scale, bias = self.scale_and_bias()
        write_json(Path(directory) / "clip.json", {
            "preprocess": dict(getattr(self.model.visual, "preprocess_cfg", {}) or {}),
            "logit_scale": float(self.model.logit_scale.detach()),
            "logit_bias": None if bias is None else float(bias.detach()),
            "embed_dim": self.embed_dim, "arch": self.spec.arch})

    @classmethod
    def from_runtime(cls, spec, device_manager, runtime, **options):
        import open_clip
        from open_clip.transform import PreprocessCfg, image_transform_v2

        from mmhub_openclip.loading import read_config

        found = runtime.read_json("clip.json")
        cfg = {k: tuple(v) if k == "size" and isinstance(v, list) else v for k, v in found["preprocess"].items()}
        transform = image_transform_v2(PreprocessCfg(**cfg), is_train=False)
        name = f"local-dir:{runtime.directory}" if read_config(runtime.directory) else found.get("arch")
        tokenizer = open_clip.get_tokenizer(name)
        return cls(spec, RuntimeClip(runtime, found), device_manager, transform=transform, tokenizer=tokenizer,
                   directory=runtime.directory, **options)

    # -- images -----------------------------------------------------------------------------
    def prepare(self, item):
        """An RGB PIL image; a missing or unreadable file raises InputError naming it."""
        return load_image(item)

    def preprocess(self, items, **kwargs):
        """The model's own open_clip transform (resize, crop, normalise), stacked into one batch.

        The final Normalize runs once on the stacked batch (the same elementwise arithmetic) instead of
        once per image: many tiny multi-threaded ops are slow when the CPU is shared.
        """
        import torch

        pixels = torch.stack([self.per_image(image) for image in items])
        if self.normalize is not None:
            pixels = self.normalize(pixels)
        if self.channels_last:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        return pixels

    def image_features(self, pixels, normalize: bool = True):
        """Image embeddings as float32 (call inside ``device_manager.inference()``)."""
        return self.model.encode_image(pixels, normalize=normalize).float()

    # -- texts ------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]):
        """The model's tokenizer; warns once when a text is longer than the context and gets cut."""
        limit = getattr(self.tokenizer, "context_length", None)
        encode = getattr(self.tokenizer, "encode", None)
        if limit and callable(encode) and any(len(encode(t)) + 2 > limit for t in texts):
            self.warn(f"{self.spec.id}: a text longer than the model's {limit} tokens was truncated")
        return self.tokenizer(texts)

    def text_features(self, texts: list[str], normalize: bool = True):
        """Text embeddings as float32, encoded in chunks (call inside ``device_manager.inference()``)."""
        import torch

        chunks = []
        for start in range(0, len(texts), self.text_batch_size):
            tokens = self.device_manager.to_device(self.tokenize(texts[start:start + self.text_batch_size]))
            chunks.append(self.model.encode_text(tokens, normalize=normalize).float())
        return torch.cat(chunks)

    def cached(self, key, build):
        """``build()`` once per ``key``; the least recently used entry goes when the cache is full."""
        if key in self._text_cache:
            self._text_cache.move_to_end(key)
            return self._text_cache[key]
        value = build()
        self._text_cache[key] = value
        while len(self._text_cache) > self.cache_entries:
            self._text_cache.popitem(last=False)
        return value

    # -- plain embeddings for Python users ----------------------------------------------------
    def embed_images(self, images, batch_size: int | None = None, normalize: bool = True):
        """A float32 CPU tensor (N, D): one embedding per image (path, bytes, PIL image or array)."""
        import torch

        items = [images] if not isinstance(images, (list, tuple)) else list(images)
        prepared = [self.prepare(x) for x in items]
        size = max(1, int(batch_size or self.default_batch_size))
        rows = [self._embed_chunk(prepared[start:start + size], normalize) for start in range(0, len(prepared), size)]
        return torch.cat(rows) if rows else torch.empty(0, self.embed_dim)

    def _embed_chunk(self, images, normalize: bool):
        dm = self.device_manager
        pixels = dm.to_device(self.preprocess(images))
        with dm.inference():
            return self.image_features(pixels, normalize).cpu()

    def embed_texts(self, texts, normalize: bool = True):
        """A float32 CPU tensor (N, D): one embedding per text."""
        import torch

        texts = check_texts(texts, "texts")
        if not texts:
            return torch.empty(0, self.embed_dim)
        with self.device_manager.inference():
            return self.text_features(texts, normalize).cpu()

    @property
    def embed_dim(self) -> int:
        projection = getattr(self.model, "text_projection", None)
        if projection is not None and hasattr(projection, "shape"):
            return int(projection.shape[-1])
        return int(getattr(self.model.visual, "output_dim", 0) or 0)

    def scale_and_bias(self):
        """open_clip's ``logit_scale.exp()`` and ``logit_bias`` (None for CLIP; set for SigLIP)."""
        bias = getattr(self.model, "logit_bias", None)
        return self.model.logit_scale.exp().float(), (bias.float() if bias is not None else None)


def split_normalize(transform):
    """``(per-image part, final Normalize or None)`` of a torchvision Compose."""
    from torchvision.transforms import Compose, Normalize

    steps = getattr(transform, "transforms", None)
    if isinstance(transform, Compose) and steps and isinstance(steps[-1], Normalize):
        return Compose(list(steps[:-1])), steps[-1]
    return transform, None


def check_texts(texts, name: str, allow_empty: bool = True) -> list[str]:
    """A list of non-empty strings (a lone string becomes a list of one), else InputError naming ``name``."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) and t.strip() for t in texts):
        raise InputError(f"'{name}' must be a list of non-empty strings, got {texts!r}")
    if not texts and not allow_empty:
        raise InputError(f"'{name}' is empty; pass at least one string")
    return list(texts)


class RuntimeClip:
    """Exported CLIP towers in the shape of the open_clip model they replace (``encode_image``, ``encode_text``)."""

    def __init__(self, runtime, found: dict):
        import torch
        from types import SimpleNamespace

        self.runtime = runtime
        self.logit_scale = torch.tensor(float(found["logit_scale"]))
        self.logit_bias = None if found.get("logit_bias") is None else torch.tensor(float(found["logit_bias"]))
        self.text_projection = None
        self.visual = SimpleNamespace(output_dim=int(found["embed_dim"]))

    def encode_image(self, pixels, normalize: bool = False):
        return _normalized(self.runtime.graph("image")(pixel_values=pixels)["embeds"], normalize)

    def encode_text(self, tokens, normalize: bool = False):
        return _normalized(self.runtime.graph("text")(input_ids=tokens)["embeds"], normalize)


def _normalized(features, normalize: bool):
    import torch.nn.functional as F

    return F.normalize(features, dim=-1) if normalize else features


def _Tower(model, method: str):  # noqa: N802  (builds a module lazily: torch is imported here)
    """A torch module running one CLIP tower without normalising (what the exporter traces)."""
    import torch

    class Tower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, **inputs):
            (value,) = inputs.values()
            return getattr(self.model, method)(value, normalize=False)

    return Tower().eval()
