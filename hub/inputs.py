"""Reading inputs: images (path, bytes, PIL, array), audio (path, array + rate), text.

Every error names the input and what would work instead. Sizes and values are checked before
anything is decoded or converted: an image's declared size against PIL's decompression-bomb limit
(``PIL.Image.MAX_IMAGE_PIXELS``) and a sane aspect ratio, arrays for emptiness, NaN/inf and dtype,
audio for its sample rate, shape and samples. numpy, PIL and soundfile are imported only when an
input of that kind is read.
"""
from __future__ import annotations

import io
import math
import numbers
import os
import re
import threading
from pathlib import Path

from hub.errors import InputError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_ASPECT_RATIO = 100  # longer side / shorter side; resizing the short side to 224 px keeps this bounded
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 1_000_000
MAX_CHANNELS = 32
PCM_SCALE = {"int8": 2 ** 7, "int16": 2 ** 15, "int32": 2 ** 31}  # integer samples -> [-1, 1)
_OPEN_LOCK = threading.Lock()  # warnings filters are process-wide: one header read at a time


def load_image(item):
    """An RGB PIL image from a path, bytes, PIL image or HxWxC / HxW uint8/float array."""
    from PIL import Image

    if isinstance(item, Image.Image):
        check_image_size(item.size, "the PIL image given")
        return item.convert("RGB")
    if isinstance(item, (bytes, bytearray)):
        return _decoded(io.BytesIO(item), "the image given as bytes")
    if isinstance(item, (str, Path)):
        path = Path(item)
        if not path.is_file():
            raise InputError(f"image file '{path}' does not exist")
        return _decoded(path, f"image file '{path}'")
    if hasattr(item, "__array__"):
        return _image_array(item)
    raise InputError(f"cannot use {type(item).__name__} as an image; pass a path, bytes, a PIL image or an array")


def _decoded(source, name: str):
    """Open (header only), check the declared size, then decode to RGB."""
    with open_image(source, name) as img:
        try:
            img.load()
            return img.convert("RGB")
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"{name} is not a readable image ({exc})") from None


def open_image(source, name: str):
    """PIL's lazy open (the header only), refused before decoding when the declared size is out of range.

    PIL's decompression-bomb warning is raised as an error here, so an image over
    ``PIL.Image.MAX_IMAGE_PIXELS`` is refused, never decoded with a warning.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(source)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise InputError(_too_many_pixels(name, str(exc))) from None
    except UnidentifiedImageError:
        raise InputError(f"{name} is not an image in a format PIL reads ({', '.join(sorted(IMAGE_SUFFIXES))}, "
                         "...)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name} is not a readable image ({exc})") from None
    try:
        check_image_size(img.size, name)
    except InputError:
        img.close()
        raise
    return img


def check_image_size(size, name: str) -> None:
    """Refuse a width x height that is empty, over PIL's pixel limit or absurdly elongated."""
    from PIL import Image

    width, height = (int(x) for x in size)
    if width < 1 or height < 1:
        raise InputError(f"{name} is empty ({width}x{height} pixels); pass an image at least 1x1")
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise InputError(_too_many_pixels(name, f"{width}x{height} = {width * height} pixels"))
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise InputError(f"{name} is {width}x{height} pixels: one side is over {MAX_ASPECT_RATIO} times the other, "
                         "and resizing it for the model would need far too much memory. Crop it into parts first")


def _too_many_pixels(name: str, detail: str) -> str:
    """The message for an image over PIL's pixel limit; ``detail`` holds its size or PIL's warning."""
    from PIL import Image

    found = re.search(r"(\d+) pixels", detail)
    size = f"{int(found.group(1)):,} pixels" if found else detail
    return (f"{name} declares {size}, over the limit of {Image.MAX_IMAGE_PIXELS:,} (PIL.Image.MAX_IMAGE_PIXELS, "
            "against decompression bombs), so it was not decoded. Downscale it first, or raise "
            "PIL.Image.MAX_IMAGE_PIXELS in Python if you trust the file")


def _image_array(item):
    """An RGB image from an array: HxW, HxWxC or CxHxW; uint8 0-255, other ints 0-255, floats 0-1 or 0-255."""
    import numpy as np
    from PIL import Image

    arr = np.asarray(item)
    name = f"the image array of shape {arr.shape} and dtype {arr.dtype}"
    if arr.dtype.kind not in "uif":
        raise InputError(f"{name} does not hold pixel values; pass uint8 (0-255) or float (0-1 or 0-255) pixels")
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = arr.transpose(1, 2, 0)  # CHW -> HWC
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise InputError(f"{name} is not an image: pass HxW (grey), HxWxC or CxHxW with 1, 3 or 4 channels")
    check_image_size((arr.shape[1], arr.shape[0]), name)
    return Image.fromarray(_pixels_uint8(arr, name)).convert("RGB")


def _pixels_uint8(arr, name: str):
    """Pixels as uint8: floats in 0-1 are scaled by 255; values must be finite and within 0-255."""
    import numpy as np

    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN or infinite values; pass finite pixel values")
    low, high = arr.min(), arr.max()
    if low < 0 or high > 255:
        raise InputError(f"{name} has values from {low} to {high}; pass pixels in 0-255 (or floats in 0-1): "
                         "undo any normalisation, and scale 16-bit images to 0-255 first")
    if arr.dtype.kind == "f" and high <= 1.0:
        arr = arr * 255.0
    return arr.astype(np.uint8)


def load_audio(item, target_rate: int):
    """A mono float32 waveform at ``target_rate`` from a path, (array, rate) or {"array", "sampling_rate"}."""
    if isinstance(item, (str, Path)):
        name = f"audio file '{item}'"
        wave, rate = _audio_file(Path(item))
    elif isinstance(item, dict) and "array" in item:
        name = "the audio array given"
        wave, rate = item["array"], item.get("sampling_rate", item.get("rate"))
    elif isinstance(item, tuple) and len(item) == 2:
        name = "the audio array given"
        wave, rate = item
    else:
        raise InputError(
            f"cannot use {type(item).__name__} as audio; pass a wav/flac path, (array, sample_rate) "
            "or {'array': ..., 'sampling_rate': ...}"
        )
    rate = check_sample_rate(rate, name)
    return resample(mono_samples(wave, name), rate, target_rate)


def check_sample_rate(rate, name: str) -> int:
    """The sample rate as an int in MIN_SAMPLE_RATE..MAX_SAMPLE_RATE; else InputError naming the input."""
    if rate is None:
        raise InputError(f"{name} needs its sample rate: pass (array, sample_rate), e.g. (wave, 16000)")
    whole = isinstance(rate, numbers.Integral) or (isinstance(rate, numbers.Real) and math.isfinite(rate)
                                                   and float(rate).is_integer())
    if isinstance(rate, bool) or not whole:
        raise InputError(f"the sample rate of {name} must be a whole number of samples per second, got {rate!r}")
    if not MIN_SAMPLE_RATE <= int(rate) <= MAX_SAMPLE_RATE:
        raise InputError(f"the sample rate of {name} is {int(rate)} Hz; audio runs at {MIN_SAMPLE_RATE} to "
                         f"{MAX_SAMPLE_RATE} Hz (e.g. 16000 or 44100)")
    return int(rate)


def mono_samples(wave, name: str):
    """Float32 mono samples from 1-D or 2-D (frames x channels, or channels x frames) audio; checked first."""
    import numpy as np

    arr = np.asarray(wave)
    what = f"{name} (shape {arr.shape}, dtype {arr.dtype})"
    if arr.dtype.kind not in "fiu" or (arr.dtype.kind in "iu" and arr.dtype.name not in PCM_SCALE):
        raise InputError(f"{what} does not hold audio samples; pass float samples in -1..1, or int8/int16/int32 PCM")
    if arr.ndim == 0 or arr.ndim > 2 or (arr.ndim == 2 and min(arr.shape) > MAX_CHANNELS):
        raise InputError(f"{what} is not a waveform; pass (samples,) mono or (samples, channels) / (channels, "
                         f"samples) with at most {MAX_CHANNELS} channels")
    if arr.size == 0:
        raise InputError(f"{what} is empty; pass at least one sample")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(f"{what} contains NaN or infinite samples; pass finite samples in -1..1")
    samples = arr.astype(np.float32)
    if arr.dtype.name in PCM_SCALE:
        samples /= PCM_SCALE[arr.dtype.name]
    if samples.ndim == 2:  # (frames, channels) from soundfile, or (channels, frames)
        samples = samples.mean(axis=1) if samples.shape[0] > samples.shape[1] else samples.mean(axis=0)
    return samples


def _audio_file(path: Path):
    """Samples and rate of an audio file; its header (rate, length) is checked before the samples are read."""
    if not path.is_file():
        raise InputError(f"audio file '{path}' does not exist")
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise InputError(
            f"audio file '{path}' has the unsupported format '{path.suffix or '(none)'}'; "
            f"use one of {', '.join(sorted(AUDIO_SUFFIXES))} (convert it to .wav or .flac first)"
        )
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise InputError(f"audio file '{path}' cannot be decoded ({exc})") from None
    check_sample_rate(info.samplerate, f"audio file '{path}'")
    if info.frames == 0:
        raise InputError(f"audio file '{path}' is empty (no samples); pass a recording")
    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as exc:
        raise InputError(f"audio file '{path}' cannot be decoded ({exc})") from None
    return wave, rate


def resample(wave, rate: int, target_rate: int):
    """Polyphase resampling (scipy) to ``target_rate``; a no-op when the rates match.

    The ratio is exact for every common rate; for odd ones (a prime rate such as 44101) it is the nearest
    fraction with a denominator up to 1000 (off by a few parts in 100,000), so that the filter stays small.
    """
    if rate == target_rate:
        return wave
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(int(target_rate), int(rate)).limit_denominator(1000)
    return resample_poly(wave, ratio.numerator, ratio.denominator).astype("float32")


def read_text_file(path: Path) -> str:
    """The text of a UTF-8 file (a leading byte-order mark dropped); else InputError naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"text file '{path}' cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig").strip()
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(f"text file '{path}' is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}, "
                         f"offset {exc.start}); save it as UTF-8 and try again") from None


_EXTENSION = re.compile(r"[^.]\.(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{1,5}$")
_KIND_WORDS = {"image": "image files", "image+text": "image files", "audio": "audio files", "text": "text"}


def undecodable(text: str) -> bool:
    """True when ``text`` holds lone surrogates: bytes that were not UTF-8 (``surrogateescape``)."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def printable(text: str) -> str:
    """``text`` safe to print: undecodable bytes as \\xNN, other unprintable characters escaped."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def check_text(text, what: str) -> str:
    """``text`` if it is a string of valid text; else an InputError naming ``what``."""
    if not isinstance(text, str):
        raise InputError(f"{what} must be text (a str), got {type(text).__name__}")
    if undecodable(text):
        raise InputError(f"{what} '{printable(text)}' is not valid UTF-8 text (undecodable bytes shown as "
                         "\\xNN); convert it to UTF-8")
    return text


def structured_text(value: dict) -> str:
    """A structured input (the object a task takes, such as question-answering's ``{"question", "context"}``) as
    the JSON text the task reads: how a JSONL line (``hub run --input``) and a server input hand it on."""
    import json

    return json.dumps(value, ensure_ascii=False)


def looks_like_path(arg: str) -> bool:
    """No whitespace, and a path separator or a NAME.EXT ending (1-5 letters/digits, at least one letter)."""
    if not arg or any(ch.isspace() for ch in arg):
        return False
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return any(sep in arg for sep in separators) or bool(_EXTENSION.search(arg))


def cli_input(arg: str, kind: str, model: str | None = None, task: str | None = None):
    """Interpret one command-line argument for a task whose inputs are ``kind`` (text/image/audio).

    For text tasks an argument that looks like a path (see ``looks_like_path``) must be a file, whose
    UTF-8 text is the input; anything else is the text itself. For media tasks it must be a file.
    """
    path = Path(arg).expanduser()
    is_dir, is_file = _kind_on_disk(path)
    takes = f"{_model_name(model, task)} takes {_KIND_WORDS.get(kind, kind)}"
    if is_dir and (kind != "text" or looks_like_path(arg)):
        raise InputError(f"input '{printable(arg)}' is a directory; {takes}: pass files, not a directory")
    if kind == "text":
        if is_file and looks_like_path(arg):
            return check_text(_text_file(path, _model_name(model, task)), f"text file '{printable(arg)}'")
        if looks_like_path(arg):
            raise InputError(f"input file '{printable(arg)}' does not exist. An argument with no spaces that "
                             "contains '/' or ends in .EXT is read as a file; pass text like this on stdin "
                             "('-') instead")
        return check_text(arg, "input")
    if is_file:
        return str(path)
    if looks_like_path(arg) or undecodable(arg):
        raise InputError(f"input file '{printable(arg)}' does not exist ({takes})")
    raise InputError(f"'{printable(arg)}' is not a file, and {takes}, not text. For text, use a text model "
                     f"(hub list --modality nlp)")


def _kind_on_disk(path: Path) -> tuple[bool, bool]:
    """(is a directory, is a file); neither for an argument no file system takes as a name (too long, NUL)."""
    try:
        return path.is_dir(), path.is_file()
    except (OSError, ValueError):
        return False, False


def _model_name(model: str | None, task: str | None) -> str:
    name = f"model '{model}'" if model else "this model"
    return f"{name} ({task})" if task else name


def _text_file(path: Path, model: str) -> str:
    """The text of a file given to a text model; media files are refused by name."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES | AUDIO_SUFFIXES:
        what = "an image" if suffix in IMAGE_SUFFIXES else "an audio"
        raise InputError(f"'{printable(str(path))}' is {what} file, but {model} takes text")
    return read_text_file(path)
