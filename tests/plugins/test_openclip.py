"""The open_clip plugin: a tiny CLIP saved in open_clip's hub layout, loaded by path, against open_clip.

The model is built untrained at test time from an open_clip model config (ViT: width 64, 2 layers,
patch 8, 32 px; text: width 64, 2 layers, context 16, the default CLIP tokenizer), saved as
``open_clip_config.json`` (open_clip's ``save_config_for_hf``) + ``open_clip_model.safetensors``, and
loaded through ``hub.load(str(dir))``: the code path a catalogue id takes once its weights are on
disk. Images are scikit-learn's digits, upscaled to RGB.
"""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # tiny backbone models

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

import hub  # noqa: E402
from hub.errors import HubError, InputError  # noqa: E402

ZS = "zero-shot-image-classification"
SIM = "image-text-similarity"
ARCH = "mmhub-tiny-clip"
CONFIG = {"embed_dim": 32,
          "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
          "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)  # not CLIP's: proves the saved preprocess_cfg is used
LABELS = ["zero", "one", "two", "three", "four"]
TEXTS = ["a handwritten zero", "the digit seven", "a photo of a dog", "number four"]


def save_layout(model, directory, safetensors: bool = True):
    """Write open_clip's hub layout: config (with the model's preprocess_cfg) and weights."""
    from open_clip.push_to_hf_hub import save_config_for_hf

    directory.mkdir(parents=True, exist_ok=True)
    if safetensors:
        from safetensors.torch import save_file

        save_file(model.state_dict(), directory / "open_clip_model.safetensors")
    else:
        torch.save(model.state_dict(), directory / "open_clip_pytorch_model.bin")
    save_config_for_hf(model, directory / "open_clip_config.json", CONFIG)
    return directory


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(directory, direct open_clip model, its eval transform, its tokenizer)."""
    root = tmp_path_factory.mktemp("openclip")
    (root / f"{ARCH}.json").write_text(json.dumps(CONFIG))
    open_clip.add_model_config(root / f"{ARCH}.json")
    torch.manual_seed(0)
    model, _, transform = open_clip.create_model_and_transforms(ARCH, image_mean=MEAN, image_std=STD)
    model.eval()
    return save_layout(model, root / "tiny-clip"), model, transform, open_clip.get_tokenizer(ARCH)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Six digits as 48x48 RGB files (PNG and JPEG)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("digits")
    paths = []
    for i in range(6):
        pixels = (digits.images[i * 5] * (255 / 16)).astype("uint8")
        path = root / f"digit{i}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(pixels).resize((48, 48), Image.BILINEAR).convert("RGB").save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def zero_shot(tiny):
    return hub.load(str(tiny[0]), task=ZS, dtype="fp32")


@pytest.fixture(scope="module")
def similarity(tiny):
    return hub.load(str(tiny[0]), task=SIM, dtype="fp32")


def direct_image_features(tiny, paths):
    from PIL import Image

    _, model, transform, _ = tiny
    pixels = torch.stack([transform(Image.open(p)) for p in paths])
    with torch.no_grad():
        return model.encode_image(pixels, normalize=True)


def direct_probs(tiny, paths, labels, templates):
    """open_clip's own zero-shot recipe: build_zero_shot_classifier, then softmax of scaled logits."""
    _, model, _, tokenizer = tiny
    classifier = open_clip.build_zero_shot_classifier(model, tokenizer, labels, templates, device="cpu")
    with torch.no_grad():
        return (model.logit_scale.exp() * direct_image_features(tiny, paths) @ classifier).softmax(dim=-1)


def scores_by_index(result, n):
    row = [None] * n
    for item in result.labels:
        row[item.index] = item.score
    return torch.tensor(row)


def test_directory_is_recognised_without_reading_weights(tiny):
    spec = hub.get_spec(str(tiny[0]))
    assert (spec.plugin, spec.task) == ("openclip", ZS)
    assert hub.get_spec(str(tiny[0]), task="clip-similarity").task == SIM


def test_preprocessing_comes_from_the_saved_config(zero_shot):
    normalize = zero_shot.transform.transforms[-1]
    assert tuple(normalize.mean) == pytest.approx(MEAN) and tuple(normalize.std) == pytest.approx(STD)
    assert zero_shot.tokenizer.context_length == 16


@pytest.mark.parametrize("templates, direct_templates", [
    (["a photo of a {}.", "a drawing of the {c}."], [lambda c: f"a photo of a {c}.", lambda c: f"a drawing of the {c}."]),
    ("openai", open_clip.OPENAI_IMAGENET_TEMPLATES),
    (None, None),
])
def test_zero_shot_matches_open_clip(tiny, images, zero_shot, templates, direct_templates):
    from mmhub_openclip.pipelines import DEFAULT_TEMPLATES

    results = zero_shot(images, labels=LABELS, templates=templates, batch_size=4)
    expected = direct_probs(tiny, images, LABELS, direct_templates or list(DEFAULT_TEMPLATES))
    got = torch.stack([scores_by_index(r, len(LABELS)) for r in results])
    assert (got - expected).abs().max().item() <= 1e-5
    for result in results:
        scores = [l.score for l in result.labels]
        assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-5


def test_top_k_and_single_input(images, zero_shot):
    one = zero_shot(images[0], labels="zero, one, two", top_k=2)
    assert [l.label for l in one.labels] == [l.label for l in zero_shot([images[0]], labels=["zero", "one", "two"])[0].labels[:2]]
    assert len(one.labels) == 2


def test_classifier_is_encoded_once_per_label_set(images, zero_shot, monkeypatch):
    calls = []
    original = zero_shot.text_features
    monkeypatch.setattr(zero_shot, "text_features", lambda texts, *a: calls.append(len(texts)) or original(texts, *a))
    labels = ["cat", "dog", "bird"]
    zero_shot(images, labels=labels, batch_size=2)
    zero_shot(images, labels=labels, batch_size=3)
    assert calls == [3 * 6]  # 3 labels x 6 default templates, once for 5 batches
    zero_shot(images[:1], labels=["cat", "dog"])
    assert len(calls) == 2


def test_similarity_matches_open_clip(tiny, images, similarity):
    _, model, _, tokenizer = tiny
    results = similarity(images, texts=TEXTS, top_k=2, batch_size=4)
    with torch.no_grad():
        text = model.encode_text(tokenizer(TEXTS), normalize=True)
    image = direct_image_features(tiny, images)
    got_images = torch.tensor([r.image_embeddings[0] for r in results])
    got_matrix = torch.tensor([r.matrix[0] for r in results])
    assert (got_images - image).abs().max().item() <= 1e-5
    assert (torch.tensor(results[0].text_embeddings) - text).abs().max().item() <= 1e-5
    assert (got_matrix - image @ text.T).abs().max().item() <= 1e-5
    for result, row in zip(results, got_matrix):
        best = row.argsort(descending=True)[:2].tolist()
        assert [l.index for l in result.top_k[0]] == best
        assert [l.label for l in result.top_k[0]] == [TEXTS[i] for i in best]
    json.dumps([r.to_dict() for r in results])


def test_embed_helpers_match_open_clip(tiny, images, similarity):
    _, model, _, tokenizer = tiny
    with torch.no_grad():
        text = model.encode_text(tokenizer(TEXTS), normalize=True)
    assert (similarity.embed_texts(TEXTS) - text).abs().max().item() <= 1e-5
    assert (similarity.embed_images(images, batch_size=4) - direct_image_features(tiny, images)).abs().max() <= 1e-5
    assert similarity.embed_images([]).shape == (0, 32)


def test_similarity_without_embeddings(images, similarity):
    result = similarity(images[0], texts="a digit", embeddings=False)
    assert result.image_embeddings == [] and result.text_embeddings == [] and len(result.matrix[0]) == 1


def test_pickle_checkpoint_loads_with_weights_only(tiny, images, tmp_path):
    directory = save_layout(tiny[1], tmp_path / "bin-clip", safetensors=False)
    pipe = hub.load(str(directory), task=SIM, dtype="fp32")
    assert (pipe.embed_images(images[:2]) - direct_image_features(tiny, images[:2])).abs().max() <= 1e-5


def test_catalogue_entry_without_config_uses_arch(tiny, images, tmp_path, monkeypatch, fresh_hub):
    from safetensors.torch import save_file

    weights = tmp_path / "weights-only"
    weights.mkdir()
    save_file(tiny[1].state_dict(), weights / "open_clip_model.safetensors")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(f"models:\n  tiny-by-arch:\n    task: {SIM}\n    plugin: openclip\n"
                       f"    source: {weights}\n    arch: {ARCH}\n")
    monkeypatch.setenv("HUB_CATALOG", str(catalog))
    pipe = hub.load("tiny-by-arch", dtype="fp32", cache=False)
    assert pipe.spec.arch == ARCH
    with torch.no_grad():
        expected = tiny[1].encode_text(tiny[3](TEXTS), normalize=True)
    assert (pipe.embed_texts(TEXTS) - expected).abs().max() <= 1e-5


def test_bf16_autocast_stays_close(images, zero_shot, tiny):
    fast = hub.load(str(tiny[0]), task=ZS, dtype="bf16")
    exact = zero_shot(images, labels=LABELS)
    approx = fast(images, labels=LABELS)
    for a, b in zip(exact, approx):
        diff = scores_by_index(a, len(LABELS)) - scores_by_index(b, len(LABELS))
        assert diff.abs().max() < 0.05


def test_fast_attention_matches_multihead_attention():
    from mmhub_openclip.fast import self_attention

    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(64, 4, batch_first=True).eval()
    x = torch.randn(3, 10, 64)
    causal = torch.full((10, 10), float("-inf")).triu(1)
    with torch.no_grad():
        for mask in (None, causal):
            expected = mha(x, x, x, need_weights=False, attn_mask=mask)[0]
            assert (self_attention(mha, x, mask) - expected).abs().max() <= 1e-5


def test_reduced_precision_model_equals_plain_autocast(tiny, images):
    """Patched attention + weights rounded once give autocast's numbers (attention: to bf16 rounding)."""
    import copy

    from mmhub_openclip.fast import patch_attention, precast_weights

    _, model, transform, tokenizer = tiny
    fast = copy.deepcopy(model)
    patch_attention(fast)
    precast_weights(fast, torch.bfloat16)
    reference = copy.deepcopy(model)
    patch_attention(reference)
    from PIL import Image

    pixels = torch.stack([transform(Image.open(p)) for p in images])
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(fast.encode_image(pixels), reference.encode_image(pixels))
        assert torch.equal(fast.encode_text(tokenizer(TEXTS)), reference.encode_text(tokenizer(TEXTS)))
        close = (model.encode_image(pixels).float() - fast.encode_image(pixels).float()).abs().max()
    assert close < 0.05


def test_empty_list_gives_empty_list(zero_shot, similarity):
    assert zero_shot([], labels=LABELS) == [] and similarity([], texts=TEXTS) == []


@pytest.mark.parametrize("kwargs, words", [
    ({}, ["labels", "--label"]),
    ({"labels": []}, ["labels", "empty"]),
    ({"labels": ["cat", "cat"]}, ["distinct", "cat"]),
    ({"labels": ["cat"], "templates": ["a photo"]}, ["a photo", "{}"]),
    ({"labels": ["cat"], "top_k": 0}, ["top_k"]),
    ({"labels": ["cat"], "texts": ["x"]}, ["texts", "labels, templates, top_k"]),
])
def test_zero_shot_argument_errors(images, zero_shot, kwargs, words):
    with pytest.raises(InputError) as err:
        zero_shot(images[:1], **kwargs)
    assert all(w in str(err.value) for w in words)


def test_similarity_needs_texts(images, similarity):
    with pytest.raises(InputError, match="--text"):
        similarity(images[:1])


def test_corrupt_image_is_named(images, zero_shot, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(InputError, match="broken.jpg"):
        zero_shot([images[0], bad], labels=LABELS)
    with pytest.raises(InputError, match="missing.png"):
        zero_shot(tmp_path / "missing.png", labels=LABELS)


def test_directory_without_weights_says_so(tmp_path):
    (tmp_path / "empty-clip").mkdir()
    (tmp_path / "empty-clip" / "open_clip_config.json").write_text(json.dumps({"model_cfg": CONFIG}))
    with pytest.raises(HubError, match="open_clip_model.safetensors"):
        hub.load(str(tmp_path / "empty-clip"), task=ZS, dtype="fp32", cache=False)


def test_cli_zero_shot(tiny, images, cli_runner):
    from hub.cli import cli

    out = cli_runner.invoke(cli, ["run", str(tiny[0]), str(images[0]), str(images[1]), "--label", "zero,one",
                                  "--label", "two", "--top-k", "2", "--dtype", "fp32", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert len(rows) == 2 and all(len(r["labels"]) == 2 for r in rows)
    missing = cli_runner.invoke(cli, ["run", str(tiny[0]), str(images[0]), "--dtype", "fp32"])
    assert missing.exit_code == 2 and "--label" in missing.output


def test_catalogue_sources_match_open_clip_pretrained_tags():
    """Every open_clip catalogue entry points at the hub repo open_clip's own pretrained cfg names."""
    from pathlib import Path

    import mmhub_openclip
    from hub.registry import read_catalog_file

    specs = read_catalog_file(Path(mmhub_openclip.__file__).with_name("catalog.yaml"))  # the plugin's own models
    assert {s.plugin for s in specs} == {"openclip"}
    assert len(specs) >= 7 and {s.task for s in specs} == {ZS, SIM, "image-captioning"}  # CoCa captions
    for spec in specs:
        cfg = open_clip.get_pretrained_cfg(spec.arch, spec.pretrained)
        assert cfg, f"{spec.id}: open_clip has no pretrained tag {spec.arch}/{spec.pretrained}"
        assert spec.source == "hf-hub:" + cfg["hf_hub"].rstrip("/"), spec.id
        assert spec.revision and spec.params and spec.license


# -- call options -----------------------------------------------------------------------------------------
def test_zero_shot_top_k_contract(images, zero_shot):
    from option_contract import check_top_k

    labels = ["zero", "one", "two", "three", "four", "five", "six"]
    check_top_k(zero_shot, images[:3], n_labels=7, labels=labels)
    check_top_k(zero_shot, images[:2], n_labels=7, labels=",".join(labels))  # as -o labels=... gives it


def test_similarity_top_k_contract(images, similarity):
    from option_contract import check_top_k

    texts = TEXTS + ["a cat", "a car", "the digit one"]
    check_top_k(similarity, images[:3], n_labels=7, texts=texts)


@pytest.mark.parametrize("kwargs, words", [
    ({"labels": 5}, ["'labels'", "list of strings"]), ({"labels": ["cat", 3]}, ["'labels'", "list of strings"]),
    ({"labels": ["cat"], "templates": 7}, ["'templates'", "list of strings"]),
    ({"labels": ["cat"], "templates": "a photo"}, ["a photo", "{}"]),
    ({"labels": ["cat"], "embeddings": False}, ["'embeddings'", "Valid options: labels, templates, top_k"]),
    ({"label": ["cat"]}, ["Did you mean: labels?"]),
])
def test_zero_shot_option_errors(images, zero_shot, kwargs, words):
    from option_contract import check_bad_options

    check_bad_options(zero_shot, images[:2], [(kwargs, words)])


@pytest.mark.parametrize("kwargs, words", [
    ({"texts": ["a"], "embeddings": "maybe"}, ["'embeddings'", "boolean"]),
    ({"texts": ["a"], "embeddings": 0}, ["'embeddings'", "boolean"]),
    ({"texts": ["a"], "labels": ["a"]}, ["'labels'", "Valid options: texts, top_k, embeddings"]),
    ({"texts": {"a": 1}}, ["'texts'", "list of strings"]), ({}, ["--text"]),
])
def test_similarity_option_errors(images, similarity, kwargs, words):
    from option_contract import check_bad_options

    check_bad_options(similarity, images[:2], [(kwargs, words)])


def test_option_strings_are_converted(images, zero_shot, similarity):
    assert similarity(images[0], texts="a digit", embeddings="false").image_embeddings == []
    named = zero_shot(images[:2], labels="zero,one", templates="openai")
    assert [r.to_dict() for r in named] == [r.to_dict() for r in zero_shot(images[:2], labels=["zero", "one"],
                                                                             templates=["openai"])]
    listed = zero_shot(images[:1], labels="[zero, one]", templates='["a photo of a {}.", "a drawing, of the {}."]')
    assert len(listed[0].labels) == 2


@pytest.mark.parametrize("task, args, words", [
    (ZS, ["--label", "a,b", "-o", "top_k=two"], ["'top_k'", "integer >= 1"]),
    (ZS, ["--label", "a,b", "-o", "templates=a photo"], ["a photo", "{}"]),
    (ZS, ["-o", "labels=a,a"], ["distinct"]),
    (ZS, ["--label", "a", "-o", "embeddings=true"], ["'embeddings'", "Valid options: labels, templates, top_k"]),
    (SIM, ["--text", "a dog", "-o", "embeddings=maybe"], ["'embeddings'", "boolean"]),
    (SIM, ["--text", "a dog", "-o", "top_k=0"], ["'top_k'"]),
    (SIM, ["--label", "a dog"], ["'labels'", "Valid options: texts, top_k, embeddings"]),
])
def test_cli_refuses_bad_options(tiny, images, task, args, words):
    from option_contract import check_cli_refuses

    check_cli_refuses(str(tiny[0]), task, str(images[0]), args, words)
