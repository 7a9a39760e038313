"""Speech pipelines of the transformers plugin: speech recognition and audio classification.

Speech recognition serves two families, chosen from the model's config.json:

- sequence-to-sequence (Whisper; ``AutoModelForSpeechSeq2Seq``): greedy ``generate`` over fixed,
  non-overlapping windows of the feature extractor's length (30 s for Whisper); window texts are joined.
- CTC (wav2vec2, HuBERT, ...; ``AutoModelForCTC``): windows of ``chunk_s`` seconds (default 20) that
  overlap by ``stride_s`` (default ``chunk_s / 6``) on each side; the overlapping logits are dropped,
  the rest concatenated and argmax-decoded once, so words across window edges are not split.

Every input is read by :func:`hub.inputs.load_audio` and resampled to the feature extractor's rate.
"""
from __future__ import annotations

from hub.errors import InputError, OptionError
from hub.options import MAX_NEW_TOKENS, TOP_K, Option
from hub.tasks.results import Classification, LabelScore, Transcription, TranscriptionChunk
from mmhub_transformers.bounds import (decoder_positions, default_new_tokens, first_int, generation_bytes,
                                       new_token_limits)
from mmhub_transformers.detect import SPEECH_SEQ2SEQ_TYPES
from mmhub_transformers.loading import (TransformersPipeline, load_auto, load_tokenizer, read_json,
                                        translated_errors, weights_dir)

WINDOW_BATCH = 16  # windows per model call, so that hours of audio do not go through at once
START_TOKENS = 4  # Whisper's decoder starts from up to 4 tokens: start, language, task, no-timestamps
MIN_FRAME_S = 0.025  # the analysis frame of spectrogram front ends (Whisper, AST): shorter audio is no input

MAX_CHUNK_S = 600.0  # one window's length in seconds: the model runs a whole window at once (attention is quadratic)
CHUNK_S = Option("chunk_s", float, 20.0, "window length in seconds for long audio", minimum=0, exclusive_minimum=True,
                 maximum=MAX_CHUNK_S)
STRIDE_S = Option("stride_s", float, None, "seconds of overlap dropped on each side of a window (default: "
                  "chunk_s / 6)", minimum=0)
LANGUAGE = Option("language", str, None, "the spoken language, e.g. en, de or german (default: detected)")
SPEECH_TASK = Option("task", str, None, "transcribe, or translate into English (multilingual models)",
                     choices=("transcribe", "translate"))
SPEECH_MAX_NEW_TOKENS = MAX_NEW_TOKENS.but(default=None, help="the most new tokens to generate per window "
                                           "(default: the model's generation config)")
SEQ2SEQ_CHUNK_S = CHUNK_S.but(default=30.0, help="window length in seconds, for models without a fixed window "
                              "(Whisper's is 30 s)")


def load_feature_extractor(directory, trust_remote_code: bool = False):
    from transformers import AutoFeatureExtractor

    with translated_errors(directory, "feature extractor"):
        return AutoFeatureExtractor.from_pretrained(str(directory), trust_remote_code=trust_remote_code)


def is_seq2seq(config: dict) -> bool:
    """Whether a speech model's config.json describes an encoder-decoder (else a CTC model)."""
    archs = config.get("architectures") or []
    if any(a.endswith("ForCTC") for a in archs):
        return False
    return config.get("model_type") in SPEECH_SEQ2SEQ_TYPES or bool(config.get("is_encoder_decoder"))


def is_audio_pair(item) -> bool:
    """Whether ``item`` is one ``(array, sample_rate)`` input."""
    import numbers

    return (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], numbers.Integral)
            and not isinstance(item[0], (str, bytes)) and hasattr(item[0], "__len__"))


class AudioPipeline(TransformersPipeline):
    """Base of the audio pipelines: a feature extractor (and maybe a tokenizer); inputs are audio."""

    needs_tokenizer = True

    def __init__(self, spec, model, device_manager, feature_extractor=None, **kwargs):
        super().__init__(spec, model, device_manager, **kwargs)
        self.feature_extractor = feature_extractor
        self.sampling_rate = int(getattr(feature_extractor, "sampling_rate", 16000))

    @classmethod
    def from_spec(cls, spec, device_manager, trust_remote_code: bool = False, **options):
        directory = weights_dir(spec)
        return cls.build(spec, device_manager, directory, trust_remote_code, **options)

    @classmethod
    def build(cls, spec, device_manager, directory, trust_remote_code: bool = False, **options):
        """Feature extractor, tokenizer (when the task decodes text) and model from ``directory``."""
        fe = load_feature_extractor(directory, trust_remote_code)
        tokenizer = load_tokenizer(directory, trust_remote_code) if cls.needs_tokenizer else None
        model = device_manager.place(load_auto(cls.auto_class, directory, trust_remote_code))
        return cls(spec, model, device_manager, feature_extractor=fe, tokenizer=tokenizer,
                   directory=directory, **options)

    def __call__(self, inputs, batch_size=None, progress=False, **kwargs):
        if is_audio_pair(inputs):  # one (array, rate) tuple is one input, not a list of two
            return super().__call__([inputs], batch_size, progress, **kwargs)[0]
        return super().__call__(inputs, batch_size, progress, **kwargs)

    def prepare(self, item):
        from hub.inputs import load_audio

        wave = load_audio(item, self.sampling_rate)
        shortest = self.min_samples()
        if wave.size < shortest:
            name = f"'{item}'" if isinstance(item, str) else "given"
            raise InputError(f"the audio {name} is {1000 * wave.size / self.sampling_rate:.1f} ms long ({wave.size} "
                             f"samples at {self.sampling_rate} Hz); {self.spec.id} needs at least "
                             f"{1000 * shortest / self.sampling_rate:.1f} ms ({shortest} samples): pass a longer "
                             "recording")
        return wave

    def min_samples(self) -> int:
        """The fewest samples the model takes: one analysis frame (25 ms, or the extractor's n_fft), and the
        receptive field of a conv front end (wav2vec2: 400)."""
        frame = max(round(MIN_FRAME_S * self.sampling_rate), int(getattr(self.feature_extractor, "n_fft", 0) or 0))
        config = self.model.config
        kernels, strides = getattr(config, "conv_kernel", None), getattr(config, "conv_stride", None)
        if not kernels or not strides:
            return frame
        n = 1
        for kernel, stride in reversed(list(zip(kernels, strides))):
            n = (n - 1) * stride + kernel
        return max(frame, n)

    def length(self, item) -> int:
        return int(item.shape[0])

    def run_batches(self, prepared: list, batch_size, progress: bool, **kwargs):
        """Batches as the base makes them; for a group-norm feature encoder (wav2vec2-base and kin), which
        normalises over a batch's zero padding, only clips of equal length share a batch, so a clip gives
        the same result alone or in any batch."""
        if getattr(self.model.config, "feat_extract_norm", None) != "group":
            return super().run_batches(prepared, batch_size, progress, **kwargs)
        same: dict[int, list[int]] = {}
        for i, wave in enumerate(prepared):
            same.setdefault(self.length(wave), []).append(i)
        out: list = [None] * len(prepared)
        for indices in same.values():
            results = super().run_batches([prepared[i] for i in indices], batch_size, False, **kwargs)
            for i, result in zip(indices, results):
                out[i] = result
        return out

    def features(self, waves: list, padding="longest", **kwargs):
        """Feature-extractor output for a list of waveforms, padded to the longest by default."""
        mask = getattr(self.feature_extractor, "return_attention_mask", False)
        return dict(self.feature_extractor(waves, sampling_rate=self.sampling_rate, padding=padding,
                                           return_tensors="pt", return_attention_mask=mask, **kwargs))


class AudioClassificationPipeline(AudioPipeline):
    """Labels with scores for a clip: softmax (sigmoid for multi-label models) over the model's classes."""

    task = "audio-classification"
    auto_class = "AutoModelForAudioClassification"
    needs_tokenizer = False
    call_options = (TOP_K,)

    def preprocess(self, items, **kwargs):
        fe = self.feature_extractor
        limit = getattr(fe, "max_length", None) or getattr(fe, "nb_max_frames", None)  # AST / Whisper
        hop = getattr(fe, "hop_length", None) or self.sampling_rate // 100
        if isinstance(limit, int) and any(len(w) > limit * hop for w in items):
            self.warn(f"{self.spec.id}: audio longer than {limit * hop / self.sampling_rate:.1f} s was truncated "
                      "by the model's feature extractor; split long recordings first")
        # Whisper's encoder takes exactly its window of features: pad to it (as in speech recognition)
        return self.features(items, padding="max_length" if getattr(fe, "n_samples", None) else "longest")

    def forward(self, batch, **kwargs):
        logits = self.model(**batch).logits.float()
        if getattr(self.model.config, "problem_type", None) == "multi_label_classification":
            return logits.sigmoid()
        return logits.softmax(dim=-1)

    def postprocess(self, outputs, items, top_k=TOP_K.default, **kwargs):
        names = self.model.config.id2label or {}
        results = []
        for row in outputs.cpu():
            scores, indices = row.topk(min(top_k, row.shape[-1]))
            results.append(Classification([LabelScore(str(names.get(i, names.get(str(i), f"LABEL_{i}"))), s, i)
                                           for s, i in zip(scores.tolist(), indices.tolist())]))
        return results


class SpeechRecognitionPipeline(AudioPipeline):
    """Speech to text. ``from_spec`` returns the seq2seq or CTC variant that the model's config calls for."""

    task = "speech-recognition"
    # the options of both variants, for 'hub info' (which reads no config); each variant declares its own
    call_options = (SPEECH_MAX_NEW_TOKENS.but(help=SPEECH_MAX_NEW_TOKENS.help + "; Whisper-style models only"),
                    LANGUAGE.but(help=LANGUAGE.help + "; Whisper-style models only"),
                    SPEECH_TASK.but(help=SPEECH_TASK.help + "; Whisper-style models only"),
                    CHUNK_S.but(help=CHUNK_S.help + " (CTC models; Whisper-style models use their own window)"),
                    STRIDE_S.but(help=STRIDE_S.help + "; CTC models only"))

    @classmethod
    def from_spec(cls, spec, device_manager, trust_remote_code: bool = False, **options):
        directory = weights_dir(spec)
        kind = Seq2SeqRecognitionPipeline if is_seq2seq(read_json(directory / "config.json")) else CTCRecognitionPipeline
        return kind.build(spec, device_manager, directory, trust_remote_code, **options)

    def windows(self, n: int, **kwargs) -> list[tuple[int, int, int, int]]:
        """Windows over ``n`` samples as (start, end, keep_start, keep_end) sample offsets."""
        raise NotImplementedError

    def split(self, items, **kwargs) -> tuple[list, list[tuple]]:
        """All windows of a batch, and (item index, window) for each, in order."""
        waves, where = [], []
        for i, wave in enumerate(items):
            for win in self.windows(len(wave), **kwargs):
                waves.append(wave[win[0]:win[1]])
                where.append((i, win))
        return waves, where

    def chunk(self, text: str, win) -> TranscriptionChunk:
        return TranscriptionChunk(text, round(win[2] / self.sampling_rate, 3), round(win[3] / self.sampling_rate, 3))


class Seq2SeqRecognitionPipeline(SpeechRecognitionPipeline):
    """Whisper-style models: greedy ``generate`` per window; ``language``/``task`` where the model has them."""

    auto_class = "AutoModelForSpeechSeq2Seq"
    call_options = (SPEECH_MAX_NEW_TOKENS, LANGUAGE, SPEECH_TASK, SEQ2SEQ_CHUNK_S)

    def limits(self) -> dict:
        return new_token_limits(decoder_positions(self), START_TOKENS)

    def estimate_bytes(self, batch: int, options: dict, input_tokens: int | None = None) -> int:
        source = first_int(self.model.config, ("max_source_positions",)) or 0
        new = default_new_tokens(self.model, options)
        return generation_bytes(self.model, WINDOW_BATCH, new + START_TOKENS, source)

    def check_options(self, options: dict) -> dict:
        config = self.model.generation_config
        if options["language"] is not None:
            options = {**options, "language": self._check_language(options["language"], config)}
        known = getattr(config, "task_to_id", None) or {}
        if options["task"] is not None and options["task"] not in known:
            raise OptionError(f"{self.spec.id} does not take task='{options['task']}'"
                             + (f"; use one of {', '.join(sorted(known))}" if known else " (no task tokens)"))
        return options

    def windows(self, n, chunk_s=SEQ2SEQ_CHUNK_S.default, **kwargs):
        size = int(getattr(self.feature_extractor, "n_samples", 0)) or int(chunk_s * self.sampling_rate)
        return [(s, min(s + size, n), s, min(s + size, n)) for s in range(0, n, size)]

    def preprocess(self, items, **kwargs):
        waves, _ = self.split(items, **kwargs)
        # Whisper's encoder takes exactly its window (30 s) of features: pad every window to it
        padding = "max_length" if getattr(self.feature_extractor, "n_samples", None) else "longest"
        return {"windows": [self.features(waves[i:i + WINDOW_BATCH], padding=padding)
                            for i in range(0, len(waves), WINDOW_BATCH)]}

    def generate_kwargs(self, kwargs: dict) -> dict:
        """Greedy decoding settings plus ``language`` and ``task`` (checked by ``check_options``)."""
        out = {"do_sample": False, "num_beams": 1}
        for name in ("max_new_tokens", "language", "task"):
            if kwargs.get(name) is not None:
                out[name] = kwargs[name]
        return out

    def _check_language(self, language: str, config) -> str:
        known = getattr(config, "lang_to_id", None) or {}
        if not known:
            raise OptionError(f"{self.spec.id} is not multilingual and takes no language; leave 'language' out")
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

        key = language.strip().lower().strip("<|>")
        code = TO_LANGUAGE_CODE.get(key, key)
        if f"<|{code}|>" not in known:
            names = ", ".join(sorted(t.strip("<|>") for t in known)[:20])
            raise OptionError(f"{self.spec.id} does not know the language '{language}'; it knows: {names}")
        return code

    def forward(self, batch, **kwargs):
        options = self.generate_kwargs(kwargs)
        tokens = []
        for inputs in batch["windows"]:
            out = self.model.generate(**inputs, **options)
            tokens.extend(out.sequences if hasattr(out, "sequences") else out)
        return tokens

    def postprocess(self, outputs, items, **kwargs):
        _, where = self.split(items, **kwargs)
        texts = self.tokenizer.batch_decode([t.cpu() for t in outputs], skip_special_tokens=True)
        return _join(items, where, [self.chunk(t.strip(), win) for t, (_, win) in zip(texts, where)])


class CTCRecognitionPipeline(SpeechRecognitionPipeline):
    """CTC models: overlapping windows, overlap logits dropped, one argmax decode of the rest."""

    auto_class = "AutoModelForCTC"
    call_options = (CHUNK_S, STRIDE_S)

    def options_owner(self) -> str:
        return f"{self.spec.id} (a CTC {self.task} model)"

    def check_options(self, options: dict) -> dict:
        size, stride = self.window_samples(options["chunk_s"], options["stride_s"])
        if size <= 0 or not 0 <= 2 * stride < size:
            raise OptionError(f"chunk_s={options['chunk_s']} with stride_s={stride / self.sampling_rate} leaves no "
                             "audio per window; use chunk_s > 2 * stride_s")
        return options

    def window_samples(self, chunk_s: float, stride_s: float | None) -> tuple[int, int]:
        """(window, stride) in samples; the stride defaults to a sixth of the window."""
        stride_s = chunk_s / 6 if stride_s is None else stride_s
        return int(chunk_s * self.sampling_rate), int(stride_s * self.sampling_rate)

    def windows(self, n, chunk_s=CHUNK_S.default, stride_s=None, **kwargs):
        size, stride = self.window_samples(chunk_s, stride_s)
        if n <= size:
            return [(0, n, 0, n)]
        step, out, start = size - 2 * stride, [], 0
        while True:
            end = min(start + size, n)
            out.append((start, end, start + stride if start else 0, end if end == n else end - stride))
            if end == n:
                return out
            start += step

    def preprocess(self, items, **kwargs):
        waves, _ = self.split(items, **kwargs)
        return {"windows": [self.features(waves[i:i + WINDOW_BATCH]) for i in range(0, len(waves), WINDOW_BATCH)]}

    def forward(self, batch, **kwargs):
        logits = []
        for inputs in batch["windows"]:
            logits.extend(self.model(**inputs).logits.float())
        return logits

    def postprocess(self, outputs, items, **kwargs):
        import torch

        _, where = self.split(items, **kwargs)
        per_item: dict[int, list] = {}
        chunks = []
        for logits, (i, win) in zip(outputs, where):
            ids = self.kept_frames(logits, win).argmax(dim=-1).cpu()
            per_item.setdefault(i, []).append(ids)
            chunks.append(self.chunk(self.tokenizer.decode(ids.tolist()).strip(), win))
        results = _join(items, where, chunks)
        for i, result in enumerate(results):
            result.text = self.tokenizer.decode(torch.cat(per_item[i]).tolist()).strip()
        return results

    def kept_frames(self, logits, win):
        """The logit frames of a window's kept region (the window's own padding and overlaps removed)."""
        start, end, keep_start, keep_end = win
        lengths = getattr(self.model, "_get_feat_extract_output_lengths", None)
        ratio = getattr(self.model.config, "inputs_to_logits_ratio", 320)
        valid = min(int(lengths(end - start)) if lengths else (end - start) // ratio, logits.shape[0])
        frames = logits[:valid]
        first = int(round((keep_start - start) * valid / (end - start)))
        last = int(round((keep_end - start) * valid / (end - start)))
        return frames[first:last]


def _join(items, where, chunks) -> list[Transcription]:
    """One Transcription per item: its window chunks, texts joined with spaces."""
    grouped: list[list] = [[] for _ in items]
    for (i, _), chunk in zip(where, chunks):
        grouped[i].append(chunk)
    return [Transcription(" ".join(c.text for c in group if c.text), group) for group in grouped]
