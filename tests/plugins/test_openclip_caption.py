"""Image captioning with open_clip CoCa, on a tiny CoCa built offline in open_clip's hub layout
(tests/plugins/tiny_captioners.py) and loaded by path.

Parity: the hub's tokens and texts equal those of ``model.generate`` called directly on open_clip's own
preprocessing, with the same settings (greedy, beam search, grouped beam search, seeded sampling), alone and
batched; the text is cleaned as open_clip's examples clean it. The beam bookkeeping that transformers 5 no
longer ships is checked against an exhaustive search. Bad options, detection, the CLI and the server.
"""
from __future__ import annotations

import functools
import itertools
import json

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
pytest.importorskip("transformers")

import hub  # noqa: E402
from hub.errors import OptionError  # noqa: E402
from plugins.tiny_captioners import images, save_coca  # noqa: E402

SEARCHES = {"greedy": ({"generation_type": "greedy", "seq_len": 10}, {"generation_type": "top_k", "top_k": 1,
                                                                      "seq_len": 10}),
            "beam": ({"seq_len": 10, "num_beams": 4, "num_beam_groups": 1},
                     {"seq_len": 10, "num_beams": 4, "num_beam_groups": 1}),
            "group-beam": ({"seq_len": 9}, {"seq_len": 9}),  # open_clip's defaults: 6 beams in 3 groups
            "min-length": ({"generation_type": "greedy", "seq_len": 10, "min_seq_len": 8, "repetition_penalty": 1.5},
                           {"generation_type": "top_k", "top_k": 1, "seq_len": 10, "min_seq_len": 8,
                            "repetition_penalty": 1.5})}

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # tiny models: one torch thread


@pytest.fixture(scope="module")
def coca_dir(tmp_path_factory):
    torch.manual_seed(0)
    return save_coca(tmp_path_factory.mktemp("coca") / "coca")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    root = tmp_path_factory.mktemp("pictures")
    paths = []
    for i, image in enumerate(images(3)):
        image.save(root / f"picture{i}.png")
        paths.append(str(root / f"picture{i}.png"))
    return paths


@pytest.fixture(scope="module")
def pipe(coca_dir):
    return hub.load(str(coca_dir), dtype="fp32")


@functools.lru_cache(maxsize=None)
def direct(directory):
    from mmhub_openclip.beam_scorer import enable_coca_generation

    enable_coca_generation()  # open_clip turns generation off under transformers 5 (no BeamSearchScorer)
    model, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{directory}", device="cpu",
                                                               weights_only=True)
    return model.eval(), preprocess


def expected(directory, paths, seed=None, **settings):
    """(tokens, text) per image from CoCa.generate on one batch, cleaned as open_clip's examples clean it."""
    from PIL import Image

    model, preprocess = direct(directory)
    pixels = torch.stack([preprocess(Image.open(p)) for p in paths])
    if seed is not None:
        torch.manual_seed(seed)
    with torch.inference_mode():
        generated = model.generate(pixels, **settings)
    out = []
    for row in generated:
        text = open_clip.decode(row).split("<end_of_text>")[0].replace("<start_of_text>", "").strip()
        ids = row.tolist()[1:]
        out.append((ids[:ids.index(49407)] if 49407 in ids else ids, text))
    return out


# -- parity ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("search", SEARCHES)
def test_captions_equal_coca_generate_alone_and_batched(pipe, coca_dir, pictures, search):
    ours, theirs = SEARCHES[search]
    batched = pipe(pictures, **ours)
    assert [(r.tokens, r.text) for r in batched] == expected(coca_dir, pictures, **theirs)
    alone = pipe(pictures[1], **ours)
    assert (alone.tokens, alone.text) == expected(coca_dir, pictures[1:2], **theirs)[0]
    assert len({tuple(r.tokens) for r in batched}) > 1  # the captions depend on the image
    assert all(r.num_tokens == len(r.tokens) > 0 for r in batched)
    if "min_seq_len" in theirs:
        assert all(len(r.tokens) >= theirs["min_seq_len"] - 1 for r in batched)


@pytest.mark.parametrize("kind, extra", [("top_p", {"top_p": 0.9}), ("top_k", {"sample_top_k": 50})])
def test_sampling_with_a_seed_equals_generate_and_repeats(pipe, coca_dir, pictures, kind, extra):
    theirs = {"top_k": extra["sample_top_k"]} if "sample_top_k" in extra else extra
    first = pipe(pictures, generation_type=kind, seq_len=10, seed=11, temperature=1.3, **extra)
    again = pipe(pictures, generation_type=kind, seq_len=10, seed=11, temperature=1.3, **extra)
    assert [r.tokens for r in first] == [r.tokens for r in again]
    want = expected(coca_dir, pictures, seed=11, generation_type=kind, seq_len=10, temperature=1.3, **theirs)
    assert [(r.tokens, r.text) for r in first] == want


# -- the beam bookkeeping, against an exhaustive search ------------------------------------------------------------
def test_beam_scorer_finds_the_best_sequence_when_the_beams_hold_every_candidate():
    """Vocabulary 3 (token 2 ends), 3 steps: with 9 beams nothing is pruned, so the result is the best
    length-normalised sequence among all of them, as an exhaustive search finds it."""
    from mmhub_openclip.beam_scorer import BeamSearchScorer

    torch.manual_seed(3)
    table = torch.randn(4, 3, 3).log_softmax(-1)  # step x previous token x next token
    vocab, beams, eos, steps = 3, 9, 2, 3
    scorer = BeamSearchScorer(batch_size=1, num_beams=beams, device="cpu")
    ids = torch.zeros((beams, 1), dtype=torch.long)
    scores = torch.full((beams,), -1e9)
    scores[0] = 0
    for step in range(steps):
        logits = table[step][ids[:, -1]]
        candidates = (logits + scores[:, None]).view(1, -1)
        top, flat = candidates.topk(2 * beams, dim=1)
        out = scorer.process(ids, top, flat % vocab, flat // vocab, pad_token_id=0, eos_token_id=eos)
        ids = torch.cat([ids[out["next_beam_indices"]], out["next_beam_tokens"][:, None]], dim=-1)
        scores = out["next_beam_scores"]
    best = scorer.finalize(ids, scores, None, None, max_length=steps + 2, pad_token_id=0, eos_token_id=eos)
    every = []
    for length in range(1, steps + 1):
        for seq in itertools.product(range(vocab), repeat=length):
            if eos in seq[:-1]:
                continue
            path = (0, *seq)
            total = sum(float(table[i][path[i], path[i + 1]]) for i in range(length))
            finished = seq[-1] == eos
            if not finished and length < steps:
                continue
            # scores are divided by the length counted with the start token (and the end token, if any)
            every.append((total / (length + 1), path[:-1] if finished else path))
    score, path = max(every)
    got = best["sequences"][0].tolist()
    assert got[:len(path)] == list(path) and float(best["sequence_scores"][0]) == pytest.approx(score, abs=1e-6)


# -- options, detection ----------------------------------------------------------------------------------------
BAD_OPTIONS = [
    ({"generation_type": "nucleus"}, ["'generation_type'", "beam_search, greedy, top_k, top_p"]),
    ({"seq_len": 5, "min_seq_len": 5}, ["'min_seq_len'", "below 'seq_len'"]),
    ({"seq_len": 400}, ["'seq_len'", "at most 16"]),
    ({"num_beams": 4}, ["'num_beams'", "multiple of 'num_beam_groups'"]),
    ({"num_beams": 1}, ["'num_beams'", "at least 2", "generation_type=greedy"]),
    ({"top_p": 0}, ["'top_p'", "> 0"]),
    ({"temperature": -1}, ["'temperature'", "> 0"]),
    ({"top_k": 5}, ["'top_k'", "Did you mean"]),
    ({"sample_top_k": 0}, ["'sample_top_k'", ">= 1"]),
    ({"seed": "x"}, ["'seed'", "integer"]),
]


@pytest.mark.parametrize("options, words", BAD_OPTIONS)
def test_bad_options_are_refused_by_name(pipe, pictures, options, words):
    for given in (pictures[0], pictures):
        with pytest.raises(OptionError) as err:
            pipe(given, **{"seq_len": 10, **options})  # the tiny model's context is 16 tokens
        assert all(w in str(err.value) for w in words), str(err.value)


def test_coca_directories_are_captioners_and_still_zero_shot(coca_dir, pictures):
    assert hub.load(str(coca_dir), dtype="fp32").spec.task == "image-captioning"
    zero_shot = hub.load(str(coca_dir), task="zero-shot-image-classification", dtype="fp32")
    assert len(zero_shot(pictures[0], labels=["cat", "dog"]).labels) == 2


def test_a_clip_model_is_not_taken_for_a_captioner(tmp_path):
    from hub.errors import HubError
    from plugins.tiny_models import save_openclip

    clip = save_openclip(tmp_path / "clip")
    assert hub.load(str(clip), dtype="fp32").spec.task == "zero-shot-image-classification"
    with pytest.raises(HubError):
        hub.load(str(clip), task="image-captioning", dtype="fp32")


# -- CLI and server ----------------------------------------------------------------------------------------------
def test_cli_json_and_table(pipe, coca_dir, pictures, cli_runner):
    from hub.cli import cli

    args = ["run", str(coca_dir), *pictures[:2], "--dtype", "fp32", "-o", "generation_type=greedy",
            "-o", "seq_len=8"]
    result = cli_runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    want = pipe(pictures[:2], generation_type="greedy", seq_len=8)
    assert json.loads(result.stdout) == [r.to_dict() for r in want]
    table = cli_runner.invoke(cli, args)
    assert table.exit_code == 0 and all(r.text in table.stdout for r in want)
    bad = cli_runner.invoke(cli, [*args[:3], "--dtype", "fp32", "-o", "generation_type=sampling"])
    assert bad.exit_code == 2 and "generation_type" in bad.output and "Traceback" not in bad.output


def test_served_through_the_task_table(pipe, coca_dir, pictures):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    import base64

    from serve_server import hub_app, running

    want = pipe(pictures[:2], generation_type="greedy", seq_len=8)
    encoded = [base64.b64encode(open(p, "rb").read()).decode() for p in pictures[:2]]
    with running(hub_app(preload=(str(coca_dir),))) as url:
        answer = httpx.post(f"{url}/v1/run/{coca_dir.resolve()}", json={"inputs": encoded, "options": {
            "generation_type": "greedy", "seq_len": "8"}}, timeout=60)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["task"] == "image-captioning" and body["results"] == [r.to_dict() for r in want]


# -- the plugin contract (hub.testing) ---------------------------------------------------------------------------
@pytest.mark.mmhub_plugins("openclip")
def test_coca_keeps_the_contract(isolated_hub, coca_dir, pictures):
    from hub.testing import check_model_contract

    report = check_model_contract(str(coca_dir), pictures, options={"generation_type": "greedy", "seq_len": 8},
                                  skip=("listing-imports", "import-time"))
    assert "batch-size" in report.checked and "json-round-trip" in report.checked
