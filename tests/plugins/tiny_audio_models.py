"""Tiny random text-to-speech and CLAP models, saved with ``save_pretrained`` in transformers' own layout.

- SpeechT5: ``SpeechT5ForTextToSpeech`` with a character-level sentencepiece tokenizer trained here (as
  the real ``spm_char.model`` is), and its ``SpeechT5HifiGan`` vocoder in the ``vocoder/`` subdirectory.
- VITS: ``VitsModel`` with a ``VitsTokenizer`` over lower-case letters (vocab.json, blanks between
  characters, no phonemizer: the MMS-TTS layout).
- CLAP: ``ClapModel`` (a two-stage HTS-AT audio tower, a one-layer RoBERTa text tower) with its
  feature extractor at 48 kHz (1 s window) and a byte-level BPE tokenizer over single characters.

Each builds in about a second on a CPU.
"""
from __future__ import annotations

import json
import string
from pathlib import Path

LETTERS = string.ascii_lowercase
SENTENCES = ["hello world", "the quick brown fox jumps over the lazy dog", "speech synthesis from text",
             "a tiny model says something", "numbers and letters", "zebra quiz vex jog", "why pack my box"]


def _seed(seed: int = 0):
    import torch

    torch.manual_seed(seed)


def train_char_spm(prefix: Path) -> Path:
    """A character-level sentencepiece model over lower-case letters, ids as SpeechT5's (<s> 0, <pad> 1, </s> 2,
    <unk> 3)."""
    import sentencepiece as spm

    text = SENTENCES * 4 + [" ".join(LETTERS)]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_prefix=str(prefix), model_type="char",
                                   vocab_size=len(LETTERS) + 5, character_coverage=1.0, bos_id=0, pad_id=1,
                                   eos_id=2, unk_id=3, minloglevel=2)
    return prefix.with_suffix(".model")


def save_speecht5(root: Path, with_vocoder: bool = True, max_text_positions: int = 64) -> Path:
    """A one-layer SpeechT5 text-to-speech model (8 mel bins, 8-dim speaker embeddings) and a tiny HiFi-GAN."""
    import torch
    import transformers

    root.mkdir(parents=True, exist_ok=True)
    spm_file = train_char_spm(root.parent / f".{root.name}-spm")
    tokenizer = transformers.SpeechT5Tokenizer(str(spm_file))
    config = transformers.SpeechT5Config(
        vocab_size=tokenizer.vocab_size, hidden_size=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=8,
        speech_decoder_prenet_units=16, speech_decoder_postnet_layers=1, speech_decoder_postnet_units=16,
        speaker_embedding_dim=8, max_text_positions=max_text_positions, max_speech_positions=256,
        encoder_max_relative_position=16, reduction_factor=2)
    _seed()
    model = transformers.SpeechT5ForTextToSpeech(config).eval()
    with torch.no_grad():  # a stop probability near 0: the random decoder runs to its length limit
        model.speech_decoder_postnet.prob_out.bias.fill_(-20.0)
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    if with_vocoder:
        save_hifigan(root / "vocoder")
    return root


def save_hifigan(root: Path) -> Path:
    """A HiFi-GAN vocoder for 8 mel bins that upsamples each frame 16 times, at 16 kHz."""
    import transformers

    config = transformers.SpeechT5HifiGanConfig(model_in_dim=8, sampling_rate=16000, upsample_initial_channel=16,
                                                upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8],
                                                resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
                                                normalize_before=False)
    _seed(1)
    transformers.SpeechT5HifiGan(config).eval().save_pretrained(root)
    return root


def save_vits(root: Path, sampling_rate: int = 16000) -> Path:
    """A tiny VITS over lower-case letters and space, MMS-TTS style (no phonemizer), at ``sampling_rate``."""
    import transformers

    root.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(["<pad>", " "] + list(LETTERS) + ["<unk>"])}
    (root / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = transformers.VitsTokenizer(str(root / "vocab.json"), phonemize=False, add_blank=True, normalize=True)
    config = transformers.VitsConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=16, flow_size=16,
        spectrogram_bins=17, upsample_initial_channel=16, upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], duration_predictor_filter_channels=16,
        prior_encoder_num_flows=1, prior_encoder_num_wavenet_layers=1, posterior_encoder_num_wavenet_layers=1,
        duration_predictor_num_flows=1, depth_separable_num_layers=1, sampling_rate=sampling_rate)
    _seed()
    transformers.VitsModel(config).eval().save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


def save_clap(root: Path, fusion: bool = False) -> Path:
    """A tiny CLAP: HTS-AT audio tower over 16 mel bins of 1 s at 48 kHz, one-layer RoBERTa text tower.

    With ``fusion`` the audio tower fuses a long clip's three random crops and its whole (the feature
    extractor's 'fusion' truncation, which needs 64 mel bins), as laion/clap-htsat-fused does."""
    import transformers

    root.mkdir(parents=True, exist_ok=True)
    chars = list(LETTERS + " .,'")
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>"] + [_byte_level(c) for c in chars])}
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.RobertaTokenizer(str(root / "vocab.json"), str(root / "merges.txt"))
    text = dict(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=32, max_position_embeddings=64, projection_dim=8)
    mels = 64 if fusion else 16
    audio = dict(num_mel_bins=mels, spec_size=128 if fusion else 64, window_size=4, depths=[1, 1],
                 num_attention_heads=[2, 2], num_hidden_layers=2, hidden_size=32, patch_stride=[2, 2],
                 patch_embeds_hidden_size=16, projection_dim=8, enable_fusion=fusion,
                 fusion_type="aff_2d" if fusion else None)
    config = transformers.ClapConfig(text_config=text, audio_config=audio, projection_dim=8)
    _seed()
    transformers.ClapModel(config).eval().save_pretrained(root)
    tokenizer.save_pretrained(root)
    transformers.ClapFeatureExtractor(feature_size=mels, sampling_rate=48000, hop_length=480, max_length_s=1,
                                      fft_window_size=1024, truncation="fusion" if fusion else "rand_trunc"
                                      ).save_pretrained(root)
    return root


def _byte_level(ch: str) -> str:
    return "Ġ" if ch == " " else ch
