"""Fine-tuning sequence-to-sequence text models (Marian, T5, BART, mBART: ``AutoModelForSeq2SeqLM``).

Serves ``translation`` and ``summarization`` through the core's ``seq2seq`` kind of training
(:func:`hub.train.pairs.seq2seq_kind`: source/target pairs, chrF / BLEU / ROUGE-L). The weights
directory holds the model and its tokenizer (what ``save_pretrained`` of both writes).

Sources are prepared as the pipeline prepares them (:mod:`mmhub_transformers.seq2seq`): the same
prefix (T5's ``"summarize: "``, a multi-target Marian's ``>>fr<<``) and mBART's language codes.
Teacher forcing: an example is the tokenized source and the tokenized target as ``labels`` (the
tokenizer's target mode, ``text_target=``, so Marian's target vocabulary is used); the model
shifts the labels right itself to make its decoder inputs (``decoder_start_token_id`` first).
Batches pad the sources with the pad token (attention mask 0) and the labels with -100, which
the model's cross-entropy ignores. Sources are cut to ``preprocess.max_length`` (default: the
tokenizer's and the model's limits), targets to ``preprocess.max_target_length`` (default: the same).

Evaluation generates from each source with the model's generation config and its task's settings,
made greedy (``num_beams=1``, no sampling; ``preprocess.num_beams`` asks for beam search instead)
and bounded by ``max_target_length`` new tokens, and decodes as the pipeline does; those texts are
what the metrics score. The output is ``save_pretrained`` of the model (``generation_config.json``
included) and of the tokenizer, so ``hub run OUT "text"`` loads it for the same task. ``hub run``
uses the generation config as saved (e.g. opus-mt's beam search), so its texts can differ from the
greedy ones measured, unless called with ``-o num_beams=1``.
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import HubError, InputError
from mmhub_transformers.loading import load_auto, load_tokenizer, read_json


def trainable(spec, task: str, directory: Path, trust: bool):
    """The TrainAdapter of a seq2seq model directory for ``task``."""
    from hub.train.adapter import TrainAdapter
    from hub.train.pairs import seq2seq_kind
    from mmhub_transformers.train_common import max_length
    from mmhub_transformers.train_pairs import saver  # the model (its generation config too) and the tokenizer

    config = read_json(directory / "config.json")
    if config and not config.get("is_encoder_decoder"):
        raise HubError(f"'{spec.id}' is not an encoder-decoder model (its model type is "
                       f"'{config.get('model_type')}'); {task} fine-tuning trains sequence-to-sequence models "
                       "(Marian / opus-mt, T5, BART, mBART). Start from one of those")
    tokenizer = load_tokenizer(directory, trust)
    model = load_auto("AutoModelForSeq2SeqLM", directory, trust).float().train()
    preprocess = dict(spec.preprocess or {})
    plan = language_plan(spec, task, tokenizer, model)
    limit = max_length(directory, tokenizer, model, spec)
    target_limit = int(preprocess.get("max_target_length") or limit)
    encode = example_encoder(tokenizer, plan.prefix, limit, target_limit)
    generation = greedy_config(model, plan.generate, target_limit, int(preprocess.get("num_beams") or 1))

    return TrainAdapter(
        module=model, kind=seq2seq_kind(), load_example=lambda record, train: encode(record),
        collate=lambda examples: collate(examples, tokenizer.pad_token_id), loss=loss,
        predict=lambda module, batch: predict(module, batch, tokenizer, generation),
        save=saver(tokenizer),
        spec_fields={"task": task, "plugin": "transformers",
                     "preprocess": {**preprocess, "max_length": limit, "max_target_length": target_limit}},
        length=lambda example: len(example["input_ids"]))


def language_plan(spec, task: str, tokenizer, model):
    """The pipeline's plan (:func:`mmhub_transformers.seq2seq_langs.plan_for`): prefix, languages, settings.

    Training prepares sources as ``hub run`` does: the same prefix (T5's ``task_specific_params``, a
    multi-target Marian's ``>>fr<<``) and mBART's language codes, set on the tokenizer here. Languages and a
    prefix of one's own come from the start model's ``src_lang`` / ``tgt_lang`` / ``prefix`` (``preprocess:``
    or ``options:`` of its catalogue entry or mmhub.yaml, as the catalogue's t5-small has them).
    """
    from types import SimpleNamespace

    from hub.errors import OptionError
    from mmhub_transformers.seq2seq_langs import plan_for

    settings = {**(spec.preprocess or {}), **(spec.options or {})}
    view = SimpleNamespace(tokenizer=tokenizer, model=model, spec=spec)
    try:
        plan = plan_for(view, task, settings.get("src_lang"), settings.get("tgt_lang"), settings.get("prefix"))
    except OptionError as exc:
        raise HubError(f"{exc}. To fine-tune it, name the languages (src_lang, tgt_lang) or a prefix under "
                       "'preprocess:' in its catalogue entry or its directory's mmhub.yaml") from None
    if plan.tokenizer_src_lang is not None:
        tokenizer.src_lang = plan.tokenizer_src_lang
    if plan.tgt_lang is not None and hasattr(tokenizer, "tgt_lang") and hasattr(tokenizer, "lang_code_to_id"):
        tokenizer.tgt_lang = plan.tgt_lang  # mBART: the targets' language-code token
    return plan


def example_encoder(tokenizer, prefix: str, limit: int, target_limit: int):
    """``record -> {"input_ids", "attention_mask", "labels"}``: the source and the target, tokenized and cut."""
    if tokenizer.pad_token_id is None:
        raise HubError("the tokenizer has no pad token, which batches of sources need; give it one (e.g. '<pad>')")

    def encode(record) -> dict:
        source, target = record.input, record.text
        if not isinstance(source, str) or not source.strip():
            raise InputError(f"{record.where}: a seq2seq example needs a source text, got {source!r}")
        if not isinstance(target, str) or not target.strip():
            raise InputError(f"{record.where}: a seq2seq example needs a target text, got {target!r}")
        source = source if source.startswith(prefix) else prefix + source  # as the pipeline does
        example = tokenizer(source, truncation=True, max_length=limit)
        labels = tokenizer(text_target=target, truncation=True, max_length=target_limit)["input_ids"]
        return {"input_ids": list(example["input_ids"]), "attention_mask": list(example["attention_mask"]),
                "labels": list(labels)}

    return encode


def collate(examples: list[dict], pad_id: int) -> dict:
    """Sources padded with ``pad_id`` (attention mask 0), labels padded with -100 (ignored by the loss)."""
    import torch

    def padded(key: str, pad: int):
        longest = max(len(ex[key]) for ex in examples)
        return torch.tensor([list(ex[key]) + [pad] * (longest - len(ex[key])) for ex in examples], dtype=torch.long)

    return {"input_ids": padded("input_ids", pad_id), "attention_mask": padded("attention_mask", 0),
            "labels": padded("labels", -100)}


def loss(module, batch: dict):
    """Teacher forcing: the model's own cross-entropy, its decoder fed the labels shifted right."""
    return module(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss


def greedy_config(model, task_settings: dict, max_new_tokens: int, num_beams: int = 1):
    """The model's generation config with its task's settings (the plan's), then greedy and bounded.

    Greedy means ``num_beams=1`` (or ``num_beams`` beams) and no sampling. At most ``max_new_tokens``
    new tokens, or fewer when the model's own settings say so (``max_new_tokens``, or ``max_length``
    less the decoder's start token).
    """
    import copy

    generation = copy.deepcopy(model.generation_config)
    generation.update(**task_settings)
    limits = [max_new_tokens]
    if generation.max_new_tokens:
        limits.append(int(generation.max_new_tokens))
    if generation.max_length:
        limits.append(max(1, int(generation.max_length) - 1))
    generation.max_new_tokens = None  # generate() would fill an unset value from the model's own config
    generation.max_length = min(limits) + 1  # the decoder's start token counts in max_length
    if generation.min_length and generation.min_length >= generation.max_length:
        generation.min_length = 0
    generation.update(num_beams=num_beams, do_sample=False, num_return_sequences=1, temperature=None, top_p=None,
                      top_k=None)
    return generation


def predict(module, batch: dict, tokenizer, generation) -> list[str]:
    """One generated text per source (``model.generate``), decoded as the pipeline decodes."""
    from mmhub_transformers.seq2seq import generated_tokens

    ids = module.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         generation_config=generation)
    stop: set[int] = set()
    for eos in (generation.eos_token_id, module.config.eos_token_id):
        stop.update(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
    forced = getattr(generation, "forced_bos_token_id", None)
    return [tokenizer.decode(generated_tokens(row, forced, stop), skip_special_tokens=True).strip()
            for row in ids.cpu().tolist()]
