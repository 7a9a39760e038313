"""Tiny image captioners with random weights, built offline and saved in each library's own on-disk form.

- CoCa: open_clip's ``CoCa`` with a one-layer ViT, text tower and multimodal decoder over open_clip's own
  CLIP tokenizer (it ships inside the package), saved in open_clip's hub layout (``open_clip_config.json``
  with the model config, ``open_clip_model.safetensors``).
- BLIP: ``BlipForConditionalGeneration`` with a BERT WordPiece tokenizer over a small word list (``[DEC]`` as
  its start token, as BLIP's is), saved with ``BlipProcessor`` as the Salesforce checkpoints are.
- ViT-GPT2: ``VisionEncoderDecoderModel`` of a ViT encoder and a GPT-2 decoder with cross-attention, a
  byte-level BPE tokenizer trained here, saved as nlpconnect/vit-gpt2-image-captioning is.

Weights are scaled up so that the captions depend on the image. Each builder takes well under a second.
"""
from __future__ import annotations

from pathlib import Path

import transformers

IMAGE = 32
WORDS = ("a an the of on in with and two cat cats dog dogs man woman sitting standing red blue green small large "
         "picture photo table grass street car bus boy girl playing next to field water tree sky").split()
CAPTIONS = ["a cat sitting on the table", "two dogs playing in the grass", "a man standing next to a red car",
            "a small boy with a blue ball", "a woman sitting under a large tree", "a bus on the street"]
COCA_CONFIG = {
    "embed_dim": 32,  # the width of the image tokens the multimodal decoder attends to
    "vision_cfg": {"image_size": IMAGE, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16,
                   "attentional_pool": True, "attn_pooler_heads": 2, "output_tokens": True},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                 "embed_cls": True, "output_tokens": True},
    "multimodal_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                       "attn_pooler_heads": 2},
    "custom_text": True,
}


def scaled(model, factor: float):
    """Every weight matrix scaled by ``factor``: random tiny models otherwise write the same tokens for any image."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2:
                param.mul_(factor)
    return model


def save_coca(root: Path) -> Path:
    """A one-layer CoCa in open_clip's hub layout."""
    import open_clip
    from open_clip.push_to_hf_hub import save_config_for_hf
    from safetensors.torch import save_file

    import torch

    model = open_clip.CoCa(**{k: v for k, v in COCA_CONFIG.items() if k != "custom_text"})
    projection = model.text_decoder.text_projection  # left as allocated by open_clip (zeros): logits all alike
    torch.nn.init.normal_(projection, std=projection.shape[0] ** -0.5)
    model = scaled(model, 2.0)
    model.visual.image_mean, model.visual.image_std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    root.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, root / "open_clip_model.safetensors")
    save_config_for_hf(model, root / "open_clip_config.json", COCA_CONFIG)
    return root


def bert_tokenizer(root: Path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "under", "ball", "[DEC]", "[ENC]"]
    root.mkdir(parents=True, exist_ok=True)
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = transformers.BertTokenizer(str(root / "vocab.txt"), model_max_length=32, bos_token="[DEC]")
    return tok


def save_blip(root: Path) -> Path:
    """A one-layer BLIP captioner (32x32 images) with its processor."""
    tok = bert_tokenizer(root)
    text = dict(vocab_size=len(tok), hidden_size=16, encoder_hidden_size=16, intermediate_size=32,
                num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                bos_token_id=tok.convert_tokens_to_ids("[DEC]"), sep_token_id=tok.sep_token_id,
                pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=IMAGE,
                  patch_size=8, initializer_range=0.02)  # BLIP's own default (1e-10) leaves the image out
    config = transformers.BlipConfig(text_config=text, vision_config=vision, projection_dim=16,
                                     architectures=["BlipForConditionalGeneration"])
    model = scaled(transformers.BlipForConditionalGeneration(config), 4.0)
    model.generation_config.max_length = 12
    processor = transformers.BlipProcessor(
        transformers.BlipImageProcessor(size={"height": IMAGE, "width": IMAGE}), tok)
    model.save_pretrained(root)
    processor.save_pretrained(root)
    return root


def gpt2_tokenizer(root: Path):
    from tokenizers import ByteLevelBPETokenizer

    root.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CAPTIONS * 3 + [" ".join(WORDS)], vocab_size=300, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    bpe.save_model(str(root))
    return transformers.GPT2Tokenizer(vocab=str(root / "vocab.json"), merges=str(root / "merges.txt"),
                                      model_max_length=32)


def save_vit_gpt2(root: Path) -> Path:
    """A one-layer ViT encoder with a one-layer GPT-2 decoder (cross-attention), as ViT-GPT2 captioners are."""
    tok = gpt2_tokenizer(root)
    eos = tok.eos_token_id
    encoder = transformers.ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                     image_size=IMAGE, patch_size=8)
    decoder = transformers.GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=16, n_layer=1, n_head=2,
                                      add_cross_attention=True, is_decoder=True, bos_token_id=eos, eos_token_id=eos,
                                      pad_token_id=eos)
    config = transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = eos, eos, eos
    model = scaled(transformers.VisionEncoderDecoderModel(config), 3.0)
    model.generation_config.decoder_start_token_id = eos
    model.generation_config.pad_token_id = eos
    model.generation_config.eos_token_id = eos
    model.generation_config.max_length = 12
    model.generation_config.num_beams = 2
    model.save_pretrained(root)
    tok.save_pretrained(root)
    transformers.ViTImageProcessor(size={"height": IMAGE, "width": IMAGE}).save_pretrained(root)
    return root


def images(count: int = 4, size: int = 48):
    """``count`` different RGB images (PIL): coloured stripes and blocks, seeded."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        pixels[: size // 2, :, i % 3] = 255
        out.append(Image.fromarray(pixels))
    return out


BUILDERS = {"blip": save_blip, "vit-gpt2": save_vit_gpt2}
