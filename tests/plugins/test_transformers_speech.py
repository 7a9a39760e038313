"""Speech pipelines of the transformers plugin against direct transformers calls on tiny models.

Tiny Whisper, wav2vec2-CTC, wav2vec2 and AST models are built here, saved with ``save_pretrained``
and loaded through the hub by path. Speech comes from espeak-ng; a sine at 8 kHz exercises resampling.
"""
import json
import shutil
import subprocess
import warnings

import numpy as np
import pytest

import hub
from hub.errors import InputError

pytestmark = pytest.mark.slow  # tiny backbone models

RATE = 16000
CTC_CHARS = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ'")


# -- inputs ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory):
    """'hello world' spoken by espeak-ng (22.05 kHz wav)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed (apt-get install -y espeak-ng); it synthesises the test speech")
    path = tmp_path_factory.mktemp("audio") / "hello.wav"
    subprocess.run([exe, "-w", str(path), "hello world"], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def speech(speech_wav):
    """The espeak speech as a float waveform at 16 kHz (what the hub's loader gives the model)."""
    from hub.inputs import load_audio

    return load_audio(str(speech_wav), RATE)


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory, speech):
    """50 s of tiled speech, written as flac."""
    import soundfile as sf

    reps = int(np.ceil(50 * RATE / len(speech)))
    wave = np.tile(speech, reps)[:50 * RATE]
    path = tmp_path_factory.mktemp("audio") / "long.flac"
    sf.write(str(path), wave, RATE)
    return path


def sine_8k(seconds=1.5):
    t = np.arange(int(8000 * seconds)) / 8000
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def resampled_sine():
    from scipy.signal import resample_poly

    return resample_poly(sine_8k(), 2, 1).astype(np.float32)


# -- tiny models ----------------------------------------------------------------------------------
def _seed():
    import torch

    torch.manual_seed(0)


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    """A tiny multilingual Whisper with a byte-level tokenizer over printable ASCII."""
    from transformers import (WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
                              WhisperProcessor, WhisperTokenizer)

    vocab = {c: i for i, c in enumerate(["Ġ"] + [chr(b) for b in range(33, 127)])}
    tok = WhisperTokenizer(vocab=vocab, merges=[])
    specials = ["<|startoftranscript|>", "<|en|>", "<|de|>", "<|translate|>", "<|transcribe|>",
                "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
    tok.add_special_tokens({"additional_special_tokens": specials})
    ids = {s: tok.convert_tokens_to_ids(s) for s in specials}
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    config = WhisperConfig(vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, max_target_positions=64, init_std=1.0, pad_token_id=eos,
                           bos_token_id=eos, eos_token_id=eos, decoder_start_token_id=ids["<|startoftranscript|>"],
                           begin_suppress_tokens=[eos], suppress_tokens=[])
    _seed()
    model = WhisperForConditionalGeneration(config).eval()
    gen = model.generation_config
    gen.suppress_tokens = sorted(ids.values())  # keep the random model's output textual
    gen.begin_suppress_tokens, gen.max_length = [eos], 40
    gen.no_timestamps_token_id = ids["<|notimestamps|>"]
    gen.lang_to_id = {"<|en|>": ids["<|en|>"], "<|de|>": ids["<|de|>"]}
    gen.task_to_id = {"translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"]}
    gen.is_multilingual = True
    gen._from_model_config = False  # else the extra Whisper fields are dropped on loading, as in a real checkpoint
    path = tmp_path_factory.mktemp("whisper")
    model.save_pretrained(path)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tok).save_pretrained(path)
    return path


def _wav2vec2_config(**extra):
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                          feat_extract_norm="layer", do_stable_layer_norm=True, initializer_range=0.5, **extra)


def _wav2vec2_fe():
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(sampling_rate=RATE, do_normalize=True, return_attention_mask=True)


@pytest.fixture(scope="module")
def ctc_dir(tmp_path_factory):
    """A tiny Wav2Vec2ForCTC with a character CTC tokenizer."""
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2ForCTC

    path = tmp_path_factory.mktemp("ctc")
    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", "|"] + CTC_CHARS)}
    (path / "vocab.json").write_text(json.dumps(vocab))
    tok = Wav2Vec2CTCTokenizer(str(path / "vocab.json"))
    _seed()
    model = Wav2Vec2ForCTC(_wav2vec2_config(vocab_size=len(vocab), pad_token_id=0)).eval()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    _wav2vec2_fe().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def w2v_cls_dir(tmp_path_factory):
    from transformers import Wav2Vec2ForSequenceClassification

    labels = ["yes", "no", "silence"]
    config = _wav2vec2_config(num_labels=3, id2label=dict(enumerate(labels)),
                              label2id={n: i for i, n in enumerate(labels)}, classifier_proj_size=16)
    _seed()
    model = Wav2Vec2ForSequenceClassification(config).eval()
    path = tmp_path_factory.mktemp("w2v_cls")
    model.save_pretrained(path)
    _wav2vec2_fe().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def ast_dir(tmp_path_factory):
    """A tiny AST on 16 mel bins and 1 s (100 frames) of audio."""
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    labels = [f"sound_{i}" for i in range(7)]
    config = ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       num_mel_bins=16, max_length=100, num_labels=7, id2label=dict(enumerate(labels)),
                       label2id={n: i for i, n in enumerate(labels)}, initializer_range=0.5)
    _seed()
    model = ASTForAudioClassification(config).eval()
    path = tmp_path_factory.mktemp("ast")
    model.save_pretrained(path)
    ASTFeatureExtractor(num_mel_bins=16, max_length=100).save_pretrained(path)
    return path


def _load(path, task, **options):
    return hub.load(str(path), task=task, dtype="fp32", device="cpu", **options)


def _direct(path, auto):
    import transformers

    model = getattr(transformers, auto).from_pretrained(str(path)).eval()
    fe = transformers.AutoFeatureExtractor.from_pretrained(str(path))
    return model, fe


# -- Whisper --------------------------------------------------------------------------------------
def _whisper_tokens(model, fe, wave, **kwargs):
    import torch

    feats = fe(wave, sampling_rate=RATE, return_tensors="pt").input_features
    with torch.inference_mode():
        return model.generate(feats, do_sample=False, num_beams=1, **kwargs)[0].tolist()


def test_whisper_tokens_and_text_equal_generate(whisper_dir, speech, speech_wav):
    import torch
    from transformers import AutoTokenizer

    model, fe = _direct(whisper_dir, "WhisperForConditionalGeneration")
    tok = AutoTokenizer.from_pretrained(str(whisper_dir))
    pipe = _load(whisper_dir, "speech-recognition")
    assert type(pipe).__name__ == "Seq2SeqRecognitionPipeline"
    expected = _whisper_tokens(model, fe, speech, max_new_tokens=12)
    with torch.inference_mode():
        ours = pipe.forward(pipe.preprocess([speech]), max_new_tokens=12)
    assert [t.tolist() for t in ours] == [expected]
    result = pipe(str(speech_wav), max_new_tokens=12)
    assert result.text == tok.decode(expected, skip_special_tokens=True).strip() != ""
    assert len(result.chunks) == 1 and result.chunks[0].start == 0.0
    assert result.chunks[0].end == pytest.approx(len(speech) / RATE, abs=1e-3)


def test_whisper_language_and_task(whisper_dir, speech):
    model, fe = _direct(whisper_dir, "WhisperForConditionalGeneration")
    pipe = _load(whisper_dir, "asr")
    expected = _whisper_tokens(model, fe, speech, max_new_tokens=8, language="de", task="translate")
    ours = pipe((speech, RATE), max_new_tokens=8, language="german", task="translate")
    assert ours.text == pipe.tokenizer.decode(expected, skip_special_tokens=True).strip()
    with pytest.raises(InputError, match="language 'klingon'"):
        pipe((speech, RATE), language="klingon")
    with pytest.raises(InputError, match="'task' .* must be one of transcribe, translate; got 'summarise'"):
        pipe((speech, RATE), task="summarise")


def test_whisper_resamples_8khz(whisper_dir):
    model, fe = _direct(whisper_dir, "WhisperForConditionalGeneration")
    expected = _whisper_tokens(model, fe, resampled_sine(), max_new_tokens=10)
    pipe = _load(whisper_dir, "speech-recognition")
    assert pipe((sine_8k(), 8000), max_new_tokens=10).text == pipe.tokenizer.decode(
        expected, skip_special_tokens=True).strip()


def test_whisper_long_audio_in_30s_windows(whisper_dir, long_wav):
    import soundfile as sf

    model, fe = _direct(whisper_dir, "WhisperForConditionalGeneration")
    pipe = _load(whisper_dir, "speech-recognition")
    result = pipe(str(long_wav), max_new_tokens=6)
    assert [(c.start, c.end) for c in result.chunks] == [(0.0, 30.0), (30.0, 50.0)]
    wave, _ = sf.read(str(long_wav), dtype="float32")
    for chunk, part in zip(result.chunks, (wave[:30 * RATE], wave[30 * RATE:])):
        assert chunk.text == pipe.tokenizer.decode(_whisper_tokens(model, fe, part, max_new_tokens=6),
                                                   skip_special_tokens=True).strip()
    assert result.text == " ".join(c.text for c in result.chunks)


def test_whisper_batch_keeps_order(whisper_dir, speech, long_wav):
    pipe = _load(whisper_dir, "speech-recognition")
    inputs = [(speech, RATE), str(long_wav), (sine_8k(), 8000)]
    singles = [pipe(x, max_new_tokens=6) for x in inputs]
    assert pipe(inputs, batch_size=2, max_new_tokens=6) == singles


# -- CTC ------------------------------------------------------------------------------------------
def _ctc_direct(path, wave):
    import torch

    model, fe = _direct(path, "Wav2Vec2ForCTC")
    inputs = fe(wave, sampling_rate=RATE, return_tensors="pt")
    with torch.inference_mode():
        return model(**inputs).logits[0]


def test_ctc_logits_and_text_equal_direct(ctc_dir, speech, speech_wav):
    import torch
    from transformers import AutoTokenizer

    logits = _ctc_direct(ctc_dir, speech)
    pipe = _load(ctc_dir, "speech-recognition")
    assert type(pipe).__name__ == "CTCRecognitionPipeline"
    with torch.inference_mode():
        ours = pipe.forward(pipe.preprocess([speech]))
    assert (ours[0] - logits).abs().max().item() <= 1e-5
    expected = AutoTokenizer.from_pretrained(str(ctc_dir)).decode(logits.argmax(-1).tolist()).strip()
    result = pipe(str(speech_wav))
    assert result.text == expected != ""
    assert len(result.chunks) == 1 and result.chunks[0].text == expected


def test_ctc_resamples_8khz(ctc_dir):
    logits = _ctc_direct(ctc_dir, resampled_sine())
    pipe = _load(ctc_dir, "speech-recognition")
    assert pipe((sine_8k(), 8000)).text == pipe.tokenizer.decode(logits.argmax(-1).tolist()).strip()


def test_ctc_long_audio_in_overlapping_windows(ctc_dir, long_wav):
    import soundfile as sf

    pipe = _load(ctc_dir, "speech-recognition")
    result = pipe(str(long_wav))  # 20 s windows, 10/3 s overlap each side: kept spans tile 0..50 s
    spans = [(c.start, c.end) for c in result.chunks]
    assert len(spans) == 4 and spans[0][0] == 0.0 and spans[-1][1] == 50.0
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    whole = _load(ctc_dir, "speech-recognition", chunk_s=60)(str(long_wav))
    wave, _ = sf.read(str(long_wav), dtype="float32")
    assert len(whole.chunks) == 1
    assert whole.text == pipe.tokenizer.decode(_ctc_direct(ctc_dir, wave).argmax(-1).tolist()).strip()


def test_ctc_batch_matches_singles(ctc_dir, speech):
    pipe = _load(ctc_dir, "speech-recognition")
    inputs = [(speech[:RATE // 2], RATE), (speech, RATE), (sine_8k(), 8000)]
    assert [r.text for r in pipe(inputs, batch_size=3)] == [pipe(x).text for x in inputs]


def test_ctc_rejects_language_and_bad_chunking(ctc_dir, speech):
    pipe = _load(ctc_dir, "speech-recognition")
    with pytest.raises(InputError, match="CTC .* does not take the option 'language'"):
        pipe((speech, RATE), language="en")
    with pytest.raises(InputError, match="chunk_s"):
        pipe((speech, RATE), chunk_s=1, stride_s=0.5)


# -- audio classification -------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:.*truncated")
@pytest.mark.parametrize("which", ["w2v", "ast"])
def test_audio_classification_equals_direct(which, w2v_cls_dir, ast_dir, speech, speech_wav):
    import torch

    path = {"w2v": w2v_cls_dir, "ast": ast_dir}[which]
    model, fe = _direct(path, "AutoModelForAudioClassification")
    pipe = _load(path, "audio-classification")
    for given, wave in [(str(speech_wav), speech), ((sine_8k(), 8000), resampled_sine())]:
        with torch.inference_mode():
            probs = model(**fe(wave, sampling_rate=RATE, return_tensors="pt")).logits.softmax(-1)[0]
        result = pipe(given, top_k=3)
        assert len(result.labels) == 3
        top = probs.topk(3)
        assert [l.index for l in result.labels] == top.indices.tolist()
        assert [l.label for l in result.labels] == [model.config.id2label[i] for i in top.indices.tolist()]
        assert np.abs(np.array([l.score for l in result.labels]) - top.values.numpy()).max() <= 1e-5
    assert len(pipe((speech, RATE), top_k=100).labels) == model.config.num_labels


def test_ast_warns_when_audio_is_truncated(ast_dir, speech):
    pipe = _load(ast_dir, "audio-classification", cache=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipe((np.tile(speech, 3), RATE))
    assert any("truncated" in str(w.message) for w in caught)


# -- errors and detection -------------------------------------------------------------------------
def test_errors_name_the_file_and_the_fix(ctc_dir, tmp_path):
    pipe = _load(ctc_dir, "speech-recognition")
    assert pipe([]) == []
    for name in ("clip.mp4", "notes.txt"):
        (tmp_path / name).write_bytes(b"not audio")
        with pytest.raises(InputError, match=r"unsupported format.*\.wav") as err:
            pipe(str(tmp_path / name))
        assert name in str(err.value)
    with pytest.raises(InputError, match="missing.wav.*does not exist"):
        pipe(str(tmp_path / "missing.wav"))
    with pytest.raises(InputError, match="empty"):
        pipe((np.zeros(0, dtype=np.float32), RATE))
    with pytest.raises(InputError, match=r"is 6.2 ms long.*at least 25.0 ms \(400 samples\)"):
        pipe((np.zeros(100, dtype=np.float32), RATE))


def test_directories_are_detected_with_their_task(whisper_dir, ctc_dir, w2v_cls_dir, ast_dir):
    from hub.api import get_spec

    assert get_spec(str(whisper_dir)).task == "speech-recognition"
    assert get_spec(str(ctc_dir)).task == "speech-recognition"
    assert get_spec(str(w2v_cls_dir)).task == "audio-classification"
    assert get_spec(str(ast_dir)).task == "audio-classification"


def test_text_seq2seq_and_text_classifiers_are_not_taken_for_speech(tmp_path):
    from mmhub_transformers.detect import guess_task

    t5 = {"model_type": "t5", "architectures": ["T5ForConditionalGeneration"],
          "task_specific_params": {"summarization": {"prefix": "summarize: "}}}
    bert = {"model_type": "bert", "architectures": ["BertForSequenceClassification"]}
    hubert = {"model_type": "hubert", "architectures": ["HubertForSequenceClassification"]}
    assert guess_task(tmp_path, t5) == "summarization"
    assert guess_task(tmp_path, bert) == "text-classification"
    assert guess_task(tmp_path, hubert) == "audio-classification"


# -- call options -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sine_wav(tmp_path_factory):
    """1 s of a 440 Hz sine at 8 kHz as a wav file (no espeak-ng needed)."""
    import soundfile as sf

    path = tmp_path_factory.mktemp("audio") / "sine.wav"
    sf.write(str(path), sine_8k(1.0), 8000)
    return path


@pytest.mark.parametrize("which, n_labels", [("w2v", 3), ("ast", 7)])
def test_audio_classification_top_k_contract(which, n_labels, w2v_cls_dir, ast_dir):
    from option_contract import check_top_k

    pipe = _load({"w2v": w2v_cls_dir, "ast": ast_dir}[which], "audio-classification")
    check_top_k(pipe, [(sine_8k(1.0), 8000), (sine_8k(0.5), 8000)], n_labels)


def test_audio_classification_top_k_from_load_options_and_catalogue(w2v_cls_dir):
    import dataclasses

    clip = (sine_8k(1.0), 8000)
    assert len(_load(w2v_cls_dir, "audio-classification", top_k=2, cache=False)(clip).labels) == 2
    pipe = _load(w2v_cls_dir, "audio-classification", cache=False)
    pipe.spec = dataclasses.replace(pipe.spec, preprocess={"top_k": 1})
    assert len(pipe(clip).labels) == 1 and len(pipe(clip, top_k=3).labels) == 3


CTC_BAD = [
    ({"chunk_s": "abc"}, ["'chunk_s'", "a number > 0"]), ({"chunk_s": 0}, ["'chunk_s'", "> 0"]),
    ({"chunk_s": True}, ["'chunk_s'", "number"]), ({"stride_s": -1}, ["'stride_s'", ">= 0"]),
    ({"language": "en"}, ["CTC", "'language'", "Valid options: chunk_s, stride_s"]),
    ({"max_new_tokens": 5}, ["'max_new_tokens'"]), ({"chunk": 5}, ["Did you mean: chunk_s?"]),
    ({"chunk_s": 1, "stride_s": 0.5}, ["chunk_s > 2 * stride_s"]),
]
WHISPER_BAD = [
    ({"task": "summarise"}, ["'task'", "one of transcribe, translate"]), ({"language": 5}, ["'language'", "string"]),
    ({"language": "klingon"}, ["language 'klingon'", "de, en"]), ({"max_new_tokens": 0}, ["'max_new_tokens'"]),
    ({"chunk_s": "long"}, ["'chunk_s'"]), ({"stride_s": 1}, ["'stride_s'", "Valid options"]),
    ({"languages": "en"}, ["Did you mean: language?"]),
]


def test_speech_recognition_options_contract(ctc_dir, whisper_dir):
    from option_contract import check_bad_options

    clips = [(sine_8k(1.0), 8000), (sine_8k(0.5), 8000)]
    check_bad_options(_load(ctc_dir, "speech-recognition"), clips, CTC_BAD)
    check_bad_options(_load(whisper_dir, "speech-recognition"), clips, WHISPER_BAD)
    ctc = _load(ctc_dir, "speech-recognition")
    assert ctc(clips[0], chunk_s="0.5", stride_s="0.1").text == ctc(clips[0], chunk_s=0.5, stride_s=0.1).text


@pytest.mark.parametrize("which, task, args, words", [
    ("ctc", "speech-recognition", ["-o", "chunk_s=abc"], ["'chunk_s'", "number"]),
    ("ctc", "speech-recognition", ["-o", "stride_s=-1"], ["'stride_s'", ">= 0"]),
    ("ctc", "speech-recognition", ["-o", "language=en"], ["CTC", "'language'"]),
    ("ctc", "speech-recognition", ["-o", "chunk_s=1", "-o", "stride_s=0.5"], ["chunk_s > 2 * stride_s"]),
    ("whisper", "speech-recognition", ["-o", "task=summarise"], ["'task'", "transcribe, translate"]),
    ("whisper", "speech-recognition", ["-o", "language=klingon"], ["klingon"]),
    ("whisper", "speech-recognition", ["-o", "max_new_tokens=lots"], ["'max_new_tokens'", "integer"]),
    ("w2v", "audio-classification", ["-o", "top_k=0"], ["'top_k'", "integer >= 1"]),
    ("w2v", "audio-classification", ["-o", "chunk_s=3"], ["'chunk_s'", "Valid options: top_k"]),
])
def test_cli_refuses_bad_options(which, task, args, words, ctc_dir, whisper_dir, w2v_cls_dir, sine_wav):
    from option_contract import check_cli_refuses

    model = {"ctc": ctc_dir, "whisper": whisper_dir, "w2v": w2v_cls_dir}[which]
    check_cli_refuses(str(model), task, str(sine_wav), args, words)
