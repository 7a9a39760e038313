"""The inputs an export is measured on (and calibrated with, when no --calibration is given).

Two disjoint splits per modality: ``calibration`` for static quantization and ``heldout`` for the
measured agreement with the fp32 torch model. Texts are written here (short and long, several
languages, digits and punctuation); images are drawn from a fixed seed (gradients, shapes, stripes,
noise at several sizes), so every export is measured on the same pixels.
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import InputError

_TEXTS = [
    "A man is eating food.", "The new movie is awesome!", "A cat sits on the warm windowsill in the sun.",
    "How do I reset my password?", "Stocks fell sharply after the central bank raised interest rates again.",
    "The quick brown fox jumps over the lazy dog.", "I love this phone, but the battery life is terrible.",
    "Paris is the capital of France.", "Wo ist der nächste Bahnhof?", "La comida estaba deliciosa y barata.",
    "Climate change affects crop yields in many regions of the world, especially in dry areas.",
    "Error 404: the page you requested could not be found.", "Call me at 555-0199 after 6 pm.",
    "The committee will meet on Tuesday to review the budget for the next fiscal year.",
    "She scored two goals in the final minutes of the match.", "What is the meaning of life?",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Terrible service, I will never come back.", "The results were inconclusive; more data is needed.",
    "Mix the flour, sugar and eggs, then bake for 25 minutes at 180 degrees.",
    "Das Wetter ist heute schön.", "Le chat dort sur le canapé.", "Great value for the price.",
    "The spacecraft entered orbit around Mars after a journey of seven months.",
    "Neural networks learn representations from data by gradient descent.", "ok",
    "Please send the report by Friday.", "This is the worst day of my life.",
    "A young girl is playing the violin on a street corner while people walk by.",
    "The museum opens at nine and closes at five, except on Mondays when it is closed all day.",
    "He bought three apples, two bananas and a watermelon.", "Is it going to rain tomorrow?",
    "The algorithm runs in linear time and uses constant extra memory.", "Thank you so much for your help!",
    "The bridge was closed for repairs after the storm damaged its supports.", "Dogs are loyal animals.",
    "The court ruled that the contract was void because one party had been misled about the terms.",
    "Breaking news: a magnitude 6 earthquake struck off the coast this morning.", "I am not sure.",
    "Quantum computers may one day factor large numbers much faster than classical machines.",
    "Our team won the championship for the third year in a row.", "The soup is too salty.",
    "Il pleut depuis ce matin.", "Two children are building a sandcastle on the beach.",
    "The meeting has been moved to 3 pm.", "Vaccines train the immune system to recognise a pathogen.",
    "Absolutely fantastic experience from start to finish.", "Where can I buy train tickets?",
]
CALIBRATION_TEXTS = _TEXTS[1::2]
HELDOUT_TEXTS = _TEXTS[0::2]


def images(split: str, count: int = 12, size: int = 96) -> list:
    """``count`` RGB PIL images of the ``split`` ('heldout' or 'calibration'), the same on every call."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng({"heldout": 7, "calibration": 11}[split])
    out = []
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        base = rng.uniform(0, 255, 3)
        kind = i % 4
        if kind == 0:  # a gradient
            img = np.stack([base[c] * (xx if c % 2 else yy) for c in range(3)], -1)
        elif kind == 1:  # a disc on a plain ground
            cx, cy, r = rng.uniform(0.3, 0.7, 2).tolist() + [rng.uniform(0.15, 0.35)]
            disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)[..., None]
            img = np.where(disc, rng.uniform(0, 255, 3), base)
        elif kind == 2:  # stripes
            period = rng.uniform(0.05, 0.3)
            img = np.stack([(np.sin(xx / period * 6.28 + c) + 1) * base[c] / 2 for c in range(3)], -1)
        else:  # noise
            img = rng.uniform(0, 255, (size, size, 3)) * 0.5 + base * 0.5
        out.append(Image.fromarray(np.clip(img, 0, 255).astype("uint8"), "RGB"))
    return out


def read_calibration(path, kind: str) -> list:
    """Calibration inputs from ``path``: a text file (one text per line), or a directory of images.

    For images, a text file lists one image path per line. Errors name the file and the fix.
    """
    from hub.inputs import load_image

    path = Path(path)
    if not path.exists():
        raise InputError(f"calibration data '{path}' does not exist; pass a text file (one input per line) "
                         "or, for image models, a directory of images")
    if path.is_dir():
        if kind != "image":
            raise InputError(f"calibration data '{path}' is a directory; for a text model pass a text file with "
                             "one text per line")
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp"))
        items = [load_image(p) for p in files]
    else:
        try:
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"calibration data '{path}' cannot be read as UTF-8 text ({exc}); pass a text file "
                             "with one input per line") from None
        items = [load_image(Path(line)) for line in lines] if kind == "image" else lines
    if len(items) < 2:
        raise InputError(f"calibration data '{path}' holds {len(items)} input(s); give at least 2 "
                         f"({'images' if kind == 'image' else 'lines of text'}), ideally a few hundred")
    return items
