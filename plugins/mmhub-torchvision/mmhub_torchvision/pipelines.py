"""Object detection and semantic segmentation pipelines on torchvision models.

Each image goes through the weights' own ``transforms()``; results come back at the image's own
size (boxes in its pixel coordinates, a class per pixel). A batch runs images of the same size
together and others one size at a time, so that no result depends on the other images of its batch
(torchvision pads a batch to its largest image, which changes the outputs near the padded edges).
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import InputError
from hub.options import TOP_K, Option
from hub.tasks.base import Pipeline
from mmhub_torchvision import loading
from mmhub_torchvision.catalog import DETECTION, SEGMENTATION
from mmhub_torchvision.results import Box, Detection, SegmentClass, Segmentation, SegmentMask

SCORE_THRESHOLD = Option("score_threshold", float, 0.5, "keep boxes scoring at least this (0 keeps every box the "
                         "model returns)", minimum=0.0, maximum=1.0)
DETECTION_TOP_K = TOP_K.but(default=100, help="how many of the best-scoring boxes to keep")
MASKS = Option("masks", bool, False, "also return a 0/1 mask per class present")


class TorchvisionPipeline(Pipeline):
    """Base of this plugin's pipelines: a torchvision model, its weights' transform and class names."""

    default_batch_size = 8

    def __init__(self, spec, model, device_manager, transform=None, categories=None, **options):
        super().__init__(spec, model, device_manager, **options)
        self.transform = transform
        self.categories = list(categories or [])

    @classmethod
    def from_spec(cls, spec, device_manager, **options):
        loaded = loading.load(spec)
        model = device_manager.place(loaded.model, channels_last=True)
        return cls(spec, model, device_manager, transform=loaded.transform, categories=loaded.categories, **options)

    def prepare(self, item):
        """Check a path early (exists, an image of a sane size); other inputs are decoded now."""
        from hub.inputs import load_image, open_image

        if isinstance(item, (str, Path)):
            path = Path(item)
            if not path.is_file():
                raise InputError(f"image file '{path}' does not exist")
            open_image(path, f"image file '{path}'").close()
            return path
        return load_image(item)

    def preprocess(self, items, **kwargs):
        """The transformed images and each image's own (width, height)."""
        from hub.inputs import load_image

        images = [load_image(x) for x in items]
        return {"images": [self.transform(img) for img in images], "sizes": [img.size for img in images]}

    def by_shape(self, tensors: list) -> list[list[int]]:
        """Indices of the tensors grouped by shape, in order of first appearance."""
        groups: dict[tuple, list[int]] = {}
        for i, t in enumerate(tensors):
            groups.setdefault(tuple(t.shape), []).append(i)
        return list(groups.values())

    def label(self, index: int) -> str:
        return self.categories[index] if 0 <= index < len(self.categories) else f"class_{index}"


class ObjectDetectionPipeline(TorchvisionPipeline):
    """Boxes ``[x0, y0, x1, y1]`` in the image's pixels, best first, with labels and scores."""

    task = DETECTION
    call_options = (SCORE_THRESHOLD, DETECTION_TOP_K)

    def forward(self, batch, **kwargs):
        """Per image: torchvision's detections (boxes, labels, scores) and the image's (width, height)."""
        images = batch["images"]
        out: list = [None] * len(images)
        for group in self.by_shape(images):
            for i, found in zip(group, self.model([images[i] for i in group])):
                out[i] = ({k: v.float() if v.is_floating_point() else v for k, v in found.items()}, batch["sizes"][i])
        return out

    def postprocess(self, outputs, items, score_threshold: float = 0.5, top_k: int = 100, **kwargs):
        return [self._detection(found, size, score_threshold, top_k) for found, size in outputs]

    def _detection(self, found: dict, size: tuple, threshold: float, top_k: int) -> Detection:
        scores = found["scores"].cpu()
        order = scores.argsort(descending=True, stable=True)
        order = order[scores[order] >= threshold][:top_k]
        boxes, labels = found["boxes"].cpu()[order].tolist(), found["labels"].cpu()[order].tolist()
        return Detection([Box(self.label(c), s, b, c) for b, c, s in zip(boxes, labels, scores[order].tolist())],
                         width=int(size[0]), height=int(size[1]))


class SegmentationPipeline(TorchvisionPipeline):
    """A class per pixel at the image's own size: the model's logits resized bilinearly, then argmax."""

    task = SEGMENTATION
    call_options = (MASKS,)

    def forward(self, batch, **kwargs):
        """Per image: (class map, probability of its class) at the image's size."""
        import torch

        images, sizes = batch["images"], batch["sizes"]
        out: list = [None] * len(images)
        for group in self.by_shape(images):
            stacked = torch.stack([images[i] for i in group])
            if self.device_manager.dtype != "fp32":
                stacked = stacked.contiguous(memory_format=torch.channels_last)
            logits = self.model(stacked)["out"]
            for row, i in enumerate(group):
                out[i] = _full_size_classes(logits[row:row + 1], sizes[i])
        return out

    def postprocess(self, outputs, items, masks: bool = False, **kwargs):
        return [self._segmentation(class_map.cpu(), prob.cpu(), masks) for class_map, prob in outputs]

    def _segmentation(self, class_map, prob, masks: bool) -> Segmentation:
        import torch

        n = max(len(self.categories), int(class_map.max()) + 1)
        flat = class_map.flatten()
        counts = torch.bincount(flat, minlength=n)
        sums = torch.zeros(n, dtype=torch.float64).index_add_(0, flat, prob.flatten().double())
        present = [int(c) for c in counts.argsort(descending=True, stable=True) if counts[c] > 0]
        classes = [SegmentClass(self.label(c), c, int(counts[c]), float(sums[c] / counts[c])) for c in present]
        found = None
        if masks:
            found = [SegmentMask(self.label(c), c, (class_map == c).to(torch.uint8).tolist()) for c in present]
        height, width = class_map.shape
        return Segmentation(class_map.tolist(), [self.label(i) for i in range(n)], classes, int(width), int(height),
                            found)


def _full_size_classes(logits, size: tuple):
    """The argmax class and its softmax probability per pixel, after resizing ``logits`` to ``size`` (w, h)."""
    import torch.nn.functional as F

    full = F.interpolate(logits.float(), size=(size[1], size[0]), mode="bilinear", align_corners=False)[0]
    prob, class_map = full.softmax(dim=0).max(dim=0)
    return class_map, prob
