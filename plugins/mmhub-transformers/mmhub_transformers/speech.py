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

from hub.errors import InputError
from hub.tasks.results import Classification, LabelScore, Transcription, TranscriptionChunk
from mmhub_transformers.detect import SPEECH_SEQ2SEQ_TYPES
from mmhub_transformers.loading import TransformersPipeline, load_auto, load_tokenizer, read_json, weights_dir

WINDOW_BATCH = 16  # windows per model call, so that hours of audio do not go through at once


def load_feature_extractor(directory, trust_remote_code: bool = False):
    from transformers import AutoFeatureExtractor

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

    def setting(self, name: str, kwargs: dict, default=None):
        """A per-call keyword, else a load option, else the catalogue's preprocess entry, else ``default``."""
        for source in (kwargs, self.options, self.spec.preprocess):
            if source.get(name) is not None:
                return source[name]
        return default

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
            what = "is empty" if wave.size == 0 else f"is {1000 * wave.size / self.sampling_rate:.1f} ms long"
            raise InputError(f"the audio {name} {what}; {self.spec.id} needs at least "
                             f"{1000 * shortest / self.sampling_rate:.1f} ms ({shortest} samples)")
        return wave

    def min_samples(self) -> int:
        """The fewest samples the model takes: the receptive field of a conv front end (wav2vec2: 400)."""
        config = self.model.config
        kernels, strides = getattr(config, "conv_kernel", None), getattr(config, "conv_stride", None)
        if not kernels or not strides:
            return 1
        n = 1
        for kernel, stride in reversed(list(zip(kernels, strides))):
            n = (n - 1) * stride + kernel
        return n

    def length(self, item) -> int:
        return int(item.shape[0])

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

    def postprocess(self, outputs, items, **kwargs):
        k = int(self.setting("top_k", kwargs, 5))
        names = self.model.config.id2label or {}
        results = []
        for row in outputs.cpu():
            scores, indices = row.topk(min(max(k, 1), row.shape[-1]))
            results.append(Classification([LabelScore(str(names.get(i, names.get(str(i), f"LABEL_{i}"))), s, i)
                                           for s, i in zip(scores.tolist(), indices.tolist())]))
        return results


class SpeechRecognitionPipeline(AudioPipeline):
    """Speech to text. ``from_spec`` returns the seq2seq or CTC variant that the model's config calls for."""

    task = "speech-recognition"

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

    def windows(self, n, **kwargs):
        size = int(getattr(self.feature_extractor, "n_samples", 0)) or int(
            float(self.setting("chunk_s", kwargs, 30)) * self.sampling_rate)
        return [(s, min(s + size, n), s, min(s + size, n)) for s in range(0, n, size)]

    def preprocess(self, items, **kwargs):
        waves, _ = self.split(items, **kwargs)
        # Whisper's encoder takes exactly its window (30 s) of features: pad every window to it
        padding = "max_length" if getattr(self.feature_extractor, "n_samples", None) else "longest"
        return {"windows": [self.features(waves[i:i + WINDOW_BATCH], padding=padding)
                            for i in range(0, len(waves), WINDOW_BATCH)]}

    def generate_kwargs(self, kwargs: dict) -> dict:
        """Greedy decoding settings plus a checked ``language`` and ``task``."""
        out = {"do_sample": False, "num_beams": 1}
        limit = self.setting("max_new_tokens", kwargs)
        if limit is not None:
            out["max_new_tokens"] = int(limit)
        language, task = self.setting("language", kwargs), self.setting("task", kwargs)
        config = self.model.generation_config
        if language is not None:
            out["language"] = self._check_language(str(language), config)
        if task is not None:
            known = getattr(config, "task_to_id", None) or {}
            if str(task) not in known:
                raise InputError(f"{self.spec.id} does not take task='{task}'"
                                 + (f"; use one of {', '.join(sorted(known))}" if known else " (no task tokens)"))
            out["task"] = str(task)
        return out

    def _check_language(self, language: str, config) -> str:
        known = getattr(config, "lang_to_id", None) or {}
        if not known:
            raise InputError(f"{self.spec.id} is not multilingual and takes no language; leave 'language' out")
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

        key = language.strip().lower().strip("<|>")
        code = TO_LANGUAGE_CODE.get(key, key)
        if f"<|{code}|>" not in known:
            names = ", ".join(sorted(t.strip("<|>") for t in known)[:20])
            raise InputError(f"{self.spec.id} does not know the language '{language}'; it knows: {names}")
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

    def windows(self, n, **kwargs):
        chunk_s = float(self.setting("chunk_s", kwargs, 20.0))
        size = int(chunk_s * self.sampling_rate)
        stride = int(float(self.setting("stride_s", kwargs, chunk_s / 6)) * self.sampling_rate)
        if size <= 0 or not 0 <= 2 * stride < size:
            raise InputError(f"chunk_s={chunk_s} with stride_s={stride / self.sampling_rate} leaves no audio per "
                             "window; use chunk_s > 2 * stride_s")
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
        for name in ("language", "task"):
            if self.setting(name, kwargs) is not None:
                raise InputError(f"{self.spec.id} is a CTC model and takes no '{name}'; leave it out")
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
