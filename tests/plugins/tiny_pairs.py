"""Tiny pair classifiers saved with ``save_pretrained``, for the zero-shot and text-ranking tests.

NLI heads with the label orders of the two catalogued NLI models (bart-large-mnli: contradiction,
neutral, entailment; DeBERTa-v3 NLI: entailment, neutral, contradiction), a sentiment head without
an entailment label, and 1-output cross-encoders (sentence-transformers' activation declared or not).
The tokenizer is a real WordPiece tokenizer over a small vocabulary (letters and ##letters cover any
word). Random weights with a widened head, so that scores differ clearly between pairs.
"""
from __future__ import annotations

import json
import string
from pathlib import Path

import torch
import transformers

WORDS = ("the is of and to in a this example about sports politics science weather music paris capital france "
         "city river berlin germany what where which who how tall old long").split()
BART_ORDER = {0: "contradiction", 1: "neutral", 2: "entailment"}
DEBERTA_ORDER = {0: "entailment", 1: "neutral", 2: "contradiction"}
SENTIMENT = {0: "negative", 1: "positive"}


def tokenizer():
    vocab = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.ascii_lowercase)
             + ["##" + c for c in string.ascii_lowercase] + list(".,!?'{}") + WORDS)
    return transformers.BertTokenizer(vocab={w: i for i, w in enumerate(dict.fromkeys(vocab))})


def save_classifier(directory: Path, id2label: dict, seed: int = 0, max_positions: int = 64, **config) -> Path:
    """A 2-layer BERT sequence classifier with ``id2label``, saved with its tokenizer."""
    torch.manual_seed(seed)
    tok = tokenizer()
    cfg = transformers.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=37, max_position_embeddings=max_positions, initializer_range=0.5,
                                  id2label=id2label, label2id={v: k for k, v in id2label.items()}, **config)
    model = transformers.BertForSequenceClassification(cfg)
    torch.nn.init.normal_(model.classifier.weight, std=0.3)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return Path(directory)


def save_nli(directory: Path, order: dict = BART_ORDER, seed: int = 0) -> Path:
    return save_classifier(directory, order, seed)


def save_cross_encoder(directory: Path, activation: str | None = None, seed: int = 0, max_positions: int = 64) -> Path:
    """A 1-output cross-encoder; ``activation`` (a torch dotted path) is declared as sentence-transformers does."""
    extra = {"sentence_transformers": {"activation_fn": activation}} if activation else {}
    path = save_classifier(directory, {0: "LABEL_0"}, seed, max_positions, **extra)
    if activation:  # the saved config keeps unknown keys; make sure of it
        config = json.loads((path / "config.json").read_text())
        assert config.get("sentence_transformers", {}).get("activation_fn") == activation
    return path
