"""Fine-tuning image captioners (BLIP, vision encoder-decoder models such as ViT-GPT2) with teacher forcing.

Data: the contrastive kind's image/caption files (:mod:`hub.train.data`): a JSONL of
``{"image": path, "caption": text}`` rows, paths relative to the file, read with the same bad-row rules.
Images go through the model's own image processor, as ``hub run`` prepares them. The caption is the
decoder's target, tokenised as the pipeline's decoding reads it back:

- vision encoder-decoder: the caption's tokens and the end token as ``labels``; the model shifts them right
  behind its ``decoder_start_token_id`` itself;
- BLIP: ``[DEC]`` (BLIP's start token), the caption and ``[SEP]`` as both ``input_ids`` and ``labels``; BLIP's
  text decoder predicts each next token (with its own label smoothing).

Padding is -100 in the labels (ignored by the loss). Evaluation generates greedily (at most
``preprocess.max_target_length`` new tokens, default 32), decodes as the pipeline does, and scores the
captions with the text metrics of translation (chrF, BLEU, ROUGE-L). The output is ``save_pretrained`` of the
model, the tokenizer and the image processor, so ``hub run OUT image.jpg`` captions with it.
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import HubError
from mmhub_transformers.caption import BLIP, CAPTION_TYPES, caption_tokens, is_captioner
from mmhub_transformers.loading import load_auto, load_tokenizer, read_json, translated_errors

DEFAULT_TARGET_TOKENS = 32


def caption_kind():
    """Image/caption rows (the contrastive kind's files), scored by the generated captions' text metrics."""
    from hub.train.adapter import TrainKind
    from hub.train.pairs import seq2seq_metrics
    from hub.train.text_metrics import DEFAULT_METRIC, METRIC_NAMES

    return TrainKind(name="captioning", read=read_captions, metrics=seq2seq_metrics, metric_names=METRIC_NAMES,
                     default_metric=DEFAULT_METRIC, default_lr=5e-5)


def read_captions(path: Path, purpose: str = "training"):
    """(records, problems): the image/caption rows of a JSONL or CSV file (or a folder holding one)."""
    from hub.train.data import read_records

    return read_records(path, "contrastive", "image", on_bad="skip", purpose=purpose)


def trainable(spec, directory: Path, trust: bool):
    """The TrainAdapter of a BLIP or vision encoder-decoder captioner directory."""
    from transformers import AutoImageProcessor

    from hub.train.adapter import TrainAdapter

    config = read_json(directory / "config.json")
    if not is_captioner(config):
        raise HubError(f"'{spec.id}' is a {config.get('model_type') or 'unknown'} model; image-captioning "
                       "fine-tuning trains BLIP (BlipForConditionalGeneration) and vision encoder-decoder models "
                       "(e.g. ViT-GPT2). Start from one of those")
    family = config["model_type"]
    with translated_errors(directory, "image processor"):
        image_processor = AutoImageProcessor.from_pretrained(str(directory))
    tokenizer = load_tokenizer(directory, trust)
    model = load_auto(CAPTION_TYPES[family], directory, trust).float().train()
    preprocess = dict(spec.preprocess or {})
    limit = int(preprocess.get("max_target_length") or DEFAULT_TARGET_TOKENS)
    targets = TargetTokens(model, tokenizer, family, limit)

    def load_example(record, train: bool) -> dict:
        from hub.inputs import load_image

        pixels = image_processor(images=[load_image(record.input)], return_tensors="pt")["pixel_values"][0]
        return {"pixel_values": pixels, "labels": targets(record.text)}

    def save(module, out_dir) -> None:
        from hub.io import atomic_directory

        with atomic_directory(out_dir, carry_over=True) as out:
            module.save_pretrained(str(out))
            tokenizer.save_pretrained(str(out))
            image_processor.save_pretrained(str(out))

    return TrainAdapter(
        module=model, kind=caption_kind(), load_example=load_example,
        collate=lambda examples: collate(examples, family == BLIP), loss=lambda module, batch: loss(module, batch),
        predict=lambda module, batch: targets.generate(module, batch), save=save,
        spec_fields={"task": "image-captioning", "plugin": "transformers",
                     "preprocess": {**preprocess, "max_target_length": limit}},
        length=lambda example: len(example["labels"]))


class TargetTokens:
    """Captions to decoder targets, and generated ids back to captions, as the pipeline reads them."""

    def __init__(self, model, tokenizer, family: str, limit: int):
        self.model, self.tokenizer, self.family, self.limit = model, tokenizer, family, limit
        decoder = model.config.text_config if family == BLIP else model.config.decoder
        if family == BLIP:
            self.start, self.end = decoder.bos_token_id, decoder.sep_token_id
        else:
            end = model.generation_config.eos_token_id
            self.start, self.end = None, end[0] if isinstance(end, (list, tuple)) else end
        if self.end is None:
            raise HubError("the captioner has no end token (eos_token_id / sep_token_id) in its config; set one "
                           "and save it again before fine-tuning")

    def __call__(self, caption: str) -> list[int]:
        ids = self.tokenizer(caption.strip(), add_special_tokens=False)["input_ids"][:self.limit - 1]
        return ([self.start] if self.start is not None else []) + ids + [self.end]

    def generate(self, module, batch: dict) -> list[str]:
        """Greedy captions of a batch, decoded as the pipeline decodes them."""
        ids = module.generate(pixel_values=batch["pixel_values"], max_length=self.limit + 1, num_beams=1,
                              do_sample=False)  # the start token counts in max_length
        pad = getattr(module.generation_config, "pad_token_id", None)
        return [self.tokenizer.decode(caption_tokens(row, {self.end}, pad), skip_special_tokens=True).strip()
                for row in ids.cpu().tolist()]


def collate(examples: list[dict], blip: bool) -> dict:
    """Pixels stacked; targets padded with -100 (BLIP: the same ids, padded with 0, as its decoder input)."""
    import torch

    longest = max(len(ex["labels"]) for ex in examples)
    labels = torch.tensor([ex["labels"] + [-100] * (longest - len(ex["labels"])) for ex in examples])
    batch = {"pixel_values": torch.stack([ex["pixel_values"] for ex in examples]), "labels": labels}
    if blip:
        batch["input_ids"] = labels.clamp(min=0)
        batch["attention_mask"] = (labels != -100).long()
    return batch


def loss(module, batch: dict):
    """Teacher forcing: the model's own cross-entropy of the next caption token."""
    return module(**batch).loss
