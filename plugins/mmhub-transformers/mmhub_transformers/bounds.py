"""The model's own bounds on generation options, and what one generation batch takes in memory.

Each generating pipeline's ``limits()`` (see :meth:`hub.tasks.base.Pipeline.limits`) is built from these: the
new tokens the decoder's position table leaves, the size of its vocabulary. ``estimate_bytes`` counts the
key/value cache of every sequence (beams included), the cross-attention keys and values of encoder-decoders,
a per-position allowance for activations, and the logits of one step. Nothing here imports transformers.
"""
from __future__ import annotations

ACTIVATION_WIDTHS = 8  # activations of one position, in hidden sizes (the MLP's 4x, attention, residuals)
FAR = 1_000_000  # a "limit" this large is a placeholder (tokenizers say 1e30 when they know none)


def text_config(model, decoder: bool = True):
    """The decoder's (or text model's) config of ``model``: itself for plain language models."""
    config = model.config
    get = getattr(config, "get_text_config", None)
    return get(decoder=decoder) if callable(get) else config


def first_int(config, names: tuple[str, ...]) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < FAR:
            return value
    return None


def decoder_positions(pipeline) -> int:
    """The most positions the decoder takes (its position table); the longest input where it has none (T5)."""
    found = first_int(text_config(pipeline.model), ("max_target_positions", "max_position_embeddings",
                                                    "n_positions", "n_ctx"))
    return found or pipeline.max_length()


def vocab_size(pipeline) -> int:
    """The number of tokens the model scores at each step."""
    found = first_int(text_config(pipeline.model), ("vocab_size",))
    return found or len(pipeline.tokenizer)


def new_token_limits(positions: int, start_tokens: int = 1) -> dict:
    """Bounds on ``max_new_tokens`` (and ``no_repeat_ngram_size``) for a decoder of ``positions`` positions that
    starts from ``start_tokens`` tokens of its own."""
    room = max(1, positions - start_tokens)
    why = f"the decoder's {positions} positions, less {start_tokens} start token{'s' if start_tokens > 1 else ''}"
    return {"max_new_tokens": (room, why), "no_repeat_ngram_size": (room, why)}


def default_new_tokens(model, options: dict) -> int:
    """The new tokens one call generates: the option, else the generation config's setting."""
    if options.get("max_new_tokens"):
        return int(options["max_new_tokens"])
    config = getattr(model, "generation_config", None)
    new = getattr(config, "max_new_tokens", None)
    return int(new) if new else int(getattr(config, "max_length", None) or 20)


def beams(model, options: dict) -> int:
    config = getattr(model, "generation_config", None)
    return int(options.get("num_beams") or getattr(config, "num_beams", None) or 1)


def generation_bytes(model, sequences: int, positions: int, cross_positions: int = 0) -> int:
    """Bytes of ``sequences`` sequences decoding up to ``positions`` positions, each attending to
    ``cross_positions`` encoder positions: key/value caches, activations and one step's logits."""
    config = text_config(model)
    layers = first_int(config, ("decoder_layers", "num_decoder_layers", "num_hidden_layers", "n_layer")) or 12
    hidden = first_int(config, ("d_model", "hidden_size", "n_embd")) or 768
    vocab = first_int(config, ("vocab_size",)) or 32000
    width = _element_size(model)
    per_position = width * hidden * (2 * layers + ACTIVATION_WIDTHS)
    cross = width * hidden * 2 * layers * cross_positions
    return sequences * (positions * per_position + cross + 2 * vocab * 4)


def _element_size(model) -> int:
    try:
        return int(next(model.parameters()).element_size())
    except (AttributeError, StopIteration, TypeError):
        return 4
