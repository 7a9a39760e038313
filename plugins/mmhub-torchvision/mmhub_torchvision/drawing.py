"""``hub run --save-dir DIR``: boxes or coloured masks drawn onto copies of the input images.

Every file is written through :mod:`hub.io` (complete or not at all). Nothing in DIR is replaced:
a name already taken, the input's own file included, gets a numbered suffix. PIL and numpy only.
"""
from __future__ import annotations

import colorsys
import io
from pathlib import Path

from hub.errors import InputError

MASK_ALPHA = 0.5


def save_detection(result, input_name, source_input, out_dir) -> list[Path]:
    """Draw each box with its label and score onto a copy of the image; returns the file written."""
    from PIL import ImageDraw

    image = _source_image(source_input, input_name)
    draw = ImageDraw.Draw(image)
    width = max(2, round(min(image.size) / 200))
    for box in result.boxes:
        colour = class_colour(box.index)
        draw.rectangle(box.box, outline=colour, width=width)
        text = f"{box.label} {box.score:.2f}"
        x0, y0 = box.box[0], box.box[1]
        left, top, right, bottom = draw.textbbox((x0, y0), text)
        lift = min(bottom - top + 2, y0)
        draw.rectangle((left, top - lift, right + 2, bottom - lift), fill=colour)
        draw.text((x0 + 1, y0 - lift), text, fill=(255, 255, 255))
    return [_write_png(image, out_dir, _stem(input_name), "detection")]


def save_segmentation(result, input_name, source_input, out_dir) -> list[Path]:
    """A copy of the image with each class but the first (background) tinted, and the class map as a PNG."""
    import numpy as np
    from PIL import Image

    image = _source_image(source_input, input_name)
    class_map = np.asarray(result.class_map, dtype=np.int64)
    if class_map.shape != (image.height, image.width):
        raise InputError(f"the class map of '{input_name}' is {class_map.shape[1]}x{class_map.shape[0]} but the image "
                         f"is {image.width}x{image.height}; pass the image the result was computed on")
    palette = np.array([class_colour(i) for i in range(int(class_map.max()) + 1)], dtype=np.float32)
    pixels = np.asarray(image, dtype=np.float32)
    tinted = class_map > 0
    pixels[tinted] = (1 - MASK_ALPHA) * pixels[tinted] + MASK_ALPHA * palette[class_map[tinted]]
    overlay = Image.fromarray(pixels.round().clip(0, 255).astype(np.uint8))
    mode_type = np.uint8 if class_map.max() < 256 else np.uint16
    classes = Image.fromarray(class_map.astype(mode_type))
    stem = _stem(input_name)
    return [_write_png(overlay, out_dir, stem, "segmentation"), _write_png(classes, out_dir, stem, "classes")]


def class_colour(index: int) -> tuple[int, int, int]:
    """A bright colour per class index, far from its neighbours' (golden-ratio hues)."""
    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return round(r * 255), round(g * 255), round(b * 255)


def _source_image(source_input, input_name):
    """A fresh RGB copy of the input to draw on (the input itself is never touched)."""
    from hub.inputs import load_image

    return load_image(source_input if source_input is not None else input_name).copy()


def _stem(input_name) -> str:
    stem = Path(str(input_name)).stem if input_name else ""
    return stem or "image"


def _write_png(image, out_dir, stem: str, kind: str) -> Path:
    from hub.io import atomic_write_bytes

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return atomic_write_bytes(free_name(Path(out_dir), stem, kind), buffer.getvalue())


def free_name(out_dir: Path, stem: str, kind: str) -> Path:
    """``DIR/STEM.KIND.png``, or ``STEM.KIND-2.png``, ... when that name is taken."""
    path = out_dir / f"{stem}.{kind}.png"
    n = 2
    while path.exists():
        path = out_dir / f"{stem}.{kind}-{n}.png"
        n += 1
    return path
