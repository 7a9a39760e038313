"""A generated segmentation data set: coloured circles, squares and triangles on textured backgrounds.

Every image is drawn from its own seed with numpy and PIL, so a data set is the same on every
machine. Backgrounds are dull noise or stripes (two colours at a random angle and period); each
image holds one or two shapes of a bright colour of any hue, of random size, position and turn (a
later shape covers an earlier one). Masks are single-channel PNGs of class indices: 0 background, 1 circle, 2 square, 3 triangle.
The class is the shape, never the colour, so a model has to learn shapes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ["background", "circle", "square", "triangle"]


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """An HxWx3 float texture in dull colours: noise, or stripes of two colours."""
    if rng.random() < 0.5:
        base = rng.uniform(50, 130) + rng.uniform(-15, 15, size=3)
        return base + rng.normal(0, 25, size=(size, size, 3))
    yy, xx = np.mgrid[0:size, 0:size]
    angle, period = rng.uniform(0, np.pi), rng.uniform(5, 14)
    band = (np.cos(angle) * xx + np.sin(angle) * yy) // (period / 2) % 2
    first = rng.uniform(40, 140) + rng.uniform(-15, 15, size=3)
    second = rng.uniform(40, 140) + rng.uniform(-15, 15, size=3)
    return np.where(band[..., None] > 0, first, second) + rng.normal(0, 8, size=(size, size, 3))


def colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A bright, saturated colour (any hue), so shapes stand out from the dull backgrounds."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.8, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


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
    for _ in range(int(rng.integers(1, 3))):
        kind = int(rng.integers(1, 4))
        r = rng.uniform(0.14, 0.24) * size
        cx, cy = rng.uniform(r, size - r, size=2)
        fill = colour(rng)
        if kind == 1:
            box = [cx - r, cy - r, cx + r, cy + r]
            pen.ellipse(box, fill=fill)
            marker.ellipse(box, fill=kind)
        else:
            corners = shape_polygon(kind, cx, cy, r * (1.25 if kind == 3 else 1.15), rng.uniform(0, 2 * np.pi))
            pen.polygon(corners, fill=fill)
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
