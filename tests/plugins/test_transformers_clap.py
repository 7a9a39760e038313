"""Zero-shot audio classification (CLAP) against ClapModel's own logits_per_audio on a tiny random CLAP.

The tiny CLAP (tests/plugins/tiny_audio_models.py) takes 1 s of 48 kHz audio; inputs at 16 kHz and 8 kHz
go through the hub's audio reading (resampled to 48 kHz), and the reference resamples them the same way.
"""
import base64
import io
import json

import numpy as np
import pytest

import hub
from hub.errors import InputError, OptionError
from plugins.tiny_audio_models import save_clap

LABELS = ["dog barking", "rain on a roof", "a cat", "piano music"]
TEMPLATE = "This is a sound of {}."

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # tiny models: one torch thread


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    return save_clap(tmp_path_factory.mktemp("clap") / "tiny-clap")


@pytest.fixture(scope="module")
def clap(clap_dir):
    return hub.load(str(clap_dir), device="cpu", dtype="fp32", cache=False)


@pytest.fixture(scope="module")
def fused_dir(tmp_path_factory):
    return save_clap(tmp_path_factory.mktemp("clap") / "tiny-clap-fused", fusion=True)


def tone(freq, seconds, rate, noise=0.0, seed=0):
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t) + noise * np.random.default_rng(seed).standard_normal(t.size)
    return wave.astype(np.float32)


CLIPS = [(tone(440, 0.6, 48000), 48000), (tone(1000, 1.0, 16000, noise=0.1), 16000),
         (tone(200, 0.3, 8000, noise=0.3, seed=1), 8000), (tone(3000, 2.5, 48000, noise=0.05), 48000)]  # the last: long


def direct_scores(directory, wave, rate, labels, template=TEMPLATE):
    """ClapModel called as its docs show: feature extractor + tokenizer, logits_per_audio, softmax."""
    import torch
    from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

    from hub.inputs import resample

    fe = ClapFeatureExtractor.from_pretrained(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = ClapModel.from_pretrained(directory).eval()
    np.random.seed(0)  # the extractor's random crop of a long clip, seeded as the hub seeds it
    audio = fe([resample(wave, rate, 48000)], sampling_rate=48000, return_tensors="pt")
    text = tokenizer([template.format(label) for label in labels], padding=True, return_tensors="pt")
    with torch.inference_mode():
        return model(**text, **audio).logits_per_audio.softmax(dim=-1)[0].numpy()


@pytest.mark.parametrize("variant", ["clap_dir", "fused_dir"])
def test_scores_are_clap_logits_per_audio_softmaxed(variant, request):
    clap_dir = request.getfixturevalue(variant)
    clap = hub.load(str(clap_dir), device="cpu", dtype="fp32", cache=False)
    results = clap(CLIPS, labels=LABELS, top_k=len(LABELS))
    for (wave, rate), result in zip(CLIPS, results):
        expected = direct_scores(clap_dir, wave, rate, LABELS)
        got = np.zeros(len(LABELS), np.float32)
        for entry in result.labels:
            got[entry.index] = entry.score
            assert entry.label == LABELS[entry.index]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        assert [e.index for e in result.labels] == sorted(range(len(LABELS)), key=lambda i: -expected[i])


def test_template_and_top_k(clap, clap_dir):
    wave, rate = CLIPS[1]
    result = clap((wave, rate), labels=LABELS, hypothesis_template="the sound of {}", top_k=2)
    expected = direct_scores(clap_dir, wave, rate, LABELS, "the sound of {}")
    assert len(result.labels) == 2 and result.labels[0].score == pytest.approx(float(expected.max()), abs=1e-6)
    assert len(clap((wave, rate), labels=LABELS[:2], top_k=10).labels) == 2  # all of them when there are fewer


@pytest.mark.parametrize("variant", ["clap_dir", "fused_dir"])
def test_a_clip_scores_the_same_alone_in_any_batch_and_on_every_run(variant, request):
    clap = hub.load(str(request.getfixturevalue(variant)), device="cpu", dtype="fp32", cache=False)
    alone = [clap(c, labels=LABELS) for c in CLIPS]
    batched = clap(list(reversed(CLIPS)), labels=LABELS, batch_size=3)[::-1]
    for a, b in zip(alone, batched):
        assert [x.index for x in a.labels] == [x.index for x in b.labels]
        assert [x.score for x in a.labels] == pytest.approx([x.score for x in b.labels], abs=1e-6)
    assert clap(CLIPS[3], labels=LABELS) == alone[3]  # the long clip's random crop is seeded


def test_audio_files_and_the_cli(clap, clap_dir, tmp_path, cli_runner):
    import soundfile as sf

    from hub.cli import cli

    wave, rate = CLIPS[1]
    sf.write(tmp_path / "clip.wav", wave, rate, subtype="FLOAT")
    by_path = clap(str(tmp_path / "clip.wav"), labels=LABELS)
    assert by_path == clap((wave, rate), labels=LABELS)
    done = cli_runner.invoke(cli, ["run", str(clap_dir), str(tmp_path / "clip.wav"), "--label", "dog barking,a cat",
                                   "--label", "piano music", "--top-k", "3", "--dtype", "fp32", "--json"])
    assert done.exit_code == 0, done.output
    row = json.loads(done.output)[0]
    assert [x["label"] for x in row["labels"]] == [x.label for x in clap(
        (wave, rate), labels=["dog barking", "a cat", "piano music"], top_k=3).labels]


def test_the_server_scores_base64_audio(clap, clap_dir, tmp_path):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    import soundfile as sf

    from serve_server import hub_app, running

    buffer = io.BytesIO()
    sf.write(buffer, CLIPS[0][0], 48000, format="WAV")
    body = {"inputs": [base64.b64encode(buffer.getvalue()).decode()], "options": {"labels": LABELS, "top_k": 4}}
    with running(hub_app(preload=(str(clap_dir),))) as url:
        answer = httpx.post(f"{url}/v1/run/{clap_dir.name}", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        expected = clap(CLIPS[0], labels=LABELS, top_k=4)
        assert [x["label"] for x in answer.json()["results"][0]["labels"]] == [x.label for x in expected.labels]
        no_labels = httpx.post(f"{url}/v1/run/{clap_dir.name}", json={"inputs": body["inputs"]}, timeout=60)
        assert no_labels.status_code == 400 and "labels" in no_labels.json()["error"]["message"]


def test_directories_and_catalogue_entries(clap_dir):
    from hub.api import get_spec

    assert get_spec(str(clap_dir)).task == "zero-shot-audio-classification"
    for model_id in ("clap-htsat-unfused", "laion/clap-htsat-unfused", "larger-clap-general"):
        spec = get_spec(model_id)
        assert spec.task == "zero-shot-audio-classification" and spec.plugin == "transformers"


# -- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, words", [
    ({}, "needs candidate labels"), ({"labels": []}, "is empty"), ({"labels": "  ,  "}, "is empty"),
    ({"labels": ["dog", ""]}, "empty label"), ({"labels": ["  "]}, "empty label"),
    ({"labels": ["dog", "dog"]}, "distinct"), ({"labels": ["dog"], "hypothesis_template": "no slot"}, "one '{}'"),
    ({"labels": ["dog"], "hypothesis_template": "{} and {}"}, "one '{}'"),
    ({"labels": ["dog"], "hypothesis_template": "{0} {x}"}, "one '{}'"),
    ({"labels": ["dog"], "top_k": 0}, "top_k"), ({"labels": ["dog"], "seed": 1}, "seed")])
def test_bad_labels_and_options(clap, options, words):
    with pytest.raises(OptionError, match=None) as err:
        clap(CLIPS[0], **options)
    assert words in str(err.value)


BAD_AUDIO = {"empty": ((np.zeros(0, np.float32), 16000), "empty"),
             "NaN": ((np.full(1600, np.nan, np.float32), 16000), "NaN"),
             "no rate": ({"array": np.zeros(1600, np.float32)}, "sample rate"),
             "odd rate": ((np.zeros(1600, np.float32), 3), "Hz"),
             "too short": ((np.zeros(100, np.float32), 48000), "at least"),
             "3-D": ((np.zeros((2, 2, 2), np.float32), 16000), "not a waveform"),
             "strings": ((np.array(["a", "b"]), 16000), "does not hold audio"),
             "no file": ("/nonexistent/clip.wav", "does not exist")}


@pytest.mark.parametrize("name", sorted(BAD_AUDIO))
def test_bad_audio_is_refused(clap, name):
    item, words = BAD_AUDIO[name]
    with pytest.raises(InputError) as err:
        clap(item, labels=LABELS)
    assert words in str(err.value)


@pytest.mark.parametrize("content, label_args, words", [
    (b"RIFF not really", ["--label", "dog"], "cannot be decoded"),
    (None, [], "--label"), (None, ["--label", ""], "--label"), (None, ["--label", " , "], "--label"),
    (None, ["--label", "dog", "-o", "hypothesis_template=plain"], "hypothesis_template")])
def test_cli_bad_input_exits_2_with_one_line(clap_dir, tmp_path, cli_runner, content, label_args, words):
    import soundfile as sf

    from hub.cli import cli

    path = tmp_path / "clip.wav"
    if content is None:
        sf.write(path, CLIPS[0][0], 48000)
    else:
        path.write_bytes(content)
    done = cli_runner.invoke(cli, ["run", str(clap_dir), str(path), *label_args, "--dtype", "fp32"])
    assert done.exit_code == 2 and "Traceback" not in done.output, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], done.output


@pytest.mark.mmhub_plugins("transformers")
def test_clap_keeps_the_plugin_contract(isolated_hub, clap_dir):
    from hub.testing import check_model_contract

    check_model_contract(str(clap_dir), CLIPS, options={"labels": LABELS}, skip=("listing-imports", "import-time"))
