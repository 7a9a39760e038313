"""Result types of the two tasks this plugin adds. Plain dataclasses of JSON types: no torch, no numpy."""
from __future__ import annotations

from dataclasses import dataclass, field

from hub.tasks.results import Result


@dataclass
class Box(Result):
    """One detected object: its class, score and box ``[x0, y0, x1, y1]`` in the image's pixels."""

    label: str
    score: float
    box: list[float]
    index: int

    def summary(self) -> str:
        x0, y0, x1, y1 = self.box
        return f"{self.label} ({self.score:.3f}) [{x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}]"


@dataclass
class Detection(Result):
    """The objects found in one image, best first; ``width``/``height`` are the image's own size."""

    boxes: list[Box]
    width: int
    height: int
    nested = {"boxes": Box}

    def summary(self) -> str:
        if not self.boxes:
            return f"(no objects) {self.width}x{self.height}"
        shown = "; ".join(b.summary() for b in self.boxes[:5])
        more = f"; ... {len(self.boxes)} in all" if len(self.boxes) > 5 else ""
        return shown + more


@dataclass
class SegmentClass(Result):
    """One class present in a class map: how many pixels it has and their mean probability."""

    label: str
    index: int
    pixels: int
    score: float


@dataclass
class SegmentMask(Result):
    """The pixels of one class as rows of 0/1, at the image's own size."""

    label: str
    index: int
    mask: list[list[int]]


@dataclass
class Segmentation(Result):
    """A class index per pixel (``class_map[y][x]``) at the image's own size, its classes and, on request, masks.

    ``labels`` names every class the model has (``labels[i]`` is class ``i``); ``classes`` lists those
    present, most pixels first; ``masks`` is filled when the call asks for ``masks=True``.
    """

    class_map: list[list[int]]
    labels: list[str]
    classes: list[SegmentClass]
    width: int
    height: int
    masks: list[SegmentMask] | None = None
    nested = {"classes": SegmentClass, "masks": SegmentMask}

    def to_dict(self) -> dict:
        """Plain JSON types; the large maps are shared, not copied."""
        return {"class_map": self.class_map, "labels": list(self.labels),
                "classes": [c.to_dict() for c in self.classes], "width": self.width, "height": self.height,
                "masks": None if self.masks is None else [{"label": m.label, "index": m.index, "mask": m.mask}
                                                          for m in self.masks]}

    def summary(self) -> str:
        total = max(1, self.width * self.height)
        parts = ", ".join(f"{c.label} {100 * c.pixels / total:.1f}%" for c in self.classes[:5])
        more = f", ... {len(self.classes)} classes" if len(self.classes) > 5 else ""
        return f"{self.width}x{self.height}: {parts}{more}"
