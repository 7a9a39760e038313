"""The result of text-to-speech: a waveform and its sample rate, and its WAV form for JSON and files.

In Python, :class:`Speech` holds the samples as a float32 numpy array (``audio``) and ``sampling_rate``.
Its ``to_dict`` (what ``hub run --json`` prints and ``hub serve`` returns) carries the audio as base64 of a
32-bit float WAV file, so ``from_dict`` gives back the very same samples. numpy is imported only when
a result is built, written or read; importing this module costs nothing.
"""
from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

from hub.tasks.results import Result

WAVE_FORMAT_IEEE_FLOAT = 3


@dataclass(eq=False)
class Speech(Result):
    """Synthesised speech: mono float32 samples in -1..1 (``audio``) at ``sampling_rate`` Hz, and the text spoken."""

    audio: object  # numpy.ndarray of float32, shape (samples,)
    sampling_rate: int
    text: str = ""

    @property
    def samples(self) -> int:
        return int(len(self.audio))

    @property
    def duration_s(self) -> float:
        return self.samples / self.sampling_rate if self.sampling_rate else 0.0

    def wav_bytes(self) -> bytes:
        """The audio as a 32-bit float mono WAV file."""
        return wav_bytes(self.audio, self.sampling_rate)

    def to_dict(self) -> dict:
        return {"text": self.text, "sampling_rate": int(self.sampling_rate), "samples": self.samples,
                "duration_s": round(self.duration_s, 4), "format": "wav",
                "audio": base64.b64encode(self.wav_bytes()).decode("ascii")}

    @classmethod
    def from_dict(cls, data: dict):
        """The result of ``to_dict``: the WAV in ``audio`` (base64) decoded back into float32 samples."""
        if not isinstance(data, dict):
            raise ValueError(f"Speech is read from a JSON object, got {type(data).__name__}")
        missing = [k for k in ("audio", "sampling_rate") if k not in data]
        if missing:
            raise ValueError(f"Speech needs the key(s) {', '.join(missing)}; got {', '.join(data) or 'none'}")
        try:
            raw = base64.b64decode(data["audio"], validate=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Speech 'audio' is not base64 ({exc})") from None
        samples, rate = read_wav(raw)
        return cls(samples, rate, str(data.get("text") or ""))

    def summary(self) -> str:
        return f"{self.duration_s:.2f} s of speech at {self.sampling_rate} Hz ({self.samples} samples)"

    def __eq__(self, other) -> bool:
        import numpy as np

        return (isinstance(other, Speech) and self.sampling_rate == other.sampling_rate and self.text == other.text
                and np.array_equal(np.asarray(self.audio), np.asarray(other.audio)))


def wav_bytes(samples, rate: int) -> bytes:
    """Mono float32 ``samples`` at ``rate`` Hz as a WAV file (IEEE float, with the 'fact' chunk)."""
    import numpy as np

    data = np.ascontiguousarray(np.asarray(samples, dtype="<f4").reshape(-1)).tobytes()
    n = len(data) // 4
    fmt = struct.pack("<HHIIHHH", WAVE_FORMAT_IEEE_FLOAT, 1, int(rate), int(rate) * 4, 4, 32, 0)
    chunks = (b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<II", 4, n)
              + b"data" + struct.pack("<I", len(data)) + data)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def read_wav(raw: bytes):
    """(float32 samples, rate) of a mono WAV file: 32-bit float or 16-bit PCM; ValueError otherwise."""
    import numpy as np

    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError("Speech 'audio' is not a WAV file (no RIFF/WAVE header)")
    fmt, data, pos = None, None, 12
    while pos + 8 <= len(raw):
        name, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        body = raw[pos + 8:pos + 8 + size]
        if name == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif name == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise ValueError("Speech 'audio' is a WAV file without its 'fmt ' or 'data' chunk")
    kind, channels, rate, _, _, bits = fmt
    if channels != 1 or (kind, bits) not in ((WAVE_FORMAT_IEEE_FLOAT, 32), (1, 16)):
        raise ValueError(f"Speech 'audio' must be mono 32-bit float or 16-bit PCM WAV; got {channels} channel(s), "
                         f"format {kind}, {bits} bits")
    if kind == 1:
        return (np.frombuffer(data[:len(data) // 2 * 2], dtype="<i2") / 32768.0).astype(np.float32), int(rate)
    return np.frombuffer(data[:len(data) // 4 * 4], dtype="<f4").astype(np.float32), int(rate)


def save_speech(result, input_name, source_input, out_dir) -> list:
    """``hub run --save-dir``: the speech as ``DIR/<input>.wav`` (a numbered suffix where the name is taken).

    ``<input>`` is the stem of a text file given as input, else the text itself made safe as a file name."""
    from pathlib import Path

    from hub.io import atomic_write_bytes

    target = free_wav_name(Path(out_dir), wav_stem(input_name, source_input))
    return [atomic_write_bytes(target, result.wav_bytes())]


def wav_stem(input_name, source_input, limit: int = 48) -> str:
    """A file-name stem for an input: a text file's stem, else the text's words joined with '-'."""
    import re
    from pathlib import Path

    name = str(input_name or "")
    if name and source_input is not None and name != source_input:  # the input was read from a file
        name = Path(name).stem
    words = re.findall(r"\w+", name)
    stem = "-".join(words)[:limit].strip("-_")
    return stem or "speech"


def free_wav_name(out_dir, stem: str):
    """``DIR/STEM.wav``, or ``STEM-2.wav``, ... when that name is taken: nothing in DIR is replaced."""
    path = out_dir / f"{stem}.wav"
    n = 2
    while path.exists():
        path = out_dir / f"{stem}-{n}.wav"
        n += 1
    return path
