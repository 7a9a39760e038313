"""Reading inputs: images (path, bytes, PIL, array), audio (path, array + rate), text.

Every error names the input and what would work instead. numpy, PIL and soundfile are
imported only when an input of that kind is read.
"""
from __future__ import annotations

import io
from pathlib import Path

from hub.errors import InputError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_image(item):
    """An RGB PIL image from a path, bytes, PIL image or HxWxC / HxW uint8/float array."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, Image.Image):
        return item.convert("RGB")
    if isinstance(item, (bytes, bytearray)):
        try:
            with Image.open(io.BytesIO(item)) as img:
                return img.convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"the image bytes given cannot be decoded ({exc})") from None
    if isinstance(item, (str, Path)):
        return _image_file(Path(item))
    if hasattr(item, "__array__"):
        return _image_array(item)
    raise InputError(f"cannot use {type(item).__name__} as an image; pass a path, bytes, a PIL image or an array")


def _image_file(path: Path):
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError(f"image file '{path}' does not exist")
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"image file '{path}' is not a readable image ({exc})") from None


def _image_array(item):
    import numpy as np
    from PIL import Image

    arr = np.asarray(item)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3, 4):
        arr = arr.transpose(1, 2, 0)  # CHW -> HWC
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise InputError(f"an image array must be HxW or HxWxC, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        scale = 255.0 if arr.max() <= 1.0 else 1.0
        arr = np.clip(arr * scale, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).convert("RGB")


def load_audio(item, target_rate: int):
    """A mono float32 waveform at ``target_rate`` from a path, (array, rate) or {"array", "sampling_rate"}."""
    import numpy as np

    if isinstance(item, (str, Path)):
        wave, rate = _audio_file(Path(item))
    elif isinstance(item, dict) and "array" in item:
        wave, rate = np.asarray(item["array"]), int(item.get("sampling_rate") or item.get("rate") or 0)
    elif isinstance(item, tuple) and len(item) == 2:
        wave, rate = np.asarray(item[0]), int(item[1])
    else:
        raise InputError(
            f"cannot use {type(item).__name__} as audio; pass a wav/flac path, (array, sample_rate) "
            "or {'array': ..., 'sampling_rate': ...}"
        )
    if not rate:
        raise InputError("audio given as an array needs its sample rate: pass (array, sample_rate)")
    wave = wave.astype(np.float32)
    if wave.ndim == 2:  # (frames, channels) from soundfile, or (channels, frames)
        wave = wave.mean(axis=1) if wave.shape[0] > wave.shape[1] else wave.mean(axis=0)
    return resample(wave, rate, target_rate)


def _audio_file(path: Path):
    if not path.is_file():
        raise InputError(f"audio file '{path}' does not exist")
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise InputError(
            f"audio file '{path}' has the unsupported format '{path.suffix or '(none)'}'; "
            f"use one of {', '.join(sorted(AUDIO_SUFFIXES))} (convert with e.g. 'sox in.X out.wav')"
        )
    import soundfile as sf

    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as exc:
        raise InputError(f"audio file '{path}' cannot be decoded ({exc})") from None
    return wave, rate


def resample(wave, rate: int, target_rate: int):
    """Polyphase resampling (scipy) to ``target_rate``; a no-op when the rates match."""
    if rate == target_rate:
        return wave
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target_rate))
    return resample_poly(wave, target_rate // g, rate // g).astype("float32")


def read_text_file(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise InputError(f"text file '{path}' is not UTF-8 text") from None


def cli_input(arg: str, kind: str):
    """Interpret one CLI argument for a task whose inputs are ``kind`` (text/image/audio)."""
    path = Path(arg).expanduser()
    if kind == "text":
        if path.suffix == ".txt" and path.is_file():
            return read_text_file(path)
        return arg
    if kind in ("image", "image+text"):
        if not path.is_file():
            raise InputError(f"input file '{arg}' does not exist (this model takes image files)")
        return str(path)
    if kind == "audio":
        if not path.is_file():
            raise InputError(f"input file '{arg}' does not exist (this model takes audio files)")
        return str(path)
    return arg
