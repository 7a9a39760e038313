"""Tiny generating models of every shipped generation pipeline, for the bound and burst tests.

GPT-2 (text generation), Marian (translation), BART (summarization), BLIP and ViT-GPT2 (transformers captioning),
CoCa (open_clip captioning), Whisper (speech recognition) and a BERT question-answering model, each built here
or by the other tiny builders, saved in its library's own format, in well under a second each.
"""
from __future__ import annotations

import transformers

from plugins.tiny_captioners import save_blip, save_coca, save_vit_gpt2
from plugins.tiny_qa import save_qa
from plugins.tiny_seq2seq import save_bart, save_marian

QUESTION = "who lives in paris?"


def save_gpt2(root):
    """A two-layer GPT-2 with a 64-token context and a byte-level BPE over a few sentences."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["hello world, the city of paris is the capital of france"] * 3, vocab_size=300,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                               bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    config = transformers.GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    transformers.GPT2LMHeadModel(config).save_pretrained(root)
    tok.save_pretrained(root)
    return root


def save_whisper(root):
    """A one-layer multilingual Whisper with 32 decoder positions over printable ASCII."""
    vocab = {c: i for i, c in enumerate(["Ġ"] + [chr(b) for b in range(33, 127)])}
    tok = transformers.WhisperTokenizer(vocab=vocab, merges=[])
    specials = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>", "<|notimestamps|>"]
    tok.add_special_tokens({"additional_special_tokens": specials})
    ids = {s: tok.convert_tokens_to_ids(s) for s in specials}
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    config = transformers.WhisperConfig(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1,
                                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                                        decoder_ffn_dim=32, max_target_positions=32, pad_token_id=eos,
                                        bos_token_id=eos, eos_token_id=eos,
                                        decoder_start_token_id=ids["<|startoftranscript|>"])
    model = transformers.WhisperForConditionalGeneration(config)
    gen = model.generation_config
    gen.suppress_tokens, gen.begin_suppress_tokens, gen.max_length = sorted(ids.values()), [eos], 20
    gen.no_timestamps_token_id = ids["<|notimestamps|>"]
    gen.lang_to_id = {"<|en|>": ids["<|en|>"]}
    gen.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
    gen.is_multilingual, gen._from_model_config = True, False
    model.save_pretrained(root)
    transformers.WhisperProcessor(transformers.WhisperFeatureExtractor(feature_size=80), tok).save_pretrained(root)
    return root


# name: (builder, task, kind of input, options every call needs)
MODELS = {
    "bound-gpt2": (save_gpt2, "text-generation", "text", {}),
    "bound-marian": (save_marian, "translation", "text", {}),
    "bound-bart": (save_bart, "summarization", "text", {}),
    "bound-blip": (save_blip, "image-captioning", "image", {}),
    "bound-vitgpt2": (save_vit_gpt2, "image-captioning", "image", {}),
    "bound-coca": (save_coca, "image-captioning", "image", {"seq_len": 10}),  # its default 30 passes its context
    "bound-qa": (lambda root: save_qa("bert", root), "question-answering", "text", {"question": QUESTION}),
    "bound-whisper": (save_whisper, "speech-recognition", "audio", {}),
}


def bounded(pipe) -> dict:
    """Every integer option with a largest value: the model's (``limits()``), else the option's own maximum."""
    limits = pipe.limits()
    out = {}
    for option in pipe.call_options:
        if option.type is not int:
            continue
        bound = limits.get(option.name, option.maximum)
        if bound is not None:
            out[option.name] = int(bound[0] if isinstance(bound, tuple) else bound)
    return out
