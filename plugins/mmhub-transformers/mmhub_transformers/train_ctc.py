"""Fine-tuning CTC speech recognition (wav2vec2, HuBERT, WavLM ...: ``AutoModelForCTC``).

The weights directory holds the model, its feature extractor and its CTC tokenizer (a
``Wav2Vec2Processor`` layout: what ``save_pretrained`` of the three writes). The CTC blank is the
tokenizer's pad token. The checkpoint's ``lm_head`` is kept when it covers the tokenizer's
vocabulary (the tokenizer's added ``<s>``/``</s>`` need no output: transcripts never use them); a
smaller one (a pretrained encoder beside a new character vocabulary) is replaced by a new head.

Transcripts are put in the vocabulary's case (upper when its letters are all upper case, lower
when all lower), whitespace becomes the word delimiter (``|``), and characters the vocabulary
lacks stop the run with the row and the characters named. Loss: the model's own CTC loss
(``ctc_loss_reduction="mean"``, ``ctc_zero_infinity=True``). Predictions: greedy argmax over each
clip's own frames (padding dropped), decoded by the tokenizer (repeats merged, blanks removed),
as :class:`mmhub_transformers.speech.CTCRecognitionPipeline` decodes, so ``hub run OUT clip.wav``
gives what the validation metrics measured.

The convolutional feature encoder is frozen (``freeze_feature_encoder()``), the standard recipe
for a pretrained wav2vec2. A model trained from scratch needs it trainable (frozen random filters
learn slowly: a tiny random wav2vec2 on spoken words reached WER 0.63 frozen, 0.09 trainable):
set ``options: {freeze_feature_encoder: false}`` in the start directory's ``mmhub.yaml``. The
option is not carried to the output, whose encoder is then trained. Clips are never cut (the
transcript would no longer match): one over ``preprocess.max_seconds`` (default 30) is an error.
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import HubError, InputError
from mmhub_transformers.loading import load_auto, load_tokenizer, read_json
from mmhub_transformers.train_common import blocks, record_audio

DEFAULT_MAX_SECONDS = 30.0
TASK = "speech-recognition"


def trainable(spec, directory: Path, trust: bool):
    """The TrainAdapter of a CTC model directory."""
    from transformers import AutoFeatureExtractor

    from hub.train.adapter import TrainAdapter
    from mmhub_transformers.speech import is_seq2seq

    if is_seq2seq(read_json(directory / "config.json")):
        raise HubError(f"'{spec.id}' is a sequence-to-sequence speech model; speech-recognition fine-tuning "
                       "trains CTC models (wav2vec2, HuBERT, WavLM ...). Start from one of those")
    tokenizer = load_tokenizer(directory, trust)
    extractor = AutoFeatureExtractor.from_pretrained(str(directory), trust_remote_code=trust)
    model, new_head = load_model(directory, tokenizer, trust, spec.id)
    options = spec.options or {}
    if options.get("freeze_feature_encoder", True) and hasattr(model, "freeze_feature_encoder"):
        model.freeze_feature_encoder()
    rate = int(getattr(extractor, "sampling_rate", 16000))
    limit = int(float((spec.preprocess or {}).get("max_seconds", DEFAULT_MAX_SECONDS)) * rate)
    encode = transcript_encoder(tokenizer, spec.id)

    def load_example(record, train: bool):
        return _load_wave(record, rate, limit), encode(record.text or "", record.where)

    def save(module, out_dir) -> None:
        """save_pretrained of model, extractor and tokenizer, all appearing at once (hub.io.atomic_directory)."""
        from hub.io import atomic_directory

        with atomic_directory(out_dir, carry_over=True) as stage:
            out = str(stage)
            getattr(module, "module", module).save_pretrained(out)  # DistributedDataParallel
            extractor.save_pretrained(out)
            tokenizer.save_pretrained(out)

    return TrainAdapter(
        module=model, kind="ctc", load_example=load_example,
        collate=lambda examples: collate(examples, extractor, rate), loss=loss,
        predict=lambda module, batch: predict(module, batch, tokenizer), save=save,
        spec_fields={"task": TASK, "plugin": "transformers",
                     "description": f"{spec.id} fine-tuned for {TASK}"},
        head_prefixes=("lm_head",), blocks=blocks, length=lambda ex: len(ex[0]), new_head=new_head)


def load_model(directory: Path, tokenizer, trust: bool, name: str):
    """(model, new_head): AutoModelForCTC with the head sized to ``tokenizer`` and this module's CTC settings.

    ``new_head`` is True when the checkpoint's ``lm_head`` was missing or too small and was initialised here.
    """
    from transformers import AutoConfig
    from transformers.utils import logging

    if tokenizer.pad_token_id is None:
        raise HubError(f"the tokenizer of '{name}' has no pad token, which CTC uses as its blank; "
                       "give it one (e.g. '<pad>') in its vocabulary")
    config = AutoConfig.from_pretrained(str(directory), trust_remote_code=trust)
    if (getattr(config, "vocab_size", 0) or 0) < tokenizer.vocab_size:  # a new head: the vocabulary is new
        config.vocab_size = len(tokenizer)
    config.update({"pad_token_id": tokenizer.pad_token_id, "ctc_loss_reduction": "mean", "ctc_zero_infinity": True})
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # a new lm_head is expected when the vocabulary is new
    try:
        model, info = load_auto("AutoModelForCTC", directory, trust, config=config, ignore_mismatched_sizes=True,
                                output_loading_info=True)
    finally:
        logging.set_verbosity(verbosity)
    fresh = list(info.get("missing_keys") or []) + list(info.get("mismatched_keys") or [])
    return model.float().train(), bool(fresh)


def transcript_encoder(tokenizer, name: str):
    """``(text, where) -> label ids``: the text in the vocabulary's case, spaces as the word delimiter."""
    vocab = tokenizer.get_vocab()
    letters = [t for t in vocab if len(t) == 1 and t.isalpha()]
    upper = bool(letters) and all(t.isupper() for t in letters)
    lower = bool(letters) and all(t.islower() for t in letters)
    delimiter = " " if " " in vocab else getattr(tokenizer, "word_delimiter_token", None)

    def encode(text: str, where: str = "") -> list[int]:
        text = " ".join(text.split())
        text = text.upper() if upper else text.lower() if lower else text
        chars = [delimiter if c == " " else c for c in text]
        missing = sorted({c for c in chars if c not in vocab})
        if missing:
            shown = ", ".join(repr(" " if c is None else c) for c in missing)
            raise InputError(f"{where + ': ' if where else ''}the transcript {text!r} has characters that the "
                             f"vocabulary of '{name}' lacks: {shown}; remove or spell them out in the "
                             "transcripts, or start from a model whose vocabulary has them")
        if not chars:
            raise InputError(f"{where + ': ' if where else ''}empty transcript")
        return tokenizer.convert_tokens_to_ids(chars)

    return encode


def _load_wave(record, rate: int, limit: int):
    """The clip at ``rate``; never cut (its transcript would no longer match), so a long one is an error."""
    wave = record_audio(record, rate)
    if len(wave) > limit:
        raise InputError(f"{record.where}: the clip is {len(wave) / rate:.1f} s long, over the limit of "
                         f"{limit / rate:.0f} s; cut it (its transcript must match the audio) or raise "
                         "preprocess.max_seconds")
    return wave


def collate(examples: list, extractor, rate: int) -> dict:
    """Waves padded by the feature extractor (+ attention_mask when it returns one); labels padded with -100."""
    import torch

    waves, labels = [w for w, _ in examples], [y for _, y in examples]
    mask = getattr(extractor, "return_attention_mask", False)
    batch = dict(extractor(waves, sampling_rate=rate, padding=True, return_tensors="pt",
                           return_attention_mask=mask))
    longest = max(len(y) for y in labels)
    batch["labels"] = torch.tensor([list(y) + [-100] * (longest - len(y)) for y in labels], dtype=torch.long)
    batch["input_lengths"] = torch.tensor([len(w) for w in waves], dtype=torch.long)
    return batch


def _model_inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k not in ("labels", "input_lengths")}


def loss(module, batch: dict):
    return module(**_model_inputs(batch), labels=batch["labels"]).loss


def predict(module, batch: dict, tokenizer) -> list[str]:
    """Greedy CTC transcripts, each from its own frames only (the batch padding dropped)."""
    logits = module(**_model_inputs(batch)).logits
    model = getattr(module, "module", module)
    frames = model._get_feat_extract_output_lengths(batch["input_lengths"]).tolist()
    ids = logits.argmax(dim=-1).cpu()
    return [text.strip() for text in tokenizer.batch_decode([row[:int(n)].tolist() for row, n in zip(ids, frames)])]
