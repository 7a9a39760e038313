"""Image captioning with open_clip's CoCa models through CoCa's own ``model.generate``.

The options are CoCa's generation settings under their open_clip names: ``generation_type`` (beam_search,
top_k, top_p; ``greedy`` is top_k sampling from the single most likely token), ``seq_len`` (the most tokens,
the start token included), ``min_seq_len``, ``num_beams``, ``num_beam_groups``, ``top_p``, ``temperature``
and ``repetition_penalty``. Sampling from the k most likely tokens is ``sample_top_k``: ``top_k`` means "how
many of the best" everywhere in this hub. Defaults are open_clip's. The text is open_clip's tokenizer's
decoding cut at ``<end_of_text>`` with ``<start_of_text>`` removed, as open_clip's examples do.
"""
from __future__ import annotations

from hub.errors import OptionError
from hub.options import SEED, TEMPERATURE, TOP_P, Option
from hub.tasks.results_caption import Caption
from mmhub_openclip.clip import ClipPipeline

START, END = "<start_of_text>", "<end_of_text>"
GENERATION_TYPES = ("beam_search", "greedy", "top_k", "top_p")
OPTIONS = (
    Option("generation_type", str, "beam_search", "how CoCa decodes: beam_search, greedy, or sampling from the "
           "sample_top_k most likely tokens (top_k) or from the top_p nucleus (top_p)", choices=GENERATION_TYPES),
    Option("seq_len", int, 30, "the most tokens per caption, the start token included (at most the text "
           "decoder's context)", minimum=2, model_bound=True, new_tokens=True),
    Option("min_seq_len", int, 5, "the fewest tokens before the caption may end (below seq_len)", minimum=0,
           model_bound=True),
    Option("num_beams", int, 6, "beam search: beams in all (a multiple of num_beam_groups, at least 2)",
           minimum=1, maximum=64),
    Option("num_beam_groups", int, 3, "beam search: groups the beams are split into (diverse beam search)",
           minimum=1, maximum=64),
    Option("sample_top_k", int, 1, "top_k sampling: sample from this many most likely tokens (at most the "
           "vocabulary's size)", minimum=1, model_bound=True),
    TOP_P.but(default=0.1, help="top_p sampling: sample from the most likely tokens whose probabilities add up to "
              "top_p"),
    TEMPERATURE.but(default=1.0, help="sampling temperature (top_k and top_p): lower is more conservative"),
    Option("repetition_penalty", float, 1.0, "> 1 makes repeated tokens less likely", minimum=0,
           exclusive_minimum=True),
    SEED.but(help="random seed of top_k and top_p sampling: the same seed, images and batch size give the "
             "same captions"),
)
SAMPLING = ("top_k", "top_p")


def generate_kwargs(options: dict) -> dict:
    """``CoCa.generate`` keywords for the checked options (greedy is top_k with one candidate)."""
    kind = options["generation_type"]
    out = {"seq_len": options["seq_len"], "min_seq_len": options["min_seq_len"],
           "repetition_penalty": options["repetition_penalty"]}
    if kind == "beam_search":
        return {**out, "generation_type": kind, "num_beams": options["num_beams"],
                "num_beam_groups": options["num_beam_groups"]}
    if kind == "greedy":
        return {**out, "generation_type": "top_k", "top_k": 1}
    return {**out, "generation_type": kind, "top_k": options["sample_top_k"], "top_p": options["top_p"],
            "temperature": options["temperature"]}


class CaptionPipeline(ClipPipeline):
    """Caption images with CoCa: ``pipe(images, generation_type='beam_search', seq_len=30, ...)``."""

    task = "image-captioning"
    call_options = OPTIONS
    default_batch_size = 8

    @classmethod
    def from_spec(cls, spec, device_manager, **options):
        from mmhub_openclip.beam_scorer import enable_coca_generation

        pipeline = super().from_spec(spec, device_manager, **options)
        if not callable(getattr(pipeline.model, "generate", None)):
            from hub.errors import WeightsError

            raise WeightsError(f"model '{spec.id}' is a {type(pipeline.model).__name__}, which cannot write text; "
                               "image captioning takes open_clip CoCa models (e.g. coca_ViT-B-32)")
        enable_coca_generation()
        return pipeline

    def limits(self) -> dict:
        context = int(getattr(self.model, "context_length", 0) or 0) or int(self.model.text.context_length)
        vocab = int(getattr(self.model.text, "vocab_size", 0) or 0) or int(self.tokenizer.vocab_size)
        why = f"the text decoder's context of {context} tokens"
        return {"seq_len": (context, why), "min_seq_len": (context - 1, why),
                "sample_top_k": (vocab, "the size of its vocabulary")}

    def check_options(self, options: dict) -> dict:
        if options["min_seq_len"] >= options["seq_len"]:
            raise OptionError(f"option 'min_seq_len' ({options['min_seq_len']}) must be below 'seq_len' "
                              f"({options['seq_len']}), as CoCa's decoding requires")
        if options["generation_type"] == "beam_search" and options["num_beams"] < 2:
            raise OptionError(f"option 'num_beams' must be at least 2 for CoCa's beam search, got "
                              f"{options['num_beams']}; for one beam use -o generation_type=greedy")
        if options["generation_type"] == "beam_search" and options["num_beams"] % options["num_beam_groups"]:
            raise OptionError(f"option 'num_beams' ({options['num_beams']}) must be a multiple of "
                              f"'num_beam_groups' ({options['num_beam_groups']}) for beam search")
        return options

    def forward(self, pixels, seed=None, **options):
        import torch

        kwargs = generate_kwargs(options)
        if kwargs["generation_type"] not in SAMPLING or seed is None:
            return self.model.generate(pixels, **kwargs)
        device = self.device_manager.device
        devices = [torch.device(device)] if device != "cpu" else []
        with torch.random.fork_rng(devices=devices, device_type=devices[0].type if devices else "cuda"):
            torch.manual_seed(seed)
            return self.model.generate(pixels, **kwargs)

    def postprocess(self, outputs, items, **options):
        return [self.caption(row) for row in outputs.cpu().tolist()]

    def caption(self, row: list[int]) -> Caption:
        """The tokens after the start token up to the end token; the text decoded and cleaned as open_clip's
        examples clean it."""
        start, end = self.special_ids()
        tokens = row[1:] if row[:1] == [start] else list(row)
        if end in tokens:
            tokens = tokens[:tokens.index(end)]
        text = self.decode(row).split(END)[0].replace(START, "").strip()
        return Caption(text, tokens, len(tokens))

    def special_ids(self) -> tuple[int, int]:
        """The start and end token ids (open_clip's CLIP tokenizer: 49406, 49407)."""
        tokenizer = self.tokenizer
        return int(getattr(tokenizer, "sot_token_id", 49406)), int(getattr(tokenizer, "eot_token_id", 49407))

    def decode(self, row: list[int]) -> str:
        """The model's tokenizer's decoding (open_clip's CLIP tokenizer; a Hugging Face tokenizer's, wrapped)."""
        decode = getattr(self.tokenizer, "decode", None) or getattr(getattr(self.tokenizer, "tokenizer", None),
                                                                    "decode", None)
        if decode is None:
            import open_clip
            import torch

            return open_clip.decode(torch.tensor(row))
        return decode(row)
