"""Contrastive fine-tuning of open_clip models through the hub's loop.

A tiny CLIP (ViT: width 64, 2 layers, patch 8, 32 px; text: width 64, 2 layers, context 16) is built
untrained at test time and saved in open_clip's hub layout as the starting point. The learning test
trains it through :func:`hub.train.api.finetune` on scikit-learn's digits (upscaled RGB PNGs,
captions such as "a photo of the digit seven", with the class as ``label`` so captions of one digit
are positives of each other) and then classifies held-out digits zero-shot through the hub's
``zero-shot-image-classification`` pipeline, loading the output directory by path.
"""
from __future__ import annotations

import json
import random

import pytest

pytestmark = pytest.mark.slow  # tiny backbone models

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

import hub  # noqa: E402
from hub.train.adapter import Record  # noqa: E402

ZS = "zero-shot-image-classification"
ARCH = "mmhub-tiny-clip-train"
CONFIG = {"embed_dim": 64,
          "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
          "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEMPLATES = ["a photo of the digit {}", "a picture of a {}", "the number {}", "a handwritten {}"]
EVAL_TEMPLATE = "a photo of the digit {}"


# a ModifiedResNet image tower (BatchNorm, attention pooling) for the save -> load round trip
RESNET_CONFIG = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8, "head_width": 16},
                 "text_cfg": CONFIG["text_cfg"]}


def save_start(directory, config=CONFIG):
    """An untrained tiny CLIP in open_clip's hub layout (config + safetensors)."""
    from open_clip.push_to_hf_hub import save_config_for_hf
    from safetensors.torch import save_file

    name = f"{ARCH}-{directory.name}"
    cfg_file = directory.parent / f"{name}.json"
    cfg_file.write_text(json.dumps(config))
    open_clip.add_model_config(cfg_file)
    torch.manual_seed(0)
    model = open_clip.create_model(name)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), directory / "open_clip_model.safetensors")
    save_config_for_hf(model, directory / "open_clip_config.json", config)
    return directory


def write_digits(root, indices):
    """Digits as 32x32 RGB PNGs; returns [(path, digit)]."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in indices:
        pixels = (digits.images[i] * (255 / 16)).astype("uint8")
        path = root / f"{i:04d}.png"
        Image.fromarray(pixels).resize((32, 32), Image.BILINEAR).convert("RGB").save(path)
        rows.append((path, int(digits.target[i])))
    return rows


def write_jsonl(path, rows, seed=0):
    """``{"image", "caption", "label"}`` lines with captions from a few templates."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for image, digit in rows:
            caption = rng.choice(TEMPLATES).format(WORDS[digit])
            fh.write(json.dumps({"image": image.name, "caption": caption, "label": WORDS[digit]}) + "\n")
    return path


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    return save_start(tmp_path_factory.mktemp("clip-train") / "tiny-clip-start")


@pytest.fixture(scope="module")
def adapter(start):
    from hub.device import DeviceManager
    from hub.train.api import get_adapter

    return get_adapter(hub.get_spec(str(start), task=ZS), ZS, None, DeviceManager("cpu", "fp32"))


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits-small")
    rows = write_digits(root, range(24))
    return [Record(input=str(p), text=TEMPLATES[i % 4].format(WORDS[d]), label=WORDS[d], where=f"d:{i}")
            for i, (p, d) in enumerate(rows)]


def test_losses_match_open_clip_with_one_positive_per_row():
    from open_clip.loss import ClipLoss, SigLipLoss

    from mmhub_openclip.train import contrastive_loss, sigmoid_loss

    torch.manual_seed(0)
    image = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    scale, bias = torch.tensor(14.0), torch.tensor(-3.0)
    groups = torch.arange(6)
    assert torch.allclose(contrastive_loss(scale * image @ text.T, groups), ClipLoss()(image, text, scale))
    assert torch.allclose(sigmoid_loss(scale * image @ text.T + bias, groups), SigLipLoss()(image, text, scale, bias))


def test_adapter_kind_and_batch_shapes(adapter, small_set):
    assert adapter.kind == "contrastive" and adapter.spec_fields["plugin"] == "openclip"
    batch = adapter.collate([adapter.load_example(r, True) for r in small_set[:6]])
    assert batch["pixel_values"].shape == (6, 3, 32, 32)
    assert batch["input_ids"].shape == (6, 16) and batch["input_ids"].dtype == torch.long
    assert batch["groups"].tolist() == [0, 1, 2, 3, 4, 5]  # digits 0..5: all different
    same = adapter.collate([adapter.load_example(r, False) for r in (small_set[0], small_set[10])])
    assert same["groups"].tolist() == [0, 0]  # both zeros: positives of each other


def test_multi_positive_loss_reduces_to_clip_loss_with_distinct_groups():
    from mmhub_openclip.train import contrastive_loss

    torch.manual_seed(0)
    logits = torch.randn(5, 5)
    expected = (torch.nn.functional.cross_entropy(logits, torch.arange(5))
                + torch.nn.functional.cross_entropy(logits.T, torch.arange(5))) / 2
    assert torch.allclose(contrastive_loss(logits, torch.arange(5)), expected)
    # two positives per row: each target row puts half its mass on each positive
    groups = torch.tensor([0, 0, 1, 1, 1])
    mask = (groups[:, None] == groups[None, :]).float()
    by_hand = []
    for scores in (logits, logits.T):
        logp = torch.log_softmax(scores, dim=1)
        by_hand.append(torch.stack([-(logp[i] * mask[i]).sum() / mask[i].sum() for i in range(5)]).mean())
    assert torch.allclose(contrastive_loss(logits, groups), (by_hand[0] + by_hand[1]) / 2)


def test_loss_is_finite_and_decreases(start, small_set, one_thread):
    from hub.device import DeviceManager
    from hub.train.api import get_adapter

    fresh = get_adapter(hub.get_spec(str(start), task=ZS), ZS, None, DeviceManager("cpu", "fp32"))
    batch = fresh.collate([fresh.load_example(r, False) for r in small_set])
    optimizer = torch.optim.AdamW(fresh.module.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = fresh.loss(fresh.module, batch)
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


@pytest.fixture(scope="module", params=["vit", "resnet"])
def tower(request, start, tmp_path_factory):
    """(adapter, its model config): the ViT start, or a ResNet one trained a step (BatchNorm stats move)."""
    from hub.device import DeviceManager
    from hub.train.api import get_adapter

    if request.param == "vit":
        return get_adapter(hub.get_spec(str(start), task=ZS), ZS, None, DeviceManager("cpu", "fp32")), CONFIG
    directory = save_start(tmp_path_factory.mktemp("clip-resnet") / "tiny-rn-start", RESNET_CONFIG)
    return get_adapter(hub.get_spec(str(directory), task=ZS), ZS, None, DeviceManager("cpu", "fp32")), RESNET_CONFIG


def test_save_then_hub_load_gives_identical_embeddings(tower, small_set, tmp_path, one_thread):
    from PIL import Image

    adapter, config = tower
    batch = adapter.collate([adapter.load_example(r, True) for r in small_set[:8]])
    adapter.loss(adapter.module, batch).backward()  # a training forward: BatchNorm running stats change
    adapter.module.zero_grad()
    out = tmp_path / "saved-clip"
    adapter.save(adapter.module, out)
    assert json.loads((out / "open_clip_config.json").read_text())["model_cfg"] == config
    pipe = hub.load(str(out), task=ZS, dtype="fp32")
    paths = [r.input for r in small_set[:5]]
    texts = [r.text for r in small_set[:5]]
    module = adapter.module.eval()
    with torch.no_grad():
        pixels = torch.stack([pipe.transform(Image.open(p).convert("RGB")) for p in paths])
        direct = adapter.predict(module, {"pixel_values": pixels, "input_ids": adapter.collate(
            [adapter.load_example(r, False) for r in small_set[:5]])["input_ids"]})
    assert (pipe.embed_images(paths) - direct[0]).abs().max().item() <= 1e-5
    assert (pipe.embed_texts(texts) - direct[1]).abs().max().item() <= 1e-5
    assert torch.equal(pipe.model.logit_scale, module.logit_scale)
    module.train()


def test_start_from_arch_and_bare_checkpoint_saves_a_full_layout(start, small_set, tmp_path):
    """A catalogue-style start (open_clip ``arch`` + a checkpoint, no config) is saved with its config."""
    import shutil

    from hub.device import DeviceManager
    from hub.registry import ModelSpec
    from hub.train.api import get_adapter

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(start / "open_clip_model.safetensors", bare)
    spec = ModelSpec(id="tiny-by-arch", task=ZS, plugin="openclip", source=str(bare), arch=f"{ARCH}-{start.name}")
    adapter = get_adapter(spec, ZS, None, DeviceManager("cpu", "fp32"))
    assert adapter.spec_fields["arch"] == spec.arch
    out = tmp_path / "from-arch"
    adapter.save(adapter.module, out)
    assert json.loads((out / "open_clip_config.json").read_text())["model_cfg"] == CONFIG
    texts = [r.text for r in small_set[:3]]
    with torch.no_grad():
        direct = adapter.module.eval().encode_text(adapter.collate(
            [adapter.load_example(r, False) for r in small_set[:3]])["input_ids"], normalize=True)
    assert (hub.load(str(out), task=ZS, dtype="fp32").embed_texts(texts) - direct).abs().max().item() <= 1e-5


def test_finetune_command_line(start, tmp_path, cli_runner, one_thread):
    """``hub finetune`` with the default precision, two steps, then ``hub run`` on the output."""
    from hub.cli import cli

    rows = write_digits(tmp_path, range(40))
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    out = tmp_path / "cli-clip"
    done = cli_runner.invoke(cli, ["finetune", str(start), "--data", str(data), "--task", "zero-shot", "--epochs", "1",
                                   "--max-steps", "2", "--batch-size", "16", "--out", str(out)],
                             catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert (out / "open_clip_config.json").is_file() and (out / "mmhub.yaml").is_file()
    shown = cli_runner.invoke(cli, ["run", str(out), str(rows[0][0]), "--label", "zero,one", "--json"],
                              catch_exceptions=False)
    assert shown.exit_code == 0 and len(json.loads(shown.stdout)[0]["labels"]) == 2


def test_contrastive_rows_keep_an_optional_label(tmp_path):
    from hub.train.data import read_records

    rows = write_digits(tmp_path, range(3))
    with_label = write_jsonl(tmp_path / "with.jsonl", rows)
    records, problems = read_records(with_label, "contrastive", "image")
    assert not problems and [r.label for r in records] == ["zero", "one", "two"]
    assert all(r.text.endswith(r.label) for r in records)
    (tmp_path / "plain.jsonl").write_text("".join(json.dumps({"image": p.name, "caption": "a digit"}) + "\n"
                                                  for p, _ in rows))
    records, _ = read_records(tmp_path / "plain.jsonl", "contrastive", "image")
    assert [r.label for r in records] == [None] * 3


def test_other_tasks_are_not_trained_here(start):
    from hub.device import DeviceManager
    from hub.errors import HubError
    from hub.train.api import get_adapter

    with pytest.raises(HubError, match="cannot be fine-tuned for image-classification"):
        get_adapter(hub.get_spec(str(start), task=ZS), "image-classification", ["a", "b"], DeviceManager("cpu"))


@pytest.mark.slow
def test_contrastive_finetuning_learns_zero_shot_digits(start, tmp_path, one_thread, cli_runner):
    """Untrained tiny CLIP -> finetune on ~1300 captioned digits -> >= 80% zero-shot on 297 unseen ones."""
    from sklearn.datasets import load_digits

    from hub.cli import cli
    from hub.train.api import evaluate, finetune

    order = list(range(len(load_digits().target)))
    random.Random(0).shuffle(order)
    test_rows = write_digits(tmp_path / "test", order[:297])
    val_rows = write_digits(tmp_path / "data", order[297:497])
    train = write_jsonl(tmp_path / "data" / "train.jsonl", write_digits(tmp_path / "data", order[497:]))
    # validation captions use one template, so recall@1 (identical captions are interchangeable) is per digit
    val = tmp_path / "data" / "val.jsonl"
    val.write_text("".join(
        json.dumps({"image": p.name, "caption": EVAL_TEMPLATE.format(WORDS[d]), "label": WORDS[d]}) + "\n"
        for p, d in val_rows))
    out = tmp_path / "digits-clip"
    result = finetune(str(start), str(train), val=str(val), task=ZS, out=out,
                      epochs=15, lr=5e-4, batch_size=128, precision="fp32", warmup=0.1, schedule="cosine",
                      progress=False)
    assert result.metric == "recall@1" and result.metrics["recall@1"] >= 0.8, result.metrics
    assert (out / "open_clip_model.safetensors").is_file() and (out / "mmhub.yaml").is_file()
    spec = hub.get_spec(str(out))
    assert (spec.task, spec.plugin) == (ZS, "openclip")
    again = evaluate(str(out), str(val), precision="fp32")  # the saved weights are the best evaluated ones
    assert again["recall@1"] == pytest.approx(result.metrics["recall@1"], abs=0.01)

    predictions = hub.run(str(out), [str(p) for p, _ in test_rows], labels=WORDS, templates=[EVAL_TEMPLATE],
                          dtype="fp32", batch_size=100)
    accuracy = sum(r.labels[0].label == WORDS[d] for r, (_, d) in zip(predictions, test_rows)) / len(test_rows)
    print(f"recall@1 {result.metrics['recall@1']:.3f}, zero-shot accuracy {accuracy:.3f}, "
          f"{result.steps} steps, {result.throughput:.0f} examples/s")
    assert accuracy >= 0.8, f"zero-shot accuracy {accuracy:.3f} on held-out digits"

    shown = cli_runner.invoke(cli, ["run", str(out), str(test_rows[0][0]), "--label", ",".join(WORDS),
                                    "-o", f"templates={EVAL_TEMPLATE}", "--dtype", "fp32", "--json"],
                              catch_exceptions=False)
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)[0]["labels"][0]["label"] == predictions[0].labels[0].label
