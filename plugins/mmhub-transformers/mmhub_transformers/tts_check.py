"""Intelligibility of the hub's text-to-speech: its own speech recognition transcribes what it synthesised.

    python -m mmhub_transformers.tts_check --tts mms-tts-eng --asr whisper-tiny ["a sentence" ...]

prints, for each sentence, the transcript and its word error rate (WER, after lower-casing and dropping
punctuation), and the mean. Both models go through ``hub.load`` (catalogue ids or local directories), so
the real weights must be in the Hugging Face cache or on disk. The speech goes from one pipeline to the
other as (samples, rate), resampled by the recogniser's own audio reading.
"""
from __future__ import annotations

import re
import sys

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Please call Stella and ask her to bring these things.",
             "It is a sunny day in the city today.", "Open the window and let the fresh air in."]


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped (apostrophes kept)."""
    return re.findall(r"[\w']+", text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word edits (substitutions, insertions, deletions) over the reference's word count."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def round_trip(tts_model: str, asr_model: str, texts=SENTENCES, device: str | None = None, **tts_options) -> list:
    """For each text: the speech's duration, the recogniser's transcript and its word error rate."""
    import hub

    speak = hub.load(tts_model, task="text-to-speech", device=device)
    listen = hub.load(asr_model, task="speech-recognition", device=device)
    rows = []
    for text, speech in zip(texts, speak(list(texts), **tts_options)):
        heard = listen((speech.audio, speech.sampling_rate)).text
        rows.append({"text": text, "transcript": heard, "wer": word_error_rate(text, heard),
                     "duration_s": round(speech.duration_s, 3)})
    return rows


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mmhub_transformers.tts_check", description=__doc__.split("\n")[0])
    parser.add_argument("texts", nargs="*", help="sentences to speak (default: four English test sentences)")
    parser.add_argument("--tts", default="mms-tts-eng", help="text-to-speech model (id or directory)")
    parser.add_argument("--asr", default="whisper-tiny", help="speech recognition model (id or directory)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    from hub.errors import HubError

    try:
        rows = round_trip(args.tts, args.asr, args.texts or SENTENCES, args.device)
    except HubError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    for row in rows:
        print(f"WER {row['wer']:.2f}  {row['duration_s']:.2f} s  {row['text']!r} -> {row['transcript']!r}")
    print(f"mean WER {sum(r['wer'] for r in rows) / len(rows):.3f} ({args.tts} -> {args.asr})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
