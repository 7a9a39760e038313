"""Tiny encoder-decoder models with real tokenizers, built offline and saved with ``save_pretrained``.

Marian (sentencepiece source/target models + vocab.json, as opus-mt ships them), T5 (a unigram tokenizer,
``task_specific_params`` as t5-small has them), BART (byte-level BPE) and mBART-50 (a unigram tokenizer with
the 52 language codes). Each tokenizer is trained here on a few English and German sentences; each model has
random weights. Every builder takes well under a second.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import transformers

CORPUS = [
    "The weather is nice today and the children play in the garden.",
    "Our small team finished the annual budget after months of planning.",
    "A quiet village celebrated the final match of the season.",
    "The research lab explained the results of a two-year study.",
    "My neighbour's dog questioned its noisy cooling fan yesterday!",
    "Where is the train station? I would like to buy a ticket to Berlin.",
    "Das Wetter ist heute schön und die Kinder spielen im Garten.",
    "Unser kleines Team hat das Jahresbudget nach Monaten der Planung fertiggestellt.",
    "Wo ist der Bahnhof? Ich möchte eine Fahrkarte nach Berlin kaufen.",
    "Le temps est beau aujourd'hui et les enfants jouent dans le jardin.",
    "Numbers such as 1, 2, 3, 42 and 1999 appear in text too.",
]
T5_TASKS = {
    "summarization": {"early_stopping": True, "length_penalty": 2.0, "max_length": 14, "min_length": 4,
                      "no_repeat_ngram_size": 3, "num_beams": 2, "prefix": "summarize: "},
    "translation_en_to_de": {"early_stopping": True, "max_length": 12, "num_beams": 2,
                             "prefix": "translate English to German: "},
    "translation_en_to_fr": {"early_stopping": True, "max_length": 12, "num_beams": 2,
                             "prefix": "translate English to French: "},
}
MAX_TOKENS = 64  # the tokenizers' model_max_length: short, so that long inputs are easy to make
SMALL = dict(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
             encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=128,
             init_std=0.5)  # weights large enough that the output depends on the input


def sentencepiece_model(vocab_size: int = 300, lines: list[str] | None = None) -> bytes:
    """A unigram sentencepiece model trained on ``lines`` (the corpus by default), as bytes."""
    import sentencepiece as spm

    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines or CORPUS * 4), model_writer=out,
                                   vocab_size=vocab_size, model_type="unigram", character_coverage=1.0,
                                   hard_vocab_limit=False, minloglevel=2, num_threads=1)
    return out.getvalue()


def pieces(model: bytes) -> list[tuple[str, float]]:
    """(piece, score) of every entry of a sentencepiece model, its own <unk>, <s>, </s> first."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=model)
    return [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]


def marian_tokenizer(root: Path, vocab_size: int = 300, pad_to: int | None = None, source_lang="en",
                     target_lang="de", lines: list[str] | None = None):
    """A MarianTokenizer as opus-mt ships it: source.spm, target.spm and vocab.json (``pad_to`` ids in all)."""
    root.mkdir(parents=True, exist_ok=True)
    model = sentencepiece_model(vocab_size, lines)
    for name in ("source.spm", "target.spm"):
        (root / name).write_bytes(model)
    words = ["</s>", "<unk>"] + [p for p, _ in pieces(model) if p not in ("<unk>", "<s>", "</s>")]
    if pad_to:
        words += [f"<unused{i}>" for i in range(pad_to - len(words) - 1)]
    vocab = {w: i for i, w in enumerate(words + ["<pad>"])}
    (root / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    return transformers.MarianTokenizer(str(root / "source.spm"), str(root / "target.spm"), str(root / "vocab.json"),
                                        source_lang=source_lang, target_lang=target_lang,
                                        model_max_length=MAX_TOKENS)


def save(model, tokenizer, root: Path, **generation) -> Path:
    for key, value in generation.items():
        setattr(model.generation_config, key, value)
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


def save_marian(root: Path) -> Path:
    """A one-layer Marian en->de model; beam 2 and at most 12 tokens from its generation config."""
    tok = marian_tokenizer(root)
    pad = tok.pad_token_id
    config = transformers.MarianConfig(vocab_size=len(tok), pad_token_id=pad, decoder_start_token_id=pad,
                                       eos_token_id=tok.eos_token_id, forced_eos_token_id=tok.eos_token_id, **SMALL)
    return save(transformers.MarianMTModel(config), tok, root, num_beams=2, max_length=12, bad_words_ids=[[pad]])


def save_t5(root: Path) -> Path:
    """A one-layer T5 with t5-small's kinds of task_specific_params (summarization, en->de, en->fr)."""
    model = sentencepiece_model()
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [p for p in pieces(model)[3:]]
    tok = transformers.T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=MAX_TOKENS)
    config = transformers.T5Config(vocab_size=len(tok), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                                   relative_attention_num_buckets=8, initializer_factor=20.0,
                                   decoder_start_token_id=tok.pad_token_id,
                                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                                   task_specific_params=T5_TASKS)
    return save(transformers.T5ForConditionalGeneration(config), tok, root, max_length=12)


def save_bart(root: Path) -> Path:
    """A one-layer BART summariser (byte-level BPE), generation settings like bart-large-cnn's, smaller."""
    from tokenizers import ByteLevelBPETokenizer

    root.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS * 3, vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                            show_progress=False)
    bpe.save_model(str(root))
    tok = transformers.BartTokenizer(vocab=str(root / "vocab.json"), merges=str(root / "merges.txt"),
                                     model_max_length=MAX_TOKENS)
    summary = {"summarization": {"num_beams": 2, "max_length": 14, "min_length": 3}}
    config = transformers.BartConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                                     eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.eos_token_id,
                                     forced_bos_token_id=tok.bos_token_id, task_specific_params=summary,
                                     architectures=["BartForConditionalGeneration"], **SMALL)
    return save(transformers.BartForConditionalGeneration(config), tok, root, num_beams=2, max_length=14,
                min_length=3, no_repeat_ngram_size=3, length_penalty=2.0, early_stopping=True)


def save_mbart(root: Path) -> Path:
    """A one-layer mBART-50 many-to-many model with the 52 language codes (source en_XX by default)."""
    tok = transformers.MBart50Tokenizer(vocab=pieces(sentencepiece_model()), src_lang="en_XX",
                                        model_max_length=MAX_TOKENS)
    config = transformers.MBartConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=0,
                                      eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.eos_token_id,
                                      architectures=["MBartForConditionalGeneration"], **SMALL)
    return save(transformers.MBartForConditionalGeneration(config), tok, root, num_beams=2, max_length=12)


BUILDERS = {"marian": save_marian, "t5": save_t5, "bart": save_bart, "mbart": save_mbart}
