"""A generated segmentation data set: coloured circles, squares and triangles on textured backgrounds.

Every image is drawn from its own seed with numpy and PIL, so a data set is the same on every
machine. Backgrounds are noise or stripes (two colours at a random angle and period); each image
holds one to three shapes of random colour, size and position (a later shape covers an earlier
one). Masks are single-channel PNGs of class indices: 0 background, 1 circle, 2 square, 3 triangle.
The class is the shape, never the colour, so a model has to learn shapes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ["background", "circle", "square", "triangle"]


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """An HxWx3 float texture: coloured noise, or stripes of two colours."""
    if rng.random() < 0.5:
        base = rng.uniform(40, 215, size=3)
        return np.clip(base + rng.normal(0, 35, size=(size, size, 3)), 0, 255)
    yy, xx = np.mgrid[0:size, 0:size]
    angle, period = rng.uniform(0, np.pi), rng.uniform(5, 14)
    band = (np.cos(angle) * xx + np.sin(angle) * yy) // (period / 2) % 2
    first, second = rng.uniform(30, 225, size=3), rng.uniform(30, 225, size=3)
    return np.where(band[..., None] > 0, first, second) + rng.normal(0, 8, size=(size, size, 3))


def shape_polygon(kind: int, cx: float, cy: float, r: float, turn: float) -> list[tuple[float, float]]:
    """The corners of a square (2) or a triangle (3) of radius ``r`` around (cx, cy), turned by ``turn``."""
    corners = 4 if kind == 2 else 3
    angles = turn + np.arange(corners) * 2 * np.pi / corners
    return [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in angles]


def draw(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(image HxWx3 uint8, mask HxW uint8) of the example with this seed."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    image = Image.fromarray(np.clip(background(rng, size), 0, 255).astype(np.uint8))
    mask = Image.new("L", (size, size), 0)
    pen, marker = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(1, 4))
        r = rng.uniform(0.12, 0.22) * size
        cx, cy = rng.uniform(r, size - r, size=2)
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if kind == 1:
            box = [cx - r, cy - r, cx + r, cy + r]
            pen.ellipse(box, fill=colour)
            marker.ellipse(box, fill=kind)
        else:
            corners = shape_polygon(kind, cx, cy, r * (1.25 if kind == 3 else 1.15), rng.uniform(0, 2 * np.pi))
            pen.polygon(corners, fill=colour)
            marker.polygon(corners, fill=kind)
    return np.asarray(image), np.asarray(mask)


def write_folder(root: Path, seeds, size: int = 64, classes: bool = True) -> Path:
    """``root/images/<n>.png`` and ``root/masks/<n>.png`` for each seed, plus ``classes.txt``."""
    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        image, mask = draw(seed, size)
        Image.fromarray(image).save(root / "images" / f"{seed:05d}.png")
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{seed:05d}.png")
    if classes:
        (root / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    return root
