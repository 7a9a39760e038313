"""Fine-tuning image captioners (mmhub_transformers.train_caption) on a tiny generated set: images of a few
colours, each colour with its own caption. Teacher forcing must make the loss fall and the held-out captions
right; the saved model captions through hub run as the loop's evaluation measured it.
"""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("PIL")

import hub  # noqa: E402
from plugins.tiny_captioners import BUILDERS  # noqa: E402

# words the tiny BLIP's WordPiece vocabulary knows (tests/plugins/tiny_captioners.py)
COLOURS = {"a red car": (220, 30, 30), "a blue sky": (30, 40, 220), "a green field": (30, 200, 40),
           "the water under a tree": (10, 10, 10)}
TASK = "image-captioning"

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # tiny models: one torch thread


def write_set(root, per_colour: int, seed: int):
    """``per_colour`` noisy images of each colour and a JSONL of image/caption rows beside them."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for c, (caption, rgb) in enumerate(COLOURS.items()):
        for i in range(per_colour):
            noise = rng.integers(-25, 26, (32, 32, 3))
            pixels = np.clip(np.array(rgb)[None, None, :] + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"{c}_{i}.png")
            rows.append({"image": f"{c}_{i}.png", "caption": caption})
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "data.jsonl"


@pytest.mark.parametrize("name, epochs", [("vit-gpt2", 60), ("blip", 30)])
def test_captioner_learns_the_captions_of_a_tiny_set(tmp_path, name, epochs):
    """Training loss falls to a fraction; held-out chrF from ~0 to >= 80; hub run writes the captions measured."""
    from hub.train.api import evaluate, finetune

    torch.manual_seed(0)
    start = BUILDERS[name](tmp_path / name)
    train, val = write_set(tmp_path / "train", 6, 0), write_set(tmp_path / "val", 2, 1)
    before = evaluate(str(start), val, task=TASK, precision="fp32")
    result = finetune(str(start), train, val=val, task=TASK, out=tmp_path / "out", epochs=epochs, lr=1e-2,
                      batch_size=8, warmup=0.05, head_lr_mult=1.0, precision="fp32", seed=0, progress=False)
    losses = [row["loss"] for row in map(json.loads, result.metrics_file.read_text().splitlines()) if "loss" in row]
    print(f"\n{name} captions: chrF {before['chrf']:.1f} -> {result.metrics['chrf']:.1f}, training loss "
          f"{losses[0]:.3f} -> {losses[-1]:.3f} ({result.steps} steps)")
    assert result.train_rows == 24 and result.val_rows == 8 and not result.problems
    assert losses[-1] < 0.3 * losses[0], losses
    assert before["chrf"] < 30 and result.metrics["chrf"] >= 80, (before, result.metrics)
    images = sorted((tmp_path / "val").glob("*.png"))
    ran = hub.run(str(result.out_dir), [str(p) for p in images], dtype="fp32", num_beams=1, do_sample=False,
                  max_new_tokens=16)  # within the tiny decoders' 32 positions
    truth = [list(COLOURS)[int(p.name.split("_")[0])] for p in images]
    assert evaluate(str(result.out_dir), val, precision="fp32")["chrf"] == pytest.approx(result.metrics["chrf"])
    assert sum(r.text == t for r, t in zip(ran, truth)) >= 6, [r.text for r in ran]


def test_a_non_captioner_is_refused_for_caption_training(tmp_path):
    from hub.errors import HubError
    from hub.train.api import finetune
    from plugins.tiny_models import save_transformers

    model = save_transformers(tmp_path / "bert")
    train = write_set(tmp_path / "train", 1, 0)
    with pytest.raises(HubError) as err:
        finetune(str(model), train, task=TASK, out=tmp_path / "out", epochs=1, precision="fp32", progress=False)
    assert "BLIP" in str(err.value) and "\n" not in str(err.value)
