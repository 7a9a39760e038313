"""Text generation with causal language models (greedy or sampled) through ``model.generate``."""
from __future__ import annotations

from hub.errors import HubError, OptionError
from hub.options import DO_SAMPLE, MAX_NEW_TOKENS, SAMPLE_TOP_K, SEED, TEMPERATURE, TOP_P
from hub.tasks.results import Generation
from mmhub_transformers.bounds import default_new_tokens, generation_bytes, vocab_size
from mmhub_transformers.classify import HeadPipeline

SAMPLING_ONLY = ("temperature", "top_k", "top_p")


class TextGenerationPipeline(HeadPipeline):
    """Continue each prompt; returns the continuation only (``text``) and its new token ids.

    Prompts are left-padded so a batch of different lengths generates like each prompt alone; a
    tokenizer without a pad token pads with its end-of-sequence token. Prompts longer than the
    model's context minus ``max_new_tokens`` keep their end (truncated on the left) with a warning.
    With ``do_sample`` and a ``seed``, sampling is reproducible for the same inputs and batch size;
    the global torch random state is left untouched.
    """

    task = "text-generation"
    auto_class = "AutoModelForCausalLM"
    call_options = (MAX_NEW_TOKENS, DO_SAMPLE, TEMPERATURE, SAMPLE_TOP_K, TOP_P, SEED)

    def __init__(self, spec, model, device_manager, **kwargs):
        super().__init__(spec, model, device_manager, **kwargs)
        tok = self.tokenizer
        if tok.pad_token is None:
            if tok.eos_token is None:
                raise HubError(f"{spec.id}: the tokenizer has neither a pad nor an end-of-sequence token; "
                               "add one (tokenizer.pad_token = ...) and save it again")
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"
        tok.truncation_side = "left"

    def limits(self) -> dict:
        context = self.max_length()
        return {"max_new_tokens": (context - 1, f"its context of {context} tokens, less one for the prompt"),
                "top_k": (vocab_size(self), "the size of its vocabulary")}

    def estimate_bytes(self, batch: int, options: dict, input_tokens: int | None = None) -> int:
        context = self.max_length()
        positions = min(context, (input_tokens or context) + default_new_tokens(self.model, options))
        return generation_bytes(self.model, batch, positions)

    def check_options(self, options: dict) -> dict:
        given = [name for name in SAMPLING_ONLY if options[name] is not None]
        if given and not options["do_sample"]:
            raise OptionError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to sampling only; "
                             "add do_sample=True (command line: -o do_sample=true)")
        return options

    def preprocess(self, items, max_new_tokens=MAX_NEW_TOKENS.default, **kwargs):
        new = max_new_tokens
        room = self.max_length() - new
        if room < 1:
            raise OptionError(f"max_new_tokens={new} leaves no room for the prompt in {self.spec.id}'s context "
                             f"of {self.max_length()} tokens; ask for fewer new tokens")
        return dict(self.tokenize(items, max_length=room))

    def generation_kwargs(self, max_new_tokens=MAX_NEW_TOKENS.default, do_sample=False, temperature=None,
                          top_k=None, top_p=None, **_) -> dict:
        """Arguments for ``model.generate``; sampling settings only when sampling."""
        out = {"max_new_tokens": max_new_tokens, "do_sample": do_sample, "pad_token_id": self.tokenizer.pad_token_id}
        if not do_sample:
            # greedy: neutralise sampling defaults a checkpoint's generation_config may carry
            return {**out, "temperature": None, "top_k": None, "top_p": None}
        chosen = (("temperature", temperature), ("top_k", top_k), ("top_p", top_p))
        return {**out, **{k: v for k, v in chosen if v is not None}}

    def forward(self, batch, seed=None, **kwargs):
        import torch

        options = self.generation_kwargs(**kwargs)
        if seed is None or not options["do_sample"]:
            return self.model.generate(**batch, **options)[:, batch["input_ids"].shape[1]:]
        devices = [torch.device(self.device_manager.device)] if self.device_manager.device != "cpu" else []
        with torch.random.fork_rng(devices=devices, device_type=devices[0].type if devices else "cuda"):
            torch.manual_seed(seed)
            return self.model.generate(**batch, **options)[:, batch["input_ids"].shape[1]:]

    def postprocess(self, outputs, items, **kwargs):
        eos = self.eos_ids()
        results = []
        for prompt, row in zip(items, outputs.cpu().tolist()):
            tokens = cut_at_eos(row, eos)
            results.append(Generation(self.tokenizer.decode(tokens, skip_special_tokens=True), prompt, tokens))
        return results

    def eos_ids(self) -> set[int]:
        """Every id that ends generation: the generation config's, the model config's, the tokenizer's."""
        found: set[int] = set()
        for value in (getattr(self.model.generation_config, "eos_token_id", None),
                      self.model.config.eos_token_id, self.tokenizer.eos_token_id):
            found.update(value if isinstance(value, (list, tuple)) else [value] if value is not None else [])
        return found


def cut_at_eos(tokens: list[int], eos: set[int]) -> list[int]:
    """New tokens up to (not including) the first end-of-sequence token; the rest is padding."""
    for i, token in enumerate(tokens):
        if token in eos:
            return tokens[:i]
    return tokens
