"""Image captioning with the transformers plugin: BLIP and ViT-GPT2 on tiny models built offline
(tests/plugins/tiny_captioners.py) and loaded by path.

Parity: the hub's tokens equal ``model.generate``'s on the processor's pixels with the same settings, greedy and
beam, alone and batched; BLIP's prompt as BLIP's own conditional captioning takes it. Non-images, bad options,
the CLI (table and JSON) and the server through the generic task table.
"""
from __future__ import annotations

import functools
import json
import warnings

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("PIL")

import hub  # noqa: E402
from hub.errors import InputError, OptionError  # noqa: E402
from plugins.tiny_captioners import BUILDERS, images  # noqa: E402

SEARCHES = {"greedy": {"num_beams": 1, "max_new_tokens": 8, "do_sample": False},
            "beam": {"num_beams": 3, "max_new_tokens": 8, "length_penalty": 0.8, "no_repeat_ngram_size": 2}}
CLASSES = {"blip": "BlipForConditionalGeneration", "vit-gpt2": "VisionEncoderDecoderModel"}

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # tiny models: one torch thread


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("captioners")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: build(root / name) for name, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Three different images as PNG files (the hub reads them as any user's files)."""
    root = tmp_path_factory.mktemp("pictures")
    paths = []
    for i, image in enumerate(images(3)):
        image.save(root / f"picture{i}.png")
        paths.append(str(root / f"picture{i}.png"))
    return paths


@functools.lru_cache(maxsize=None)
def load(directory):
    return hub.load(str(directory), dtype="fp32")


@functools.lru_cache(maxsize=None)
def direct(directory):
    name = CLASSES["blip" if directory.name == "blip" else "vit-gpt2"]
    model = getattr(transformers, name).from_pretrained(str(directory)).eval()
    return model, transformers.AutoImageProcessor.from_pretrained(str(directory)), \
        transformers.AutoTokenizer.from_pretrained(str(directory))


def expected(directory, paths, prompt=None, **settings):
    """Token lists from model.generate on the images as one batch, cut as the hub cuts them."""
    from PIL import Image

    model, processor, tok = direct(directory)
    batch = {"pixel_values": processor(images=[Image.open(p).convert("RGB") for p in paths],
                                       return_tensors="pt")["pixel_values"]}
    if prompt is not None:
        batch.update(tok([prompt] * len(paths), return_tensors="pt"))
        batch.pop("token_type_ids", None)
    with torch.inference_mode():
        rows = model.generate(**batch, **settings).tolist()
    blip = directory.name == "blip"
    eos = model.config.text_config.sep_token_id if blip else model.generation_config.eos_token_id
    return [row[1:row.index(eos, 1)] if eos in row[1:] else row[1:] for row in rows]


# -- parity ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("search", SEARCHES)
@pytest.mark.parametrize("name", BUILDERS)
def test_tokens_equal_generate_alone_and_batched(dirs, pictures, name, search):
    pipe = load(dirs[name])
    settings = SEARCHES[search]
    alone = [pipe(path, **settings) for path in pictures]
    assert [r.tokens for r in alone] == [expected(dirs[name], [p], **settings)[0] for p in pictures]
    batched = pipe(pictures, **settings)
    assert [r.tokens for r in batched] == expected(dirs[name], pictures, **settings)
    assert len({tuple(r.tokens) for r in batched}) > 1  # the captions depend on the image
    _, _, tok = direct(dirs[name])
    for result in batched:
        assert result.num_tokens == len(result.tokens) > 0 and result.prompt is None
        assert result.text == tok.decode(result.tokens, skip_special_tokens=True).strip()


def test_blip_prompt_is_continued_as_blip_does(dirs, pictures):
    pipe = load(dirs["blip"])
    results = pipe(pictures, prompt="a picture of", num_beams=1, max_new_tokens=6)
    assert [r.tokens for r in results] == expected(dirs["blip"], pictures, prompt="a picture of", num_beams=1,
                                                   max_new_tokens=6)
    for result in results:
        assert result.text.startswith("a picture of") and result.prompt == "a picture of"


def test_settings_left_out_come_from_the_model(dirs, pictures):
    """No options: ViT-GPT2's generation config (2 beams, at most 12 tokens) as model.generate takes it."""
    pipe = load(dirs["vit-gpt2"])
    assert [r.tokens for r in pipe(pictures)] == expected(dirs["vit-gpt2"], pictures)


def test_sampling_with_a_seed_is_reproducible(dirs, pictures):
    pipe = load(dirs["blip"])
    first = pipe(pictures, do_sample=True, seed=7, temperature=1.5, max_new_tokens=8)
    again = pipe(pictures, do_sample=True, seed=7, temperature=1.5, max_new_tokens=8)
    assert [r.tokens for r in first] == [r.tokens for r in again]
    torch.manual_seed(7)
    assert [r.tokens for r in first] == expected(dirs["blip"], pictures, do_sample=True, temperature=1.5,
                                                 max_new_tokens=8)


# -- detection, bad options, non-images --------------------------------------------------------------------------
@pytest.mark.parametrize("name", BUILDERS)
def test_directories_are_detected_as_captioners(dirs, name):
    assert load(dirs[name]).spec.task == "image-captioning"
    assert hub.load(str(dirs[name]), task="image-to-text", dtype="fp32").spec.task == "image-captioning"


BAD_OPTIONS = [
    ("blip", {"num_beams": 0}, ["'num_beams'", ">= 1"]),
    ("blip", {"max_new_tokens": "many"}, ["'max_new_tokens'", "integer"]),
    ("blip", {"temperature": 0.5}, ["temperature", "do_sample"]),
    ("blip", {"do_sample": True, "top_p": 2}, ["'top_p'", "<= 1"]),
    ("blip", {"prompt": "   "}, ["'prompt'", "blank"]),
    ("blip", {"top_k": 3}, ["'top_k'", "Valid options"]),
    ("blip", {"beams": 3}, ["Did you mean: num_beams?"]),
    ("vit-gpt2", {"prompt": "a picture of"}, ["'prompt'", "BLIP"]),
    ("vit-gpt2", {"seed": -2}, ["'seed'", ">= 0"]),
]


@pytest.mark.parametrize("name, options, words", BAD_OPTIONS)
def test_bad_options_are_refused_by_name(dirs, pictures, name, options, words):
    pipe = load(dirs[name])
    for given in (pictures[0], pictures):
        with pytest.raises(OptionError) as err:
            pipe(given, **options)
        assert all(w in str(err.value) for w in words), str(err.value)


def non_images(root):
    """A text file, a WAV file, an empty file and a directory, each with what the refusal says."""
    import wave

    (root / "notes.txt").write_text("a cat on a mat\n")
    with wave.open(str(root / "sound.wav"), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes(b"\0\0" * 1600)
    (root / "empty.png").write_bytes(b"")
    (root / "folder").mkdir(exist_ok=True)
    return {"text": root / "notes.txt", "audio": root / "sound.wav", "empty": root / "empty.png",
            "directory": root / "folder"}


@pytest.mark.parametrize("kind", ["text", "audio", "empty", "directory"])
def test_a_non_image_is_refused_in_one_line(dirs, tmp_path, kind):
    from hub.testing import assert_clean_error, invoke_hub

    path = non_images(tmp_path)[kind]
    with pytest.raises(InputError) as err:
        load(dirs["blip"])(str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert_clean_error(invoke_hub(["run", str(dirs["blip"]), str(path), "--dtype", "fp32"]), path.name)


# -- CLI and server ----------------------------------------------------------------------------------------------
def test_cli_json_and_table(dirs, pictures, cli_runner):
    from hub.cli import cli

    args = ["run", str(dirs["blip"]), *pictures[:2], "--dtype", "fp32", "-o", "num_beams=1", "-o", "max_new_tokens=6"]
    result = cli_runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    want = load(dirs["blip"])(pictures[:2], num_beams=1, max_new_tokens=6)
    assert json.loads(result.stdout) == [r.to_dict() for r in want]
    table = cli_runner.invoke(cli, args)
    assert table.exit_code == 0 and all(r.text in table.stdout for r in want)


def test_served_through_the_task_table(dirs, pictures):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    import base64

    from serve_server import hub_app, running

    want = load(dirs["vit-gpt2"])(pictures[:2], num_beams=1, max_new_tokens=6)
    encoded = [base64.b64encode(open(p, "rb").read()).decode() for p in pictures[:2]]
    with running(hub_app(preload=(str(dirs["vit-gpt2"]),))) as url:
        name = dirs["vit-gpt2"].name
        answer = httpx.post(f"{url}/v1/run/{name}", json={"inputs": encoded, "options": {
            "num_beams": 1, "max_new_tokens": "6"}}, timeout=60)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["task"] == "image-captioning" and body["results"] == [r.to_dict() for r in want]
        bad = httpx.post(f"{url}/v1/run/{name}", json={"inputs": encoded[:1], "options": {"prompt": "a"}})
        assert bad.status_code == 400 and "BLIP" in bad.json()["error"]["message"]


# -- the plugin contract (hub.testing) ---------------------------------------------------------------------------
@pytest.mark.mmhub_plugins("transformers")
@pytest.mark.parametrize("name", BUILDERS)
def test_captioners_keep_the_contract(isolated_hub, dirs, pictures, name):
    from hub.testing import check_model_contract

    report = check_model_contract(str(dirs[name]), pictures, options={"num_beams": 1, "max_new_tokens": 6},
                                  skip=("listing-imports", "import-time"))
    assert "batch-size" in report.checked and "json-round-trip" in report.checked
