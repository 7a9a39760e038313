"""Numbers in English words paired with the same numbers in French words, and a tiny T5 to translate them.

Both sides come from ``num2words`` (``342`` -> "three hundred and forty-two" / "trois cent quarante-deux"). The
T5 is random (``T5ForConditionalGeneration``), its tokenizer a ``T5Tokenizer`` over a unigram sentencepiece
vocabulary trained here on the texts it is given (the training pairs only, in the learning test), saved with
``save_pretrained`` beside a generation config; building one takes well under a second.
"""
from __future__ import annotations

import io
import json
from pathlib import Path


def pair(number: int) -> tuple[str, str]:
    """(English words, French words) of ``number``."""
    from num2words import num2words

    return num2words(number), num2words(number, lang="fr")


def write_pairs(path: Path, numbers, source: str = "source", target: str = "target") -> Path:
    """A JSONL file of ``{"source": english, "target": french}`` rows, one per number."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({source: en, target: fr}, ensure_ascii=False) for en, fr in map(pair, numbers)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def t5_tokenizer(texts: list[str], vocab_size: int = 160):
    """A T5Tokenizer whose unigram vocabulary (``<pad>``, ``</s>``, ``<unk>`` first) is trained on ``texts``."""
    import sentencepiece as spm
    import transformers

    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=out, vocab_size=vocab_size,
                                   model_type="unigram", character_coverage=1.0, hard_vocab_limit=False,
                                   minloglevel=2, num_threads=1)
    sp = spm.SentencePieceProcessor(model_proto=out.getvalue())
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(sp.id_to_piece(i), sp.get_score(i)) for i in range(3, sp.get_piece_size())]  # after <unk> <s> </s>
    return transformers.T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=64)


def tiny_t5(directory: Path, texts: list[str], d_model: int = 16, layers: int = 1, seed: int = 0,
            task_specific_params: dict | None = None, max_length: int = 32, init: float = 1.0) -> Path:
    """A random T5 with ``layers`` encoder and decoder layers of width ``d_model``, and its tokenizer.

    ``init`` scales the initial weights (T5's ``initializer_factor``): large values make a random model's output
    depend on its input.
    """
    import torch
    import transformers

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = t5_tokenizer(texts)
    torch.manual_seed(seed)
    config = transformers.T5Config(vocab_size=len(tokenizer), d_model=d_model, d_kv=d_model // 4, d_ff=4 * d_model,
                                   num_layers=layers, num_decoder_layers=layers, num_heads=4, dropout_rate=0.1,
                                   relative_attention_num_buckets=16, decoder_start_token_id=tokenizer.pad_token_id,
                                   pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                   task_specific_params=task_specific_params, initializer_factor=init)
    model = transformers.T5ForConditionalGeneration(config)
    model.generation_config = transformers.GenerationConfig(
        decoder_start_token_id=tokenizer.pad_token_id, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, max_length=max_length)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory
