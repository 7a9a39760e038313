"""Tiny models for the export tests, each saved in its library's own format (built offline in well under a second).

A BERT whose WordPiece vocabulary spells words letter by letter (so different texts give different
token ids), saved once as a sentence-transformers embedder (CLS pooling, normalised: settings that must
travel with an export) and once as a 3-label classifier; timm's ``test_resnet`` and a one-layer open_clip
CLIP come from :mod:`tests.plugins.tiny_models`.
"""
from __future__ import annotations

import json
import string
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "plugins"))
import tiny_models  # noqa: E402

PIECES = list(string.ascii_lowercase) + list(string.digits) + list(".,!?;:'-")


def _bert(root: Path, head: bool):
    import torch
    import transformers

    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + PIECES + [f"##{p}" for p in PIECES]
    root.mkdir(parents=True, exist_ok=True)
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(root / "vocab.txt"))
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=128,
                                     id2label={0: "bad", 1: "neutral", 2: "good"})
    model = (transformers.BertForSequenceClassification if head else transformers.BertModel)(config)
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


def save_embedder(root: Path) -> Path:
    """A BERT sentence embedder with CLS pooling and normalisation in its sentence-transformers files."""
    _bert(root, head=False)
    (root / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (root / "1_Pooling").mkdir(exist_ok=True)
    (root / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32,
                                                                 "pooling_mode_cls_token": True}))
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
    return root


def save_classifier(root: Path) -> Path:
    """A BERT text classifier with labels bad / neutral / good."""
    return _bert(root, head=True)


def save_timm(root: Path) -> Path:
    return tiny_models.save_timm(root)


def save_clip(root: Path) -> Path:
    return tiny_models.save_openclip(root)


def save_ctc(root: Path) -> Path:
    return tiny_models.save_ctc(root)


def hub_export(source: Path, fmt: str, out: Path) -> Path:
    """``hub export SOURCE --format FMT --out OUT`` in-process (TorchScript exporter, one runtime thread)."""
    from click.testing import CliRunner

    from hub.cli import cli

    result = CliRunner(env={"HUB_ONNX_EXPORTER": "torchscript", "HUB_RUNTIME_THREADS": "1"}).invoke(
        cli, ["export", str(source), "--format", fmt, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out
