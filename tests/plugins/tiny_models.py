"""Tiny models of each shipped plugin's library, saved in that library's own format, for tests.

transformers: a BERT text classifier (``save_pretrained``) and a wav2vec2 CTC model; timm: ``test_resnet``
(``save_for_hf``); open_clip: a one-layer CLIP in open_clip's hub layout. Each builds in well under a second.
"""
from __future__ import annotations

import json
import string
from pathlib import Path

import open_clip
import timm
import transformers

CLIP_CONFIG = {"embed_dim": 16,
               "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
               "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def save_transformers(root: Path) -> Path:
    """A one-layer BERT text classifier (labels no / yes) with a WordPiece tokenizer over letters."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.ascii_lowercase)
    tokenizer = transformers.BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=16, max_position_embeddings=32,
                                     id2label={0: "no", 1: "yes"})
    model = transformers.BertForSequenceClassification(config)
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


def save_timm(root: Path) -> Path:
    """timm's test_resnet with 3 classes, asking for 32x32 inputs in its own pretrained config."""
    from timm.models import save_for_hf

    model = timm.create_model("test_resnet", pretrained=False, num_classes=3,
                              pretrained_cfg_overlay={"input_size": (3, 32, 32)})
    save_for_hf(model, str(root), safe_serialization=True)
    return root


def save_openclip(root: Path) -> Path:
    """A one-layer ViT CLIP: open_clip_config.json beside open_clip_model.safetensors."""
    from open_clip.push_to_hf_hub import save_config_for_hf
    from safetensors.torch import save_file

    model = open_clip.CLIP(**CLIP_CONFIG)
    model.visual.image_mean, model.visual.image_std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    root.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), root / "open_clip_model.safetensors")
    save_config_for_hf(model, root / "open_clip_config.json", CLIP_CONFIG)
    return root


def save_ctc(root: Path) -> Path:
    """A tiny wav2vec2 CTC model over a few characters, with its tokenizer and feature extractor."""
    root.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", "|", "A", "B", "C"])}
    (root / "vocab.json").write_text(json.dumps(vocab))
    transformers.Wav2Vec2CTCTokenizer(str(root / "vocab.json")).save_pretrained(root)
    config = transformers.Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=16, conv_dim=(8,) * 7, num_conv_pos_embeddings=16,
                                         num_conv_pos_embedding_groups=2, vocab_size=len(vocab), pad_token_id=0)
    transformers.Wav2Vec2ForCTC(config).save_pretrained(root)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True).save_pretrained(root)
    return root
