"""Tiny models for the hub bench tests, one per input kind, each in its library's own format (built offline)."""
from __future__ import annotations

import string
from pathlib import Path

from plugins.tiny_models import save_ctc, save_openclip, save_timm, save_transformers


def save_fill_mask(root: Path) -> Path:
    """A one-layer BERT masked language model over letters, whose mask token is [MASK]."""
    import transformers

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.ascii_lowercase)
    tokenizer = transformers.BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=16, max_position_embeddings=32)
    transformers.BertForMaskedLM(config).save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


BUILDERS = {  # name -> (builder, the task the directory serves)
    "timm": (save_timm, "image-classification"),
    "bert": (save_transformers, "text-classification"),
    "fill-mask": (save_fill_mask, "fill-mask"),
    "clip": (save_openclip, "zero-shot-image-classification"),
    "ctc": (save_ctc, "speech-recognition"),
}
