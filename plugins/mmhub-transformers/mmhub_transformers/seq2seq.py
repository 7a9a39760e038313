"""Translation and summarization with encoder-decoder models (Marian, T5, BART, mBART) through ``model.generate``.

Settings a call leaves out come from the model: its task's ``task_specific_params`` (T5's prefixes, BART's
summary lengths) and then its ``generation_config`` (beams, lengths, forced tokens), exactly as
``model.generate`` would use them. Inputs longer than the model takes are split at sentence ends, each part
generated alone, and the outputs joined (with a warning). Batches are formed by length, results come back in
input order.
"""
from __future__ import annotations

import functools
import re

from hub.errors import InputError, OptionError
from hub.options import DO_SAMPLE, MAX_NEW_TOKENS, SEED, TEMPERATURE, TOP_P, Option
from hub.tasks.results_seq2seq import GeneratedText
from mmhub_transformers.bounds import beams, decoder_positions, default_new_tokens, generation_bytes, new_token_limits
from mmhub_transformers.classify import HeadPipeline
from mmhub_transformers.seq2seq_langs import Plan, plan_for

MODEL_DEFAULT = " (default: the model's generation config)"
OPTIONS = (
    MAX_NEW_TOKENS.but(default=None, help="the most new tokens to generate per input" + MODEL_DEFAULT),
    Option("num_beams", int, None, "beam search width, 1 for greedy" + MODEL_DEFAULT, minimum=1, maximum=64),
    DO_SAMPLE.but(default=None, help="sample the next token instead of searching for the most likely text"
                  + MODEL_DEFAULT),
    TEMPERATURE, TOP_P,
    Option("length_penalty", float, None, "beam search: > 1 favours longer outputs, < 1 shorter" + MODEL_DEFAULT),
    Option("no_repeat_ngram_size", int, None, "never repeat an n-gram of this size (0: allow)" + MODEL_DEFAULT,
           minimum=0, model_bound=True),
    SEED,
    Option("prefix", str, None, "text put before each input (default: the model's own, e.g. T5's "
           "'summarize: ')"),
)
LANGUAGES = (
    Option("src_lang", str, None, "the language of the input, for models that need it (mBART: en_XX; T5: en)"),
    Option("tgt_lang", str, None, "the language to translate into, for models that need it (mBART: de_DE; "
           "T5: de; multi-target opus-mt: fr)"),
)
SAMPLING_ONLY = ("temperature", "top_p")
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")
CPU_BF16 = "bf16"


class Seq2SeqPipeline(HeadPipeline):
    """Generate text from text with ``AutoModelForSeq2SeqLM``; one :class:`GeneratedText` per input."""

    auto_class = "AutoModelForSeq2SeqLM"
    call_options = OPTIONS
    default_batch_size = 16

    @classmethod
    def from_spec(cls, spec, device_manager, trust_remote_code: bool = False, **options):
        pipeline = super().from_spec(spec, device_manager, trust_remote_code, **options)
        pipeline.cast_for_cpu()
        return pipeline

    def cast_for_cpu(self) -> None:
        """On a CPU with a bf16 plan, hold the weights in bf16 and skip autocast.

        Decoding runs many small steps; autocast re-dispatches every op of every step and ran slower than
        fp32 on a CPU, while bf16 weights run the same matmuls in bf16 without that cost."""
        dm = self.device_manager
        if dm.device == "cpu" and dm.dtype == CPU_BF16:
            import torch

            self.model = self.model.to(torch.bfloat16)

    # -- options and inputs --------------------------------------------------------------------------------------
    def check_options(self, options: dict) -> dict:
        given = [name for name in SAMPLING_ONLY if options.get(name) is not None]
        if given and not (options.get("do_sample") or self.samples_by_default()):
            raise OptionError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to sampling only; "
                              "add do_sample=True (command line: -o do_sample=true)")
        self.plan(options)  # a language the model cannot do fails here, before any input is read
        return options

    def limits(self) -> dict:
        return new_token_limits(decoder_positions(self))

    def estimate_bytes(self, batch: int, options: dict, input_tokens: int | None = None) -> int:
        source = min(input_tokens or self.max_length(), self.max_length())
        sequences = batch * beams(self.model, options)
        return generation_bytes(self.model, sequences, default_new_tokens(self.model, options) + 1,
                                       source)

    def samples_by_default(self) -> bool:
        return bool(getattr(self.model.generation_config, "do_sample", False))

    def plan(self, options: dict) -> Plan:
        return plan_for(self, self.task, options.get("src_lang"), options.get("tgt_lang"), options.get("prefix"))

    def prepare(self, item):
        text = super().prepare(item)
        if not text.strip():
            raise InputError(f"the input to {self.spec.id} is {'empty' if not text else 'only whitespace'}; "
                             f"give the text to {self.verb}")
        return text

    verb = "process"

    # -- long inputs: split by sentences, generated part by part, joined -----------------------------------------
    def run_batches(self, prepared: list, batch_size, progress, **options):
        plan = self.plan(options)
        pieces, owners = [], []
        for index, text in enumerate(prepared):
            parts = self.split(text, plan)
            pieces += parts
            owners += [index] * len(parts)
        results = super().run_batches(pieces, batch_size, progress, **options)
        if len(pieces) == len(prepared):
            return results
        grouped: list[list[GeneratedText]] = [[] for _ in prepared]
        for owner, result in zip(owners, results):
            grouped[owner].append(result)
        return [joined(group) for group in grouped]

    def split(self, text: str, plan: Plan) -> list[str]:
        """``text`` alone when it fits the model, else pieces of whole sentences that each fit (with a warning)."""
        limit = self.max_length()
        if self.count_tokens([text], plan)[0] <= limit:
            return [text]
        sentences = [s for s in SENTENCE_END.split(text) if s and s.strip()]
        counts = self.count_tokens(sentences, plan, special=False)
        room = limit - self.count_tokens([""], plan)[0]
        parts, current, used = [], [], 0
        for sentence, count in zip(sentences, counts):
            if current and used + count > room:
                parts.append(" ".join(current))
                current, used = [], 0
            current.append(sentence)
            used += count
        parts.append(" ".join(current))
        if len(parts) == 1:
            return [text]  # one sentence too long: it is truncated (with tokenize's warning)
        self.warn(f"{self.spec.id}: an input longer than the model's maximum of {limit} tokens was split into "
                  f"parts at sentence ends; each part was generated alone and the outputs joined (see 'parts' in "
                  f"the result)")
        return parts

    def count_tokens(self, texts: list[str], plan: Plan, special: bool = True) -> list[int]:
        """Token counts of ``texts`` as the model will see them (prefix and special tokens included)."""
        self.set_source_language(plan)
        lead = plan.prefix if special else ""
        encoded = self.tokenizer([lead + t for t in texts], add_special_tokens=special, truncation=False,
                                 verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def set_source_language(self, plan: Plan) -> None:
        if plan.tokenizer_src_lang is not None and self.tokenizer.src_lang != plan.tokenizer_src_lang:
            self.tokenizer.src_lang = plan.tokenizer_src_lang

    # -- one batch -----------------------------------------------------------------------------------------------
    def run_one_batch(self, chunk: list, **kwargs):
        if self.device_manager.device != "cpu" or self.device_manager.dtype != CPU_BF16:
            return super().run_one_batch(chunk, **kwargs)
        import torch

        batch = self.preprocess(chunk, **kwargs)
        with torch.inference_mode():  # the weights are bf16 already (see cast_for_cpu): no autocast
            outputs = self.forward(batch, **kwargs)
        return self.postprocess(outputs, chunk, **kwargs)

    def preprocess(self, items, **options):
        plan = self.plan(options)
        self.set_source_language(plan)
        texts = [text if text.startswith(plan.prefix) else plan.prefix + text for text in items]
        return dict(self.tokenize(texts))

    def generation_kwargs(self, options: dict) -> dict:
        """``model.generate`` settings: the task's (``task_specific_params``), then the caller's; the rest is the
        model's generation config."""
        out = dict(self.plan(options).generate)
        chosen = {k: options.get(k) for k in ("max_new_tokens", "num_beams", "do_sample", "length_penalty",
                                              "no_repeat_ngram_size", "temperature", "top_p")}
        out.update({k: v for k, v in chosen.items() if v is not None})
        if "max_new_tokens" in out and getattr(self.model.generation_config, "max_new_tokens", None) is None:
            # the same limit as max_new_tokens (the decoder starts from one token), said as max_length so that
            # transformers does not warn that a generation config's max_length is overridden
            out["max_length"] = out.pop("max_new_tokens") + 1
            if out.get("min_length", 0) > out["max_length"]:
                out.pop("min_length")
        if options.get("do_sample") is False:
            out.update(temperature=None, top_p=None, top_k=None)  # greedy or beam: no sampling leftovers
        return out

    def forward(self, batch, seed=None, **options):
        import torch

        kwargs = self.generation_kwargs(options)
        if self.searches_beams(kwargs):
            kwargs["cache"] = beam_search_cache(self.model)
        if seed is None:
            return self.model.generate(**batch, **kwargs)
        device = self.device_manager.device
        devices = [torch.device(device)] if device != "cpu" else []
        with torch.random.fork_rng(devices=devices, device_type=devices[0].type if devices else "cuda"):
            torch.manual_seed(seed)
            return self.model.generate(**batch, **kwargs)

    def searches_beams(self, kwargs: dict) -> bool:
        """Whether this call runs beam search with transformers' default (dynamic) cache."""
        config = self.model.generation_config
        beams = kwargs.get("num_beams") or config.num_beams or 1
        return beams > 1 and self.model.config.is_encoder_decoder and config.cache_implementation is None

    def postprocess(self, outputs, items, **options):
        plan = self.plan(options)
        forced = plan.generate.get("forced_bos_token_id")
        stop = self.eos_ids()
        results = []
        for row in outputs.cpu().tolist():
            tokens = generated_tokens(row, forced, stop)
            text = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
            results.append(GeneratedText(text, tokens, len(tokens), plan.src_lang, plan.tgt_lang))
        return results

    def eos_ids(self) -> set[int]:
        found: set[int] = set()
        for value in (getattr(self.model.generation_config, "eos_token_id", None), self.model.config.eos_token_id):
            found.update(value if isinstance(value, (list, tuple)) else [value] if value is not None else [])
        return found


def beam_search_cache(model):
    """An encoder-decoder cache whose beam reordering leaves the cross-attention keys and values alone.

    Every beam of an input holds the same cross-attention keys and values (the same encoder output, expanded),
    and beam search only ever picks among the beams of the same input, so reordering them copies equal rows:
    transformers' cache does it at every step, which was most of the time of a beam search over long inputs
    on a CPU (a profile of a 6-layer Marian: 47 of 71 s in ``index_select``). Skipping it gives the same tokens.
    """
    from transformers.cache_utils import DynamicCache

    config = model.config.get_text_config(decoder=True)
    return _cache_class()(DynamicCache(config=config), DynamicCache(config=config))


@functools.lru_cache(maxsize=1)
def _cache_class():
    from transformers.cache_utils import EncoderDecoderCache

    class SharedCrossAttentionCache(EncoderDecoderCache):
        """Reorders the decoder's own keys and values only (see :func:`beam_search_cache`)."""

        def reorder_cache(self, beam_idx):
            self.self_attention_cache.reorder_cache(beam_idx)

    return SharedCrossAttentionCache


def generated_tokens(row: list[int], forced_bos: int | None, eos: set[int]) -> list[int]:
    """The tokens a decoder wrote: without its start token, a forced language token, or the end (and the padding
    after it)."""
    tokens = row[1:]  # the decoder start token
    if forced_bos is not None and tokens[:1] == [forced_bos]:
        tokens = tokens[1:]
    for i, token in enumerate(tokens):
        if token in eos:
            return tokens[:i]
    return tokens


def joined(parts: list[GeneratedText]) -> GeneratedText:
    """One result from the results of a long input's parts, in order."""
    tokens = [t for part in parts for t in part.tokens]
    first = parts[0]
    return GeneratedText(" ".join(p.text for p in parts if p.text), tokens, len(tokens), first.src_lang,
                         first.tgt_lang, len(parts))


class TranslationPipeline(Seq2SeqPipeline):
    """Translate each text; languages by code where the model needs them (mBART, T5, multi-target opus-mt)."""

    task = "translation"
    verb = "translate"
    call_options = OPTIONS + LANGUAGES


class SummarizationPipeline(Seq2SeqPipeline):
    """Summarise each text (BART, T5 with its 'summarize: ' prefix, ...)."""

    task = "summarization"
    verb = "summarise"
