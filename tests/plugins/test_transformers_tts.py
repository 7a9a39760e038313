"""Text-to-speech (SpeechT5 + HiFi-GAN, VITS) against direct transformers calls on tiny random models.

The tiny models are built here (tests/plugins/tiny_audio_models.py) and loaded through the hub by path.
With random weights the speech is noise, so these tests check parity with ``generate_speech`` / the model
called directly under the same seed, determinism, shapes and sample rates, files, JSON and serving. The
intelligibility round trip (the hub's speech recognition transcribes the hub's speech) needs real
weights: ``test_round_trip_with_real_weights`` runs when MMHUB_TTS_MODELS names them, and is skipped otherwise.
"""
import base64
import json
import os

import numpy as np
import pytest

import hub
from hub.errors import InputError, OptionError, WeightsError
from hub.tasks.results_audio import Speech, read_wav
from plugins.tiny_audio_models import save_speecht5, save_vits

TEXTS = ["hello world", "the quick brown fox", "abc"]

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # tiny models: one torch thread


@pytest.fixture(scope="module")
def speecht5_dir(tmp_path_factory):
    return save_speecht5(tmp_path_factory.mktemp("tts") / "tiny-speecht5")


@pytest.fixture(scope="module")
def vits_dir(tmp_path_factory):
    return save_vits(tmp_path_factory.mktemp("tts") / "tiny-vits", sampling_rate=22050)


@pytest.fixture(scope="module")
def speaker_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("speaker") / "voice.npy"
    np.save(path, np.linspace(-1, 1, 8, dtype=np.float32))
    return path


@pytest.fixture(scope="module")
def speecht5(speecht5_dir):
    return hub.load(str(speecht5_dir), device="cpu", dtype="fp32", cache=False)


@pytest.fixture(scope="module")
def vits(vits_dir):
    return hub.load(str(vits_dir), device="cpu", dtype="fp32", cache=False)


# -- parity with the library called directly ------------------------------------------------------------
def direct_speecht5(directory, text, seed, speaker):
    import torch
    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5Tokenizer

    tokenizer = SpeechT5Tokenizer.from_pretrained(directory)
    model = SpeechT5ForTextToSpeech.from_pretrained(directory).eval()
    vocoder = SpeechT5HifiGan.from_pretrained(directory / "vocoder").eval()
    inputs = tokenizer(text, return_tensors="pt")
    torch.manual_seed(seed)
    with torch.inference_mode():
        return model.generate_speech(inputs["input_ids"], torch.tensor(speaker).reshape(1, -1),
                                     vocoder=vocoder).numpy()


def direct_vits(directory, text, seed, speaking_rate=None):
    import torch
    from transformers import VitsModel, VitsTokenizer

    tokenizer = VitsTokenizer.from_pretrained(directory)
    model = VitsModel.from_pretrained(directory).eval()
    torch.manual_seed(seed)
    with torch.inference_mode():
        return model(**tokenizer(text, return_tensors="pt"), speaking_rate=speaking_rate).waveform[0].numpy()


def test_speecht5_is_generate_speech_with_the_vocoder(speecht5, speecht5_dir, speaker_file):
    results = speecht5(TEXTS, seed=7, speaker_embedding=str(speaker_file))
    for text, result in zip(TEXTS, results):
        expected = direct_speecht5(speecht5_dir, text, 7, np.load(speaker_file))
        assert result.audio.dtype == np.float32 and np.array_equal(result.audio, expected)
        assert result.text == text and result.sampling_rate == 16000
    neutral = speecht5("hello world", seed=7)  # no speaker file: a zero x-vector
    assert np.array_equal(neutral.audio, direct_speecht5(speecht5_dir, "hello world", 7, np.zeros(8, np.float32)))


def test_vits_is_the_model_called_directly(vits, vits_dir):
    results = vits(TEXTS, seed=3)
    for text, result in zip(TEXTS, results):
        assert np.array_equal(result.audio, direct_vits(vits_dir, text, 3))
        assert result.sampling_rate == 22050  # the model's config, not a fixed rate
    faster = vits("hello world", seed=3, speaking_rate=2.0)
    assert np.array_equal(faster.audio, direct_vits(vits_dir, "hello world", 3, speaking_rate=2.0))
    assert faster.samples < results[0].samples


def test_a_speaker_file_in_the_model_directory_is_the_default(speecht5_dir, speaker_file, tmp_path):
    import shutil

    copy = shutil.copytree(speecht5_dir, tmp_path / "with-voice")
    shutil.copy(speaker_file, copy / "speaker_embedding.npy")
    given = hub.load(str(copy), device="cpu", dtype="fp32", cache=False)("abc")
    assert np.array_equal(given.audio, direct_speecht5(speecht5_dir, "abc", 0, np.load(speaker_file)))


# -- determinism, shapes, sample rates ----------------------------------------------------------------
@pytest.mark.parametrize("family", ["speecht5", "vits"])
def test_same_text_and_seed_give_the_same_audio_in_any_batch(family, request):
    import torch

    pipe = request.getfixturevalue(family)
    alone = pipe("hello world", seed=5)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    batched = pipe(["abc", "hello world", "zebra"], seed=5, batch_size=2)
    assert torch.rand(1) == before  # the caller's random state is left alone
    assert np.array_equal(batched[1].audio, alone.audio)
    assert np.array_equal(pipe("hello world", seed=5).audio, alone.audio)
    assert not np.array_equal(pipe("hello world", seed=6).audio, alone.audio)  # the seed reaches the sampling


def test_shapes_and_lengths(speecht5, vits):
    for pipe, rate in ((speecht5, 16000), (vits, 22050)):
        results = pipe(TEXTS)
        for r in results:
            assert r.audio.ndim == 1 and r.samples > 0 and r.sampling_rate == rate
            assert r.duration_s == pytest.approx(r.samples / rate) and np.isfinite(r.audio).all()
        assert results[0].samples != results[2].samples  # longer text, longer speech
    # SpeechT5: the tiny decoder never stops early, so it runs maxlenratio (20) x encoder length / reduction (2)
    # steps of 2 mel frames each, and the vocoder makes 16 samples of each frame
    ids = speecht5.tokenizer("abc")["input_ids"]
    assert speecht5("abc").samples == int(len(ids) * 20 / 2) * 2 * 16


def test_result_json_carries_a_wav_that_reads_back_exactly(vits):
    import io

    import soundfile as sf

    result = vits("hello world")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["sampling_rate"] == 22050 and data["samples"] == result.samples and data["text"] == "hello world"
    assert Speech.from_dict(data) == result
    wave, rate = sf.read(io.BytesIO(base64.b64decode(data["audio"])), dtype="float32")
    assert rate == 22050 and np.array_equal(wave, result.audio)
    assert "s of speech at 22050 Hz" in result.summary()


@pytest.mark.parametrize("bad", [{"audio": "not base64!"}, {"audio": base64.b64encode(b"RIFFxxxxWAVE").decode(),
                                                            "sampling_rate": 1}, {"sampling_rate": 16000}, []])
def test_speech_from_bad_json_is_refused(bad):
    with pytest.raises(ValueError):
        Speech.from_dict(bad)


# -- the CLI, files and the server ----------------------------------------------------------------------
def test_cli_shows_duration_and_writes_wav_files(vits_dir, vits, tmp_path, cli_runner):
    from hub.cli import cli

    (tmp_path / "story.txt").write_text("the quick brown fox")
    out = tmp_path / "out"
    done = cli_runner.invoke(cli, ["run", str(vits_dir), "hello, world!", str(tmp_path / "story.txt"),
                                   "--dtype", "fp32", "--save-dir", str(out)])
    assert done.exit_code == 0, done.output
    assert "s of speech at 22050 Hz" in done.output
    assert sorted(p.name for p in out.iterdir()) == ["hello-world.wav", "story.wav"]
    samples, rate = read_wav((out / "hello-world.wav").read_bytes())
    assert rate == 22050 and np.array_equal(samples, vits("hello, world!").audio)
    again = cli_runner.invoke(cli, ["run", str(vits_dir), "hello, world!", "--dtype", "fp32", "--save-dir", str(out)])
    assert again.exit_code == 0 and (out / "hello-world-2.wav").exists()  # nothing is overwritten
    as_json = cli_runner.invoke(cli, ["run", str(vits_dir), "abc", "--dtype", "fp32", "--json"])
    assert Speech.from_dict(json.loads(as_json.output)[0]) == vits("abc")


def test_the_server_returns_base64_wav(vits_dir, vits):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from serve_server import hub_app, running

    with running(hub_app(preload=(str(vits_dir),))) as url:
        answer = httpx.post(f"{url}/v1/run/{vits_dir.name}", json={"inputs": ["hello world", "abc"],
                                                                   "options": {"seed": 4}}, timeout=60)
        assert answer.status_code == 200, answer.text
        rows = answer.json()["results"]
        assert [Speech.from_dict(r) for r in rows] == vits(["hello world", "abc"], seed=4)
        blank = httpx.post(f"{url}/v1/run/{vits_dir.name}", json={"inputs": ["  "]}, timeout=60)
        assert blank.status_code == 400 and "empty" in blank.json()["error"]["message"]
        from hub.client import Client

        with Client(url) as client:  # the SDK gives back the same Speech results as hub.run
            assert client.run(vits_dir.name, "hello world", seed=4) == vits("hello world", seed=4)


# -- bad input ------------------------------------------------------------------------------------------
UNSPEAKABLE = ["", "   ", "\n\t ", "!!! ???", "😀😀", "中文文本", "12345"]


@pytest.mark.parametrize("family", ["speecht5", "vits"])
@pytest.mark.parametrize("text", UNSPEAKABLE)
def test_text_with_nothing_to_say_is_refused(family, text, request):
    pipe = request.getfixturevalue(family)
    with pytest.raises(InputError, match="empty|no characters that"):
        pipe(text)


def test_text_longer_than_the_model_takes_is_refused(speecht5):
    with pytest.raises(InputError, match="takes at most 64: split it"):
        speecht5("hello world " * 20)


def _bad_speaker_files(tmp):
    (tmp / "text.npy").write_text("not numpy")
    np.save(tmp / "short.npy", np.zeros(5, np.float32))
    np.save(tmp / "matrix.npy", np.zeros((2, 8), np.float32))
    np.save(tmp / "nan.npy", np.full(8, np.nan, np.float32))
    np.save(tmp / "strings.npy", np.array(["a"] * 8))
    np.save(tmp / "objects.npy", np.array([{"a": 1}] * 8, dtype=object), allow_pickle=True)
    return {"missing.npy": "does not exist", "text.npy": "not a .npy", "short.npy": "shape (5,)",
            "matrix.npy": "shape (2, 8)", "nan.npy": "NaN", "strings.npy": "dtype <U1",
            "objects.npy": "not a .npy"}


def test_bad_speaker_embedding_files_are_refused_before_any_input(speecht5, tmp_path, speecht5_dir, cli_runner):
    from hub.cli import cli

    for name, words in _bad_speaker_files(tmp_path).items():
        with pytest.raises(OptionError, match="speaker_embedding") as err:
            speecht5("", speaker_embedding=str(tmp_path / name))  # the option fails before the (bad) text
        assert words in str(err.value) and "8 float values" in str(err.value)
        done = cli_runner.invoke(cli, ["run", str(speecht5_dir), "abc", "-o", f"speaker_embedding={tmp_path / name}"])
        _one_line_error(done, "speaker_embedding")


@pytest.mark.parametrize("options", [{"seed": -1}, {"seed": "x"}, {"speaking_rate": 0}, {"speaker_embedding": "a.npy"},
                                     {"top_k": 3}])
def test_bad_options_of_vits(vits, options):
    with pytest.raises(OptionError):
        vits("abc", **options)


def test_speecht5_refuses_the_options_of_vits(speecht5):
    with pytest.raises(OptionError, match="a SpeechT5 text-to-speech model.*Valid options: seed, speaker_embedding"):
        speecht5("abc", speaking_rate=2.0)


def test_a_phonemizing_tokenizer_without_phonemizer_names_the_package(tmp_path):
    import importlib.util

    from hub.errors import DependencyMissingError

    if importlib.util.find_spec("phonemizer") is not None:
        pytest.skip("phonemizer is installed here")
    directory = save_vits(tmp_path / "ljs-like")
    config = json.loads((directory / "tokenizer_config.json").read_text())
    (directory / "tokenizer_config.json").write_text(json.dumps({**config, "phonemize": True}))
    with pytest.raises(DependencyMissingError, match="pip install phonemizer"):
        hub.load(str(directory), device="cpu", cache=False)("hello")


@pytest.mark.parametrize("text", ["", "   ", "😀"])
def test_cli_bad_text_exits_2_with_one_line(vits_dir, text, cli_runner):
    from hub.cli import cli

    _one_line_error(cli_runner.invoke(cli, ["run", str(vits_dir), text, "--dtype", "fp32"]), "speak")


def _one_line_error(result, *words):
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert all(w in lines[0] for w in words), lines[0]


def test_a_speecht5_without_its_vocoder_says_where_to_put_it(tmp_path):
    directory = save_speecht5(tmp_path / "no-vocoder", with_vocoder=False)
    with pytest.raises(WeightsError, match="needs its HiFi-GAN vocoder.*vocoder"):
        hub.load(str(directory), device="cpu", cache=False)


def test_the_catalogue_names_the_vocoder_of_speecht5(speecht5_dir, tmp_path):
    """A catalogue entry's options.vocoder (a local directory here) is where the vocoder comes from."""
    import shutil

    from hub.registry import ModelSpec
    from mmhub_transformers.tts import find_vocoder

    bare = shutil.copytree(speecht5_dir, tmp_path / "bare", ignore=shutil.ignore_patterns("vocoder"))
    spec = ModelSpec(id="t", task="text-to-speech", plugin="transformers", source=str(bare),
                     options={"vocoder": str(speecht5_dir / "vocoder")})
    assert find_vocoder(spec, bare) == speecht5_dir / "vocoder"
    from hub.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError):
        find_vocoder(ModelSpec(id="t", task="text-to-speech", plugin="transformers", source=str(bare),
                               options={"vocoder": str(tmp_path / "nowhere")}), bare)


def test_directories_are_detected_as_text_to_speech(speecht5_dir, vits_dir):
    from hub.api import get_spec

    assert get_spec(str(speecht5_dir)).task == "text-to-speech"
    assert get_spec(str(vits_dir)).task == "text-to-speech"


def test_catalogue_entries():
    from hub.api import get_spec

    for model_id in ("speecht5-tts", "microsoft/speecht5_tts", "mms-tts-eng", "vits-ljs"):
        spec = get_spec(model_id)
        assert spec.task == "text-to-speech" and spec.plugin == "transformers"
    assert get_spec("speecht5-tts").options["vocoder"] == "hf-hub:microsoft/speecht5_hifigan"


# -- intelligibility: the hub's speech recognition transcribes the hub's speech --------------------------
def test_round_trip_helper_runs_on_tiny_models(vits_dir, tmp_path, capsys):
    """With random weights the transcript is noise: this checks the plumbing, not intelligibility."""
    from plugins.tiny_models import save_ctc
    from mmhub_transformers.tts_check import main, round_trip

    ctc = str(save_ctc(tmp_path / "ctc"))
    rows = round_trip(str(vits_dir), ctc, ["hello world"], device="cpu")
    assert len(rows) == 1 and rows[0]["text"] == "hello world" and 0 <= rows[0]["wer"]
    assert main(["--tts", str(vits_dir), "--asr", ctc, "--device", "cpu", "hello world", "zebra quiz vex"]) == 0
    assert capsys.readouterr().out.count("WER") == 3
    assert main(["--tts", str(vits_dir), "--asr", ctc, "--device", "cpu", "   "]) == 2
    assert "empty" in capsys.readouterr().err


@pytest.mark.skipif(not os.environ.get("MMHUB_TTS_MODELS"),
                    reason="needs real weights: set MMHUB_TTS_MODELS to text-to-speech models (ids or directories, "
                           "comma-separated) and MMHUB_ASR_MODEL to a speech recognition model (default whisper-tiny)")
def test_round_trip_with_real_weights():
    from mmhub_transformers.tts_check import SENTENCES, round_trip

    asr = os.environ.get("MMHUB_ASR_MODEL", "whisper-tiny")
    for tts in os.environ["MMHUB_TTS_MODELS"].split(","):
        rows = round_trip(tts.strip(), asr, SENTENCES)
        mean = sum(r["wer"] for r in rows) / len(rows)
        assert mean <= 0.35, f"{tts} -> {asr}: mean WER {mean:.2f}: {rows}"


# -- the plugin contract (hub.testing) ------------------------------------------------------------------
@pytest.mark.mmhub_plugins("transformers")
@pytest.mark.parametrize("family", ["speecht5_dir", "vits_dir"])
def test_tts_models_keep_the_plugin_contract(isolated_hub, family, request):
    from hub.testing import check_model_contract

    check_model_contract(str(request.getfixturevalue(family)), ["hello world", "abc", "zebra quiz"],
                         skip=("listing-imports", "import-time"), atol=0, rtol=0)


def test_the_page_plays_the_servers_speech(vits_dir, vits):
    """The page draws a Speech result as an audio player, and Chromium decodes its WAV to the right duration."""
    import shutil

    if not shutil.which("chromium"):
        pytest.skip("needs Debian's chromium (apt-get install chromium) and playwright")
    sync_api = pytest.importorskip("playwright.sync_api")
    httpx = pytest.importorskip("httpx")
    from serve_server import hub_app, running

    draw = """async ([results, names]) => {
        const views = await import('/static/views.js');
        const context = {names, options: {}, task: {name: 'text-to-speech', result: 'hub.tasks.results_audio:Speech'}};
        document.body.replaceChildren(views.renderResults(results, context));
        const audio = document.querySelector('.result-view audio');
        await new Promise((ok, fail) => { audio.onloadedmetadata = ok; audio.onerror = () => fail(audio.error.message);
                                          audio.load(); });
        return [document.querySelector('.result-view').dataset.result, audio.duration];
    }"""
    with running(hub_app(preload=(str(vits_dir),))) as url:
        answer = httpx.post(f"{url}/v1/run/{vits_dir.name}", json={"inputs": ["hello world"]}, timeout=60)
        rows = answer.json()["results"]
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--headless", "--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                page.goto(url + "/")
                view, duration = page.evaluate(draw, [rows, ["hello world"]])
            finally:
                browser.close()
    assert view == "hub.tasks.results_audio:Speech"
    assert duration == pytest.approx(vits("hello world").duration_s, abs=1e-3)


@pytest.mark.parametrize("reference, heard, wer", [
    ("The quick brown fox.", "the quick brown fox", 0.0), ("a b c d", "a x c d", 0.25),
    ("a b c d", "a b c d e f", 0.5), ("a b c d", "", 1.0), ("It's here", "its here", 0.5)])
def test_word_error_rate(reference, heard, wer):
    from mmhub_transformers.tts_check import word_error_rate

    assert word_error_rate(reference, heard) == pytest.approx(wer)
