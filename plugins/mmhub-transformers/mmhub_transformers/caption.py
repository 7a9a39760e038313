"""Image captioning with transformers: BLIP (``BlipForConditionalGeneration`` + ``BlipProcessor``) and
vision encoder-decoder models (ViT-GPT2 style, ``VisionEncoderDecoderModel``), through ``model.generate``.

Images are read by :func:`hub.inputs.load_image` and prepared by the model's own image processor. The
generation options are the seq2seq pipelines' (``max_new_tokens``, ``num_beams``, ``do_sample``, ...); a
setting a call leaves out comes from the model's generation config, as ``model.generate`` would take it.
BLIP also takes a ``prompt`` (conditional captioning): the caption continues it, and its text starts with it,
as BLIP's own decoding gives it. Importing this module costs nothing: transformers is imported on load.
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import OptionError, WeightsError
from hub.options import Option, OptionLimitError
from hub.tasks.results_caption import Caption
from mmhub_transformers.bounds import beams, decoder_positions, default_new_tokens, generation_bytes, new_token_limits
from mmhub_transformers.loading import (TransformersPipeline, load_auto, load_tokenizer, read_json,
                                        translated_errors, weights_dir)

TASK = "image-captioning"
BLIP = "blip"
ENCODER_DECODER = "vision-encoder-decoder"
CAPTION_TYPES = {BLIP: "BlipForConditionalGeneration", ENCODER_DECODER: "VisionEncoderDecoderModel"}
PROMPT = Option("prompt", str, None, "text the caption continues (BLIP conditional captioning, e.g. 'a picture "
                "of'); the caption starts with it")
SAMPLING_ONLY = ("temperature", "top_p")
GENERATE_KEYS = ("max_new_tokens", "num_beams", "do_sample", "length_penalty", "no_repeat_ngram_size",
                 "temperature", "top_p")


def generation_options() -> tuple:
    """The seq2seq pipelines' generation options, the same names and meanings (their ``prefix`` aside)."""
    from mmhub_transformers.seq2seq import OPTIONS

    return tuple(o for o in OPTIONS if o.name != "prefix")


def is_captioner(config: dict) -> bool:
    """Whether a config.json is that of a captioner this module serves (BLIP captioning, vision encoder-decoder)."""
    model_type = config.get("model_type")
    if model_type == ENCODER_DECODER:
        return True
    return model_type == BLIP and CAPTION_TYPES[BLIP] in (config.get("architectures") or [CAPTION_TYPES[BLIP]])


class ImageCaptioningPipeline(TransformersPipeline):
    """Caption images: ``pipe(images, num_beams=3, max_new_tokens=20, prompt='a picture of')``."""

    task = TASK
    call_options = (*generation_options(), PROMPT)
    default_batch_size = 8

    def __init__(self, spec, model, device_manager, image_processor=None, family: str = "", **kwargs):
        super().__init__(spec, model, device_manager, **kwargs)
        self.image_processor = image_processor
        self.family = family

    @classmethod
    def from_spec(cls, spec, device_manager, trust_remote_code: bool = False, **options):
        from transformers import AutoImageProcessor

        directory = weights_dir(spec)
        config = read_json(Path(directory) / "config.json")
        family = config.get("model_type")
        if not is_captioner(config):
            raise WeightsError(f"'{directory}' holds a {family or 'unknown'} model "
                               f"({', '.join(config.get('architectures') or []) or 'no architectures'}); "
                               f"{TASK} takes BLIP (BlipForConditionalGeneration) or vision encoder-decoder "
                               "(VisionEncoderDecoderModel, e.g. ViT-GPT2) models")
        with translated_errors(directory, "image processor"):
            image_processor = AutoImageProcessor.from_pretrained(str(directory))
        tokenizer = load_tokenizer(directory, trust_remote_code)
        model = device_manager.place(load_auto(CAPTION_TYPES[family], directory, trust_remote_code))
        return cls(spec, model, device_manager, image_processor=image_processor, family=family,
                   tokenizer=tokenizer, directory=directory, **options)

    # -- options and inputs --------------------------------------------------------------------------------------
    def check_options(self, options: dict) -> dict:
        given = [name for name in SAMPLING_ONLY if options.get(name) is not None]
        if given and not (options.get("do_sample") or getattr(self.model.generation_config, "do_sample", False)):
            raise OptionError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to sampling only; "
                              "add do_sample=True (command line: -o do_sample=true)")
        prompt = options.get("prompt")
        if prompt is not None and self.family != BLIP:
            raise OptionError(f"option 'prompt' is for BLIP models; {self.spec.id} is a {self.family} model, "
                              "which captions without one: leave 'prompt' out")
        if prompt is not None and not prompt.strip():
            raise OptionError("option 'prompt' is blank; give some words for the caption to continue, e.g. "
                              "prompt='a picture of', or leave it out")
        if prompt is not None:
            self.check_prompt_room(prompt, default_new_tokens(self.model, options))
        return options

    def limits(self) -> dict:
        return new_token_limits(decoder_positions(self))

    def check_prompt_room(self, prompt: str, new: int) -> None:
        """The prompt's tokens and the new tokens must fit the text decoder's positions."""
        positions = decoder_positions(self)
        used = len(self.tokenizer(prompt)["input_ids"])
        if used + new > positions:
            raise OptionLimitError(
                f"option 'prompt' of {self.options_owner()} is {used} tokens, which with {new} new tokens passes the "
                f"text decoder's {positions} positions; shorten the prompt or lower max_new_tokens to at most "
                f"{max(1, positions - used)}")

    def estimate_bytes(self, batch: int, options: dict, input_tokens: int | None = None) -> int:
        prompt = options.get("prompt")
        used = len(self.tokenizer(prompt)["input_ids"]) if prompt else 1
        sequences = batch * beams(self.model, options)
        return generation_bytes(self.model, sequences, used + default_new_tokens(self.model, options),
                                       image_positions(self.model.config))

    def prepare(self, item):
        """An RGB PIL image; a missing, unreadable or out-of-range file raises InputError naming it."""
        from hub.inputs import load_image

        return load_image(item)

    def length(self, item):
        return None  # images are resized to one size: input order

    def preprocess(self, items, prompt=None, **options):
        batch = {"pixel_values": self.image_processor(images=items, return_tensors="pt")["pixel_values"]}
        if prompt is not None:
            encoded = self.tokenizer([prompt] * len(items), return_tensors="pt")
            batch.update(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
        return batch

    # -- generation ----------------------------------------------------------------------------------------------
    def generation_kwargs(self, options: dict) -> dict:
        """``model.generate`` settings the caller chose; the rest is the model's generation config."""
        out = {k: options[k] for k in GENERATE_KEYS if options.get(k) is not None}
        if "max_new_tokens" in out and options.get("prompt") is None \
                and getattr(self.model.generation_config, "max_new_tokens", None) is None:
            # the same limit said as max_length (the decoder starts from one token), so that transformers does not
            # warn that the generation config's max_length is overridden
            out["max_length"] = out.pop("max_new_tokens") + 1
        if options.get("do_sample") is False:
            out.update(temperature=None, top_p=None, top_k=None)  # greedy or beam: no sampling leftovers
        return out

    def forward(self, batch, seed=None, **options):
        import torch

        kwargs = self.generation_kwargs(options)
        if seed is None:
            return self.model.generate(**batch, **kwargs)
        device = self.device_manager.device
        devices = [torch.device(device)] if device != "cpu" else []
        with torch.random.fork_rng(devices=devices, device_type=devices[0].type if devices else "cuda"):
            torch.manual_seed(seed)
            return self.model.generate(**batch, **kwargs)

    def postprocess(self, outputs, items, prompt=None, **options):
        stop, pad = self.eos_ids(), self.pad_id()
        results = []
        for row in outputs.cpu().tolist():
            tokens = caption_tokens(row, stop, pad)
            text = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
            results.append(Caption(text, tokens, len(tokens), prompt))
        return results

    def decoder_config(self):
        config = self.model.config
        return config.text_config if self.family == BLIP else config.decoder

    def eos_ids(self) -> set[int]:
        """The ids that end a caption: BLIP's [SEP]; the generation config's and the decoder's end token."""
        if self.family == BLIP:
            return {self.decoder_config().sep_token_id}
        found: set[int] = set()
        for value in (getattr(self.model.generation_config, "eos_token_id", None), self.decoder_config().eos_token_id):
            found.update(value if isinstance(value, (list, tuple)) else [value] if value is not None else [])
        return found

    def pad_id(self) -> int | None:
        value = getattr(self.model.generation_config, "pad_token_id", None)
        return value if value is not None else self.decoder_config().pad_token_id


def image_positions(config) -> int:
    """The positions the image encoder gives the decoder to attend to (patches and a class token)."""
    vision = getattr(config, "vision_config", None) or getattr(config, "encoder", None)
    size, patch = getattr(vision, "image_size", None), getattr(vision, "patch_size", None)
    if isinstance(size, (list, tuple)):
        size = max(size)
    if isinstance(patch, (list, tuple)):
        patch = max(patch)
    return (int(size) // int(patch)) ** 2 + 1 if size and patch else 0


def caption_tokens(row: list[int], eos: set[int], pad: int | None) -> list[int]:
    """The tokens of a caption: without the decoder's start token, the end token and the padding after it."""
    tokens = row[1:]
    for i, token in enumerate(tokens):
        if token in eos:
            return tokens[:i]
    return [t for t in tokens if t != pad] if pad is not None and pad not in eos else tokens
