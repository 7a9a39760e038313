"""The server's limits (each a ``hub serve`` flag with a documented default) and the checks that apply them.

A request over a limit is answered with an error naming the limit and its flag: 413 for the body,
422 for too many items, over-long texts, images over the pixel limit, audio over the duration limit, an
option counting new tokens over ``--max-new-tokens`` and a generation whose estimated memory passes
``--max-generation-mb`` (both checked before any input is decoded),
429 (with ``Retry-After``) when a model's queue is full and 504 when a request waits past its timeout.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from hub.serve.errors import ApiError


@dataclass(frozen=True)
class Limits:
    """Every limit and batching setting of the server, with its default."""

    max_batch: int = 32                # items per batch run by a model
    max_batch_tokens: int = 8192       # text tokens per batch (a token is taken as 4 characters)
    max_wait_ms: float = 5.0           # how long a batch waits for more items after its first
    max_queue: int = 1024              # items waiting per model; more is a 429
    timeout_s: float = 60.0            # a request waiting longer is a 504
    max_body_mb: float = 32.0          # request body size; more is a 413
    max_items: int = 256               # inputs per request
    max_text_chars: int = 32768        # characters per text input
    max_image_pixels: int = 40_000_000  # width x height per image
    max_audio_s: float = 600.0         # seconds per audio input
    max_new_tokens: int = 1024         # new tokens per input a generation option may ask for
    max_generation_mb: float = 8192.0  # estimated memory of one generation batch (caches, activations)
    max_json_depth: int = 32           # nesting of arrays and objects in a JSON body
    workers: int = 0                   # batches a model runs at once; 0: one per CPU core on the CPU, else 1

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 2**20)


HELP = {
    "max_batch": "Most items in one batch a model runs.",
    "max_batch_tokens": "Most text tokens (about 4 characters each) in one batch.",
    "max_wait_ms": "Milliseconds a batch waits for more requests after its first item (models with one worker).",
    "max_queue": "Most items waiting per model; more gets 429 with Retry-After.",
    "timeout_s": "Seconds a request may wait for its results; longer gets 504.",
    "max_body_mb": "Largest request body in MiB; larger gets 413.",
    "max_items": "Most inputs in one request; more gets 422.",
    "max_text_chars": "Longest text input in characters; longer gets 422.",
    "max_image_pixels": "Largest image (width x height); larger gets 422.",
    "max_audio_s": "Longest audio input in seconds; longer gets 422.",
    "max_new_tokens": "Most new tokens per input a request may ask a generating model for (max_new_tokens, "
                      "seq_len); more gets 422.",
    "max_generation_mb": "Largest estimated memory in MiB of one generation batch (batch x beams x tokens x the "
                         "model's key/value and activation bytes per token); more gets 422.",
    "max_json_depth": "Deepest nesting of arrays and objects in a JSON body; deeper gets 422.",
    "workers": "Batches one model runs at once, each on its share of the CPU cores (0: one per core on the CPU, "
               "1 on a GPU; models that cannot run batches side by side use 1).",
}


def flag(name: str) -> str:
    """The command-line flag of a limit, e.g. ``--max-batch``."""
    return "--" + name.replace("_", "-")


def limit_names() -> list[str]:
    return [f.name for f in fields(Limits)]


def over_limit(name: str, what: str, value, limit, param: str | None = "inputs") -> ApiError:
    """A 422 naming the limit, the value found and the flag that sets it."""
    return ApiError(422, f"{what} is {value}, over the server's limit {name}={limit} (set with {flag(name)}); "
                         "send less", param, f"limit_{name}")


def check_items(limits: Limits, count: int) -> None:
    if count == 0:
        raise ApiError(400, "no inputs: give at least one input in 'inputs'", "inputs", "no_inputs")
    if count > limits.max_items:
        raise over_limit("max_items", "the number of inputs", count, limits.max_items)


def check_generation(limits: Limits, pipeline, options: dict, input_tokens: int | None = None) -> None:
    """A 422 for an option counting new tokens over ``--max-new-tokens``, or for options whose batch the pipeline
    estimates (``Pipeline.estimate_bytes``) over ``--max-generation-mb``; before any input is decoded. The batch is
    the one requests with equal options share: ``--max-batch`` inputs, or the pipeline's smaller batch size."""
    for option in pipeline.call_options:
        value = options.get(option.name)
        if option.new_tokens and isinstance(value, int) and value > limits.max_new_tokens:
            raise ApiError(422, f"option '{option.name}' is {value}, over the server's limit max_new_tokens="
                                f"{limits.max_new_tokens} (set with {flag('max_new_tokens')}); ask for fewer",
                           "options", "limit_max_new_tokens")
    batch = min(limits.max_batch, int(pipeline.default_batch_size or limits.max_batch))
    needed = pipeline.estimate_bytes(batch, options, input_tokens)
    if needed and needed > limits.max_generation_mb * 2**20:
        raise ApiError(422, f"with these options a batch of {batch} inputs (--max-batch) would take about "
                            f"{needed / 2**20:.0f} MiB, over the server's limit max_generation_mb="
                            f"{limits.max_generation_mb:g} (set with {flag('max_generation_mb')}); ask for fewer new "
                            "tokens or beams, or send shorter inputs", "options", "limit_max_generation_mb")


def check_text(limits: Limits, text, index: int) -> str:
    """A text input, checked for type, decodability and length."""
    if not isinstance(text, str):
        raise ApiError(400, f"input {index} must be a string, got {type(text).__name__}", "inputs", "invalid_input")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"input {index} holds characters that are not valid text (lone surrogates)",
                       "inputs", "invalid_input") from None
    if len(text) > limits.max_text_chars:
        raise over_limit("max_text_chars", f"the length of input {index} in characters", len(text),
                         limits.max_text_chars)
    return text


def check_image(limits: Limits, data: bytes, index: int) -> bytes:
    """Image bytes whose declared size (read from the header only) is within the pixel limit."""
    import io
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
    except Exception as exc:  # PIL raises many kinds for bytes that are no image
        raise ApiError(400, f"input {index} is not a readable image ({type(exc).__name__}: {exc}); send PNG, "
                            "JPEG, WebP, GIF, BMP or TIFF bytes", "inputs", "invalid_image") from None
    if width * height > limits.max_image_pixels:
        raise over_limit("max_image_pixels", f"the size of image input {index} ({width}x{height})",
                         width * height, limits.max_image_pixels)
    return data


def read_audio(limits: Limits, data: bytes, index: int):
    """(samples, sample rate) of audio bytes; the duration is checked from the header before decoding."""
    import io

    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
    except Exception as exc:
        raise ApiError(400, f"input {index} is not readable audio ({exc}); send wav, flac, ogg, mp3 or aiff",
                       "inputs", "invalid_audio") from None
    seconds = info.frames / info.samplerate if info.samplerate else 0
    if seconds > limits.max_audio_s:
        raise over_limit("max_audio_s", f"the duration of audio input {index} in seconds", round(seconds, 2),
                         limits.max_audio_s)
    if info.frames == 0:
        raise ApiError(400, f"audio input {index} is empty (no samples)", "inputs", "invalid_audio")
    try:
        wave, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    except Exception as exc:
        raise ApiError(400, f"audio input {index} cannot be decoded ({exc})", "inputs", "invalid_audio") from None
    return wave, rate


def audio_seconds(data: bytes) -> float:
    """The duration of audio bytes from their header; 0 when unreadable."""
    import io

    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
    except Exception:
        return 0.0
    return info.frames / info.samplerate if info.samplerate else 0.0


def decode_base64(value, index: int) -> bytes:
    """The bytes of a ``data:<mime>;base64,...`` URI or of plain base64 text."""
    import base64
    import binascii

    if not isinstance(value, str):
        raise ApiError(400, f"input {index} must be a string: a data: URI or base64 text, got "
                            f"{type(value).__name__}", "inputs", "invalid_input")
    text = value
    if text.startswith("data:"):
        head, sep, text = text.partition(",")
        if not sep or not head.endswith(";base64"):
            raise ApiError(400, f"input {index} is a data: URI without ';base64,'; send "
                                "data:<mime>;base64,<data>", "inputs", "invalid_input")
    try:
        data = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"input {index} is not valid base64; send a data:<mime>;base64,<data> URI or "
                            "plain base64", "inputs", "invalid_input") from None
    if not data:
        raise ApiError(400, f"input {index} is empty", "inputs", "invalid_input")
    return data
