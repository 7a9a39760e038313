"""The transformers plugin's models keep the plugin contract, checked with the test kit (hub.testing).

Every task the plugin serves is checked on a model built offline: the real MiniLM from its package,
and tiny BERT, GPT-2 and wav2vec2 models saved in transformers' own format and loaded by path.
"""
from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from hub.testing import check_model_contract  # noqa: E402
from test_transformers_speech import _wav2vec2_config, _wav2vec2_fe  # noqa: E402
from test_transformers_text import NER_LABELS, bert_config, bert_tokenizer, save, tiny_gpt2  # noqa: E402
from tiny_models import save_ctc  # noqa: E402

pytestmark = [pytest.mark.mmhub_plugins("transformers"), pytest.mark.slow]  # slow: tiny backbone models
TEXTS = ["hello world", "John lives in London and Mary in Berlin.", "a good movie", "the capital of France"]
PROCESS_CHECKS = ("listing-imports", "import-time")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tiny models for every task but text-embedding, each in its own directory."""
    import torch
    import transformers

    torch.manual_seed(0)
    tok, root = bert_tokenizer(), tmp_path_factory.mktemp("tiny")
    labels = {"id2label": {0: "negative", 1: "neutral", 2: "positive"}}
    speech_labels = {"id2label": {0: "yes", 1: "no", 2: "silence"}, "classifier_proj_size": 16}
    return {
        "text-classification": save(transformers.BertForSequenceClassification(bert_config(tok, **labels)), tok,
                                    root / "cls"),
        "fill-mask": save(transformers.BertForMaskedLM(bert_config(tok)), tok, root / "mlm"),
        "token-classification": save(transformers.BertForTokenClassification(bert_config(tok, id2label=NER_LABELS)),
                                     tok, root / "ner"),
        "text-generation": save(*tiny_gpt2(), root / "gpt2"),
        "speech-recognition": save_ctc_layer_norm(root / "ctc"),
        "speech-recognition-group-norm": save_ctc(root / "ctc-group-norm"),
        "whisper": save_whisper(root / "whisper"),
        "audio-classification": save(transformers.Wav2Vec2ForSequenceClassification(_wav2vec2_config(**speech_labels)),
                                     _wav2vec2_fe(), root / "w2v-cls"),
    }


def save_ctc_layer_norm(path):
    """A tiny wav2vec2 CTC model with a layer-norm feature encoder (it takes an attention mask)."""
    import json

    import transformers

    path.mkdir(parents=True)
    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", "|", "A", "B", "C"])}
    (path / "vocab.json").write_text(json.dumps(vocab))
    transformers.Wav2Vec2CTCTokenizer(str(path / "vocab.json")).save_pretrained(path)
    model = transformers.Wav2Vec2ForCTC(_wav2vec2_config(vocab_size=len(vocab), pad_token_id=0))
    return save(model, _wav2vec2_fe(), path)


def save_whisper(path):
    """A tiny Whisper over lower-case letters, its generation limited to 24 tokens, with its processor."""
    import string

    import torch
    import transformers

    tok = transformers.WhisperTokenizer(vocab={c: i for i, c in enumerate(["Ġ", *string.ascii_lowercase])}, merges=[])
    special = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>", "<|notimestamps|>"]
    tok.add_special_tokens({"additional_special_tokens": special})
    ids, eos = [tok.convert_tokens_to_ids(t) for t in special], tok.convert_tokens_to_ids("<|endoftext|>")
    config = transformers.WhisperConfig(
        vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_target_positions=32,
        init_std=1.0, pad_token_id=eos, bos_token_id=eos, eos_token_id=eos, decoder_start_token_id=ids[0],
        suppress_tokens=[],
        begin_suppress_tokens=[eos])
    torch.manual_seed(1)
    model = transformers.WhisperForConditionalGeneration(config)
    gen = model.generation_config
    gen.max_length, gen.suppress_tokens, gen.no_timestamps_token_id = 24, ids, ids[4]
    gen.lang_to_id, gen.task_to_id = {"<|en|>": ids[1]}, {"transcribe": ids[2], "translate": ids[3]}
    gen.is_multilingual, gen._from_model_config = True, False
    processor = transformers.WhisperProcessor(transformers.WhisperFeatureExtractor(feature_size=80), tok)
    return save(model, processor, path)


def clips():
    """Three mono clips of different lengths at 16 kHz: two tones and noise."""
    import numpy as np

    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    return [(np.sin(2 * np.pi * 440 * t[:12000]).astype("float32"), 16000),
            ((0.1 * rng.standard_normal(16000)).astype("float32"), 16000),
            (np.sin(2 * np.pi * 220 * t[:8000]).astype("float32"), 16000)]


def test_minilm_keeps_the_contract_and_the_plugin_imports_light(isolated_hub):
    report = check_model_contract("all-minilm-l6-v2", TEXTS)
    assert set(PROCESS_CHECKS) <= set(report.checked) and not report.skipped


@pytest.mark.parametrize("task, inputs", [
    ("text-classification", TEXTS),
    ("fill-mask", ["paris is the [MASK] of france", "hello [MASK]", "a [MASK] movie"]),
    ("token-classification", TEXTS),
    ("text-generation", ["Hello world", "the city of Paris is the", "France"]),
])
def test_text_models_keep_the_contract(isolated_hub, tiny, task, inputs):
    report = check_model_contract(str(tiny[task]), inputs, task=task, skip=PROCESS_CHECKS)
    assert report.checked and set(report.skipped) == set(PROCESS_CHECKS)


@pytest.mark.parametrize("model, task", [("speech-recognition", "speech-recognition"), ("whisper", "speech-recognition"),
                                         ("audio-classification", "audio-classification")])
def test_speech_models_keep_the_contract(isolated_hub, tiny, model, task):
    check_model_contract(str(tiny[model]), clips(), task=task, skip=PROCESS_CHECKS)


def test_group_norm_ctc_models_transcribe_the_same_in_any_batch(isolated_hub, tiny):
    check_model_contract(str(tiny["speech-recognition-group-norm"]), clips(), task="speech-recognition",
                         properties=["single-input", "batch-size"])
