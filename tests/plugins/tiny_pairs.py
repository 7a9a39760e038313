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


# -- the catalogued models' own architectures: BART and DeBERTa-v2 NLI heads, an XLM-RoBERTa cross-encoder ------
CORPUS = [" ".join(WORDS), "This example is sports.", "the river in paris is long", "paris is the capital of france",
          "what is the capital of france", "berlin is a city in germany", "who is the capital of germany"]


def _labelled(id2label: dict) -> dict:
    return {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}


def save_bart_nli(directory: Path, order: dict = BART_ORDER, seed: int = 0) -> Path:
    """A one-layer BartForSequenceClassification (bart-large-mnli's kind) with a byte-level BPE tokenizer."""
    import tempfile

    from tokenizers import ByteLevelBPETokenizer

    torch.manual_seed(seed)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS * 3, vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                            show_progress=False)
    with tempfile.TemporaryDirectory() as folder:
        vocab_file, merges_file = bpe.save_model(folder)
        tok = transformers.BartTokenizer(vocab=vocab_file, merges=merges_file, model_max_length=64)
    cfg = transformers.BartConfig(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1,
                                  encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                                  decoder_ffn_dim=32, max_position_embeddings=64, init_std=0.5,
                                  pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                                  eos_token_id=tok.eos_token_id, **_labelled(order))
    transformers.BartForSequenceClassification(cfg).save_pretrained(directory)
    tok.save_pretrained(directory)
    return Path(directory)


def _unigram_pieces() -> list:
    from tiny_seq2seq import pieces, sentencepiece_model

    return pieces(sentencepiece_model(300, CORPUS * 8))


def save_deberta_nli(directory: Path, order: dict = DEBERTA_ORDER, seed: int = 0) -> Path:
    """A two-layer DebertaV2ForSequenceClassification (DeBERTa-v3 NLI's kind: relative positions, no absolute
    ones) with a unigram sentencepiece tokenizer."""
    torch.manual_seed(seed)
    tok = transformers.DebertaV2Tokenizer(vocab=_unigram_pieces(), model_max_length=64)
    cfg = transformers.DebertaV2Config(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=37, max_position_embeddings=64, relative_attention=True,
                                       position_buckets=16, pos_att_type=["p2c", "c2p"], position_biased_input=False,
                                       norm_rel_ebd="layer_norm", share_att_key=True, type_vocab_size=0,
                                       pooler_hidden_size=32, initializer_range=0.5, pad_token_id=tok.pad_token_id,
                                       **_labelled(order))
    transformers.DebertaV2ForSequenceClassification(cfg).save_pretrained(directory)
    tok.save_pretrained(directory)
    return Path(directory)


def save_xlmr_cross_encoder(directory: Path, seed: int = 0) -> Path:
    """A one-output XLMRobertaForSequenceClassification (bge-reranker's kind) with a unigram tokenizer whose
    special tokens stand where XLM-R's do (<s> 0, <pad> 1: the pad id is also the positions' padding index)."""
    torch.manual_seed(seed)
    special = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = [(t, 0.0) for t in special] + [p for p in _unigram_pieces() if p[0] not in special]
    tok = transformers.XLMRobertaTokenizer(vocab=vocab, model_max_length=64)
    cfg = transformers.XLMRobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=37, max_position_embeddings=66,
                                        initializer_range=0.5, pad_token_id=tok.pad_token_id,
                                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                        **_labelled({0: "LABEL_0"}))
    transformers.XLMRobertaForSequenceClassification(cfg).save_pretrained(directory)
    tok.save_pretrained(directory)
    return Path(directory)
