"""hub.inputs: out-of-range images, arrays and audio are refused by a size or validity check before anything
is decoded or converted; undecodable text files are named. Each error is one line naming the input."""
from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from hub import inputs
from hub.errors import InputError
from hub.inputs import load_audio, load_image, read_text_file

RATE = 16000


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (its pixel data is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + chunk(b"IEND", b""))


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any image gets decoded: refusals must come from the header alone."""
    def refuse(self):
        raise AssertionError("an image was decoded before its declared size was checked")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# -- images ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("width, height, words", [
    (10_000, 10_000, "100,000,000 pixels"),       # over PIL's limit: PIL only warns here
    (20_000, 20_000, "400,000,000 pixels"),       # over twice the limit: PIL raises its own error
    (65_535, 65_535, "pixels, over the limit"),
    (1, 50_000, "one side is over 100 times the other"),
    (30_000, 2, "one side is over 100 times the other"),
])
@pytest.mark.parametrize("form", ["path", "bytes"])
def test_absurd_declared_sizes_are_refused_before_decoding(tmp_path, no_decoding, width, height, words, form):
    data = png_header(width, height)
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning must not show: it is an error here
        with pytest.raises(InputError) as err:
            load_image(str(path) if form == "path" else data)
    message = one_line(err)
    assert words in message and ("bomb.png" in message if form == "path" else "bytes" in message)


def test_the_pixel_limit_is_pils_own(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 63)
    with pytest.raises(InputError, match="4,096 pixels, over the limit of 4,032"):
        load_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64)
    assert load_image(path).size == (64, 64)


@pytest.mark.parametrize("data, words", [
    (b"", "not an image"),
    (b"GIF89a" + b"\0" * 4, "not an image"),
    (png_header(0, 10), "not an image"),
    (png_header(16, 16)[:40], "not an image"),
    (b"plain text, not pixels", "not an image"),
])
def test_unreadable_image_bytes_are_named(data, words):
    with pytest.raises(InputError) as err:
        load_image(data)
    assert words in one_line(err)


def test_truncated_image_file_is_named(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(InputError, match="cut.jpg"):
        load_image(path)


@pytest.mark.parametrize("size", [(0, 0), (0, 5), (5, 0)])
def test_empty_pil_images_are_refused(size):
    with pytest.raises(InputError, match="is empty"):
        load_image(Image.new("RGB", size))


BAD_ARRAYS = {
    "0x0": (np.zeros((0, 0), np.uint8), "is empty"),
    "0 rows": (np.zeros((0, 8, 3), np.uint8), "is empty"),
    "0 columns": (np.zeros((8, 0)), "is empty"),
    "empty 1-D": (np.zeros(0), "not an image"),
    "1-D": (np.zeros(16), "not an image"),
    "scalar": (np.float32(0.5), "not an image"),
    "4-D batch": (np.zeros((2, 8, 8, 3)), "not an image"),
    "2 channels": (np.zeros((8, 8, 2)), "not an image"),
    "7 channels": (np.zeros((8, 8, 7)), "not an image"),
    "NaN": (np.full((8, 8), np.nan), "NaN or infinite"),
    "one NaN": (np.where(np.eye(8, dtype=bool), np.nan, 0.5), "NaN or infinite"),
    "+inf": (np.full((8, 8, 3), np.inf, np.float32), "NaN or infinite"),
    "-inf": (np.full((8, 8, 3), -np.inf), "NaN or infinite"),
    "negative floats": (np.linspace(-1, 1, 64).reshape(8, 8), "values from -1.0"),
    "over 255": (np.full((8, 8), 256.0), "values from 256.0"),
    "16-bit": (np.full((8, 8), 40_000, np.uint16), "16-bit"),
    "negative ints": (np.full((8, 8), -3, np.int16), "values from -3"),
    "bool": (np.ones((8, 8), bool), "does not hold pixel values"),
    "complex": (np.ones((8, 8), complex), "does not hold pixel values"),
    "strings": (np.full((8, 8), "a"), "does not hold pixel values"),
    "objects": (np.array([[None, 1], [2, 3]], dtype=object), "does not hold pixel values"),
    "datetime": (np.zeros((8, 8), "datetime64[s]"), "does not hold pixel values"),
    "a thin line": (np.zeros((1, 500), np.uint8), "100 times"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARRAYS))
def test_bad_image_arrays_are_refused(case):
    array, words = BAD_ARRAYS[case]
    with pytest.raises(InputError) as err:
        load_image(array)
    message = one_line(err)
    assert words in message and "image array" in message and str(array.dtype) in message


def test_oversized_array_is_refused_before_conversion(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    monkeypatch.setattr(inputs, "_pixels_uint8", lambda *a: pytest.fail("converted before the size check"))
    with pytest.raises(InputError, match="over the limit of 100"):
        load_image(np.zeros((11, 10), np.float32))


@pytest.mark.parametrize("array, expected", [
    (np.full((4, 6, 3), 200, np.uint8), 200),
    (np.full((4, 6), 0.5, np.float32), 127),          # floats in 0-1 are scaled by 255
    (np.full((4, 6, 3), 100.0), 100),                 # floats in 0-255 are taken as they are
    (np.full((3, 4, 6), 9, np.int64), 9),             # CxHxW
    (np.full((1, 4, 6), 1.0), 255),
    (np.full((4, 6, 1), 30, np.int32), 30),
    (np.full((4, 6, 4), 77, np.uint8), 77),           # RGBA
])
def test_good_image_arrays_keep_their_pixels(array, expected):
    image = load_image(array)
    assert image.size == (6, 4) and image.mode == "RGB"
    assert set(np.asarray(image).ravel().tolist()) == {expected}


# -- audio ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate, words", [
    (0, "is 0 Hz"), (-16000, "is -16000 Hz"), (1, "is 1 Hz"), (999, "is 999 Hz"),
    (1_000_001, "is 1000001 Hz"), (10 ** 12, "Hz; audio runs at"),
    (16000.5, "whole number"), (float("nan"), "whole number"), (float("inf"), "whole number"),
    ("16000", "whole number"), (True, "whole number"), (None, "needs its sample rate"), ([16000], "whole number"),
])
@pytest.mark.parametrize("form", ["tuple", "dict"])
def test_bad_sample_rates_are_refused(rate, words, form):
    wave = np.zeros(RATE, np.float32)
    item = (wave, rate) if form == "tuple" else {"array": wave, "sampling_rate": rate}
    with pytest.raises(InputError) as err:
        load_audio(item, RATE)
    message = one_line(err)
    assert words in message and "audio array" in message


@pytest.mark.parametrize("rate", [1000, 8000, 16000.0, np.int64(44100), np.float32(22050), 1_000_000])
def test_sample_rates_in_range_are_taken(rate):
    wave = load_audio((np.zeros(int(rate) // 10, np.float32), rate), RATE)
    assert wave.dtype == np.float32 and abs(wave.size - RATE // 10) <= 1


BAD_WAVES = {
    "empty": (np.zeros(0, np.float32), "is empty"),
    "empty stereo": (np.zeros((0, 2), np.float32), "is empty"),
    "scalar": (np.float32(0.1), "not a waveform"),
    "3-D": (np.zeros((2, 100, 2), np.float32), "not a waveform"),
    "4-D": (np.zeros((1, 1, 100, 1), np.float32), "not a waveform"),
    "square": (np.zeros((100, 100), np.float32), "not a waveform"),
    "NaN": (np.full(100, np.nan, np.float32), "NaN or infinite"),
    "one inf": (np.concatenate([np.zeros(99), [np.inf]]), "NaN or infinite"),
    "-inf stereo": (np.full((100, 2), -np.inf), "NaN or infinite"),
    "complex": (np.zeros(100, complex), "does not hold audio samples"),
    "bool": (np.zeros(100, bool), "does not hold audio samples"),
    "strings": (np.array(["a", "b"]), "does not hold audio samples"),
    "objects": (np.array([0.1, None], dtype=object), "does not hold audio samples"),
    "int64": (np.zeros(100, np.int64), "does not hold audio samples"),
    "uint16": (np.zeros(100, np.uint16), "does not hold audio samples"),
}


@pytest.mark.parametrize("case", sorted(BAD_WAVES))
def test_bad_waveforms_are_refused(case):
    wave, words = BAD_WAVES[case]
    with pytest.raises(InputError) as err:
        load_audio((wave, RATE), RATE)
    message = one_line(err)
    assert words in message and "audio array" in message


def test_pcm_integers_are_scaled_and_channels_averaged():
    pcm = np.array([16384, -16384, 0, 32767], np.int16)
    assert np.allclose(load_audio((pcm, RATE), RATE), [0.5, -0.5, 0.0, 32767 / 32768])
    stereo = np.stack([np.full(500, 0.2), np.full(500, 0.4)], axis=1)
    for layout in (stereo, stereo.T):
        assert np.allclose(load_audio((layout, RATE), RATE), 0.3)


def test_odd_sample_rates_resample_with_a_small_filter():
    wave = np.sin(np.linspace(0, 100, 999_983)).astype(np.float32)
    out = load_audio((wave, 999_983), RATE)
    assert abs(out.size - RATE) <= 2


@pytest.fixture
def wav(tmp_path):
    import soundfile as sf

    def write(name, samples, rate=RATE, subtype=None):
        path = tmp_path / name
        sf.write(str(path), samples, rate, subtype=subtype)
        return path

    return write


@pytest.mark.parametrize("case", ["empty", "rate too low", "NaN samples", "garbage", "truncated header"])
def test_bad_audio_files_are_refused_naming_the_file(wav, tmp_path, case):
    if case == "empty":
        path = wav("empty.wav", np.zeros(0, np.float32))
    elif case == "rate too low":
        path = wav("slow.wav", np.zeros(100, np.float32), rate=100)
    elif case == "NaN samples":
        path = wav("nan.wav", np.full(1000, np.nan, np.float32), subtype="FLOAT")
    else:
        path = wav("cut.wav", np.zeros(1000, np.float32))
        data = path.read_bytes()
        path.write_bytes(b"RIFF garbage" * 10 if case == "garbage" else data[:20])
    with pytest.raises(InputError) as err:
        load_audio(str(path), RATE)
    assert path.name in one_line(err)


# -- text files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [
    "café crème".encode("latin-1"),
    "naïve\n".encode("utf-16"),
    b"ok so far\n\xff\xfe broken",
    b"\xed\xa0\x80 an encoded lone surrogate",
    b"\xc3",
])
def test_non_utf8_text_files_are_named(tmp_path, data):
    path = tmp_path / "notes.txt"
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        read_text_file(path)
    message = one_line(err)
    assert "notes.txt" in message and "UTF-8" in message


def test_utf8_text_files_are_read_without_their_byte_order_mark(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes("\ufeffcafé crème\n".encode("utf-8"))
    assert read_text_file(path) == "café crème"


def test_non_utf8_text_file_through_the_cli(tmp_path, cli_runner):
    from hub.cli import cli

    path = tmp_path / "latin.txt"
    path.write_bytes("déjà vu".encode("latin-1"))
    result = cli_runner.invoke(cli, ["run", "all-minilm-l6-v2", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "latin.txt" in lines[0] and "UTF-8" in lines[0]


@pytest.mark.parametrize("arg,kind,expect", [
    ("word " * 120, "text", "text"),                       # longer than a file name may be: still text
    ("a" * 5000, "text", "text"),
    ("x" * 300 + ".png", "image", "does not exist"),      # a too-long path for an image model: not found
    ("a\x00b", "text", "text"),                            # a NUL no file system takes in a name
])
def test_arguments_no_file_system_takes_as_names_are_judged_without_crashing(arg, kind, expect):
    from hub.errors import InputError
    from hub.inputs import cli_input

    if expect == "text":
        assert cli_input(arg, kind) == arg
    else:
        with pytest.raises(InputError, match=expect):
            cli_input(arg, kind)
