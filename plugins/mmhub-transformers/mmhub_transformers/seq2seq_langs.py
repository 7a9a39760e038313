"""Source and target languages of seq2seq models, and the task prefix and settings they imply.

Each family says its languages its own way:
- mBART (``model_type`` mbart): language-code tokens such as ``en_XX``/``de_DE``; the source code is set on the
  tokenizer, the target code is forced as the first generated token (``forced_bos_token_id``).
- Marian (opus-mt): one model per language pair (the tokenizer's ``source_lang``/``target_lang``), or several
  targets chosen by a ``>>fr<<`` token put before the text.
- T5: a task prefix ("translate English to German: ", "summarize: ") with generation settings per task, from
  the config's ``task_specific_params``.
Errors are :class:`hub.errors.OptionError` naming the model, the valid codes and the closest one.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from hub.errors import OptionError

MARIAN_TARGET = re.compile(r"^>>([A-Za-z_]+)<<$")
T5_PAIR = re.compile(r"^translation_(\w+?)_to_(\w+)$")
GENERATION_KEYS = ("max_length", "min_length", "num_beams", "length_penalty", "no_repeat_ngram_size",
                   "early_stopping", "max_new_tokens", "min_new_tokens")


@dataclass
class Plan:
    """What one call needs beyond the texts: languages, a text prefix, tokenizer and generate settings."""

    src_lang: str | None = None
    tgt_lang: str | None = None
    prefix: str = ""
    tokenizer_src_lang: str | None = None  # set on the tokenizer before tokenizing (mBART)
    generate: dict = field(default_factory=dict)  # settings the model's task implies (the caller's win)


def close_matches(code: str, valid: list[str]) -> list[str]:
    """Valid codes that start like ``code`` (``de`` -> ``de_DE``), else the most similar ones."""
    lowered = code.lower()
    starts = [v for v in valid if v.lower().split("_")[0] == lowered or v.lower().startswith(lowered + "_")]
    return starts[:3] or difflib.get_close_matches(code, valid, n=3, cutoff=0.5)


def unknown_code(model_id: str, option: str, code: str, valid: list[str]) -> OptionError:
    close = close_matches(code, valid)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return OptionError(f"option '{option}' of {model_id}: unknown language code '{code}'.{hint} "
                       f"Valid codes: {', '.join(valid)}")


def plan_for(pipeline, task: str, src_lang: str | None, tgt_lang: str | None, prefix: str | None) -> Plan:
    """The plan of one call for ``pipeline``'s model; OptionError for languages the model cannot do."""
    tokenizer, config = pipeline.tokenizer, pipeline.model.config
    model_id = pipeline.spec.id
    codes = language_codes(tokenizer)
    if codes:
        plan = mbart_plan(model_id, task, codes, tokenizer, src_lang, tgt_lang)
    elif config.model_type == "marian":
        plan = marian_plan(model_id, tokenizer, src_lang, tgt_lang)
    else:
        plan = task_params_plan(model_id, task, getattr(config, "task_specific_params", None) or {},
                                src_lang, tgt_lang)
    if prefix is not None:
        plan.prefix = prefix
    elif not plan.prefix and isinstance(getattr(config, "prefix", None), str):
        plan.prefix = config.prefix
    return plan


def language_codes(tokenizer) -> list[str]:
    """The language-code tokens of an mBART-style tokenizer (``lang_code_to_id``), else []."""
    mapping = getattr(tokenizer, "lang_code_to_id", None)
    return list(mapping) if isinstance(mapping, dict) else []


def mbart_plan(model_id: str, task: str, codes: list[str], tokenizer, src: str | None, tgt: str | None) -> Plan:
    """mBART: both codes checked; the target (required for translation) forced as the first token."""
    for option, code in (("src_lang", src), ("tgt_lang", tgt)):
        if code is not None and code not in codes:
            raise unknown_code(model_id, option, code, codes)
    src = src or getattr(tokenizer, "src_lang", None) or codes[0]
    if tgt is None and task == "translation":
        raise OptionError(f"{model_id} translates between {len(codes)} languages and needs the target language: "
                          f"add -o tgt_lang=CODE (in Python: tgt_lang='de_DE'), and src_lang if the text is not "
                          f"in {src}. Valid codes: {', '.join(codes)}")
    plan = Plan(src, tgt, tokenizer_src_lang=src)
    if tgt is not None:
        plan.generate["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(tgt)
    return plan


def marian_targets(tokenizer) -> list[str]:
    """The ``>>xx<<`` target-language tokens of a multi-target Marian tokenizer (e.g. opus-mt-en-ROMANCE)."""
    vocab = getattr(tokenizer, "encoder", None) or tokenizer.get_vocab()
    found = (MARIAN_TARGET.match(token) for token in vocab)
    return sorted(m.group(1) for m in found if m)


def marian_plan(model_id: str, tokenizer, src: str | None, tgt: str | None) -> Plan:
    """Marian: one pair per model, checked against the tokenizer's languages; or a chosen ``>>tgt<<`` target."""
    own_src, own_tgt = getattr(tokenizer, "source_lang", None), getattr(tokenizer, "target_lang", None)
    targets = marian_targets(tokenizer)
    if targets:
        if tgt is None:
            raise OptionError(f"{model_id} translates into several languages and needs the target: add "
                              f"-o tgt_lang=CODE. Valid codes: {', '.join(targets)}")
        if tgt not in targets:
            raise unknown_code(model_id, "tgt_lang", tgt, targets)
        return Plan(src or own_src, tgt, prefix=f">>{tgt}<< ")
    pair = f"{own_src or '?'} to {own_tgt or '?'}"
    for option, code, own in (("src_lang", src, own_src), ("tgt_lang", tgt, own_tgt)):
        if code is not None and own is not None and code.lower() != own.lower():
            wanted = f"{src or own_src}-{tgt or own_tgt}"
            raise OptionError(f"{model_id} translates {pair} only, not {src or own_src} to {tgt or own_tgt} "
                              f"(option '{option}'={code!r}); use a model for that pair, e.g. "
                              f"Helsinki-NLP/opus-mt-{wanted} (`hub list --task translation`), or drop {option}")
    return Plan(src or own_src, tgt or own_tgt)


def task_params_plan(model_id: str, task: str, params: dict, src: str | None, tgt: str | None) -> Plan:
    """T5 and the like: the prefix and settings of ``task_specific_params`` for the task (and language pair)."""
    if task == "summarization":
        return _from_params(params.get("summarization") or {}, Plan(src, tgt))
    pairs = {m.groups(): key for key in params if (m := T5_PAIR.match(key))}
    if not pairs:
        return Plan(src, tgt)  # a model that translates one way, saying nothing of its languages
    shown = ", ".join(f"{a} to {b}" for a, b in pairs)
    if src is None or tgt is None:
        raise OptionError(f"{model_id} translates several language pairs ({shown}); choose one with "
                          f"-o src_lang=CODE -o tgt_lang=CODE (in Python: src_lang='en', tgt_lang='de')")
    key = pairs.get((src, tgt))
    if key is None:
        close = [f"{a} to {b}" for a, b in pairs if a == src or b == tgt]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise OptionError(f"{model_id} does not translate {src} to {tgt}.{hint} Pairs it translates: {shown} "
                          "(or give your own prefix with -o prefix=...)")
    return _from_params(params[key], Plan(src, tgt))


def _from_params(params: dict, plan: Plan) -> Plan:
    plan.prefix = params.get("prefix") or ""
    plan.generate.update({k: v for k, v in params.items() if k in GENERATION_KEYS})
    return plan
