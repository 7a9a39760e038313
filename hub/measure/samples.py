"""Sample inputs for measuring a model: generated here, the same on every run, for any task in the table.

A pipeline may bring its own: ``sample_inputs(n) -> list`` and, when its calls need options,
``sample_options() -> dict``. Otherwise the samples follow the task's input kind: texts of mixed
length (a mask token put in for fill-mask), images of several sizes, audio clips of 1 to 4 seconds,
and images with texts to compare for image+text; twelve distinct ones, repeated for longer lists.
Options a call needs and has no default for (``labels``, ``texts``, ``question``, ``query``) are
filled with fitting values (texts are then contexts long enough for the question); generation is
held to a few new tokens. A task of another input kind, without the pipeline's own samples, is refused
with the reason.
"""
from __future__ import annotations

from hub.errors import HubError

WORDS = ("the model reads a short sentence about weather markets music rivers science football cooking "
         "travel history and the people who wrote it down in a notebook late at night before the train left").split()
TEXT_LENGTHS = (3, 8, 14, 24, 40, 64, 6, 18, 32, 52, 10, 28)  # words per text: short, medium and long mixed
IMAGE_SIZES = ((640, 480), (320, 240), (500, 375), (224, 224), (800, 600), (375, 500))
AUDIO_SECONDS = (1.0, 2.5, 4.0, 1.5, 3.0)
AUDIO_RATE = 16_000
SAMPLE_LABELS = ["a photo of a cat", "a photo of a dog", "a diagram", "a landscape", "a city street"]
TEXT_LABELS = ["sports", "politics", "science", "music", "cooking"]
FILLED_OPTIONS = {"question": "What did the people write down?", "query": "what did the people write down",
                  "texts": SAMPLE_LABELS}
GENERATION_TOKENS = 8
DISTINCT = 12  # distinct samples made; longer lists repeat them
CONTEXT_WORDS = 14  # the shortest text when each text is a context for a question


class NoSamplesError(HubError):
    """A task for which neither the pipeline nor the hub has sample inputs."""


def sample_inputs(pipeline, n: int) -> list:
    """``n`` inputs for ``pipeline``: its own samples, else generated for its task's input kind."""
    own = pipeline.sample_inputs(n)
    if own is not None:
        items = list(own)
        if not items:
            raise NoSamplesError(f"the pipeline of '{pipeline.spec.id}' returned no sample inputs")
        return [items[i % len(items)] for i in range(n)]
    kind = input_kind(pipeline)
    shortest = CONTEXT_WORDS if "question" in {o.name for o in pipeline.call_options} else 1
    make = {"text": lambda k: texts(k, mask_token(pipeline), shortest), "image": images, "image+text": images,
            "audio": audio_clips}.get(kind)
    if make is not None:
        distinct = make(min(n, DISTINCT))  # reused in turn: the samples add little to the memory measured
        return [distinct[i % len(distinct)] for i in range(n)]
    raise NoSamplesError(
        f"task '{pipeline.task}' takes '{kind}' inputs, for which the hub has no samples, and the pipeline of "
        f"'{pipeline.spec.id}' brings none (a pipeline can define sample_inputs(n) to be measured by hub bench)")


def sample_options(pipeline) -> dict:
    """The call options the samples need: the pipeline's own, else fitting values for undefaulted options."""
    own = pipeline.sample_options()
    if own is not None:
        return dict(own)
    declared = {o.name: o for o in pipeline.call_options}
    options = {}
    for name, value in FILLED_OPTIONS.items():
        if name in declared and declared[name].default is None:
            options[name] = value
    on_text = input_kind(pipeline) == "text"
    if "texts" in options and on_text:
        options["texts"] = texts(5)  # passages to rank or compare with
    if "labels" in declared and declared["labels"].default is None:
        options["labels"] = TEXT_LABELS if on_text else SAMPLE_LABELS
    if "max_new_tokens" in declared:
        options["max_new_tokens"] = GENERATION_TOKENS
    return options


def input_kind(pipeline) -> str:
    from hub.tasks import TASKS

    info = TASKS.get(pipeline.task)
    return info.inputs if info is not None else "unknown"


def mask_token(pipeline) -> str | None:
    """The mask token each text needs when the task's declaration says so (``TaskInfo.needs_mask``), else None."""
    from hub.tasks import TASKS

    info = TASKS.get(pipeline.task)
    if info is None or not info.needs_mask:
        return None
    token = getattr(pipeline.tokenizer, "mask_token", None)  # a tokenizer need not have one
    if not token:
        raise NoSamplesError(f"cannot make {pipeline.task} samples for '{pipeline.spec.id}': its tokenizer has no "
                             "mask token")
    return token


def texts(n: int, mask: str | None = None, shortest: int = 1) -> list[str]:
    """``n`` texts of mixed length (3 to 64 words, at least ``shortest``); each holds ``mask`` once when given."""
    lengths = [k for k in TEXT_LENGTHS if k >= shortest]
    out = []
    for i in range(n):
        length = lengths[i % len(lengths)]
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(length)]
        if mask:
            words[length // 2] = mask
        text = " ".join(words)
        out.append(text[0].upper() + text[1:] + ".")
    return out


def images(n: int) -> list:
    """``n`` RGB images of several sizes: a noisy colour gradient scaled up, with an ellipse on it; seeded."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        width, height = IMAGE_SIZES[i % len(IMAGE_SIZES)]
        y, x = np.mgrid[0:48, 0:64]
        small = np.stack([x * 4, y * 5, (x + y) * 2 % 256], axis=-1) + rng.normal(0, 20, (48, 64, 3))
        img = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8), "RGB").resize((width, height), Image.BILINEAR)
        cx, cy, r = width * rng.uniform(0.3, 0.7), height * rng.uniform(0.3, 0.7), min(width, height) / 5
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        ImageDraw.Draw(img).ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        out.append(img)
    return out


def audio_clips(n: int) -> list[tuple]:
    """``n`` mono clips of 1 to 4 s at 16 kHz as (samples, rate): a gliding tone in low noise, seeded."""
    import numpy as np

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        seconds = AUDIO_SECONDS[i % len(AUDIO_SECONDS)]
        t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
        freq = 220 + 180 * (i % 4) + 60 * t
        wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(t.size)
        out.append((wave.astype(np.float32), AUDIO_RATE))
    return out
