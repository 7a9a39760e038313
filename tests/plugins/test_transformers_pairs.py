"""Zero-shot text classification (NLI) and text ranking (cross-encoders) of the transformers plugin.

Tiny models built offline (:mod:`tiny_pairs`) are loaded by path through ``hub.load``, the code path a
catalogue id takes. Zero-shot scores are checked against the computation written out here from the model's
own logits (as transformers' zero-shot pipeline computes them) and against that pipeline itself; ranking
scores against ``sentence_transformers.CrossEncoder`` and against the model called directly.
"""
from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hub  # noqa: E402
import tiny_pairs as tp  # noqa: E402
from hub.errors import HubError, InputError, OptionError  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:.*was truncated"), pytest.mark.slow]  # asserted in test_truncation_warns_once
TOL = 1e-5
TEXTS = ["the river in paris is long", "what a match of sports", "who is the capital of germany",
         " ".join(["the weather in berlin is about music"] * 12)]  # the last one is truncated (64 positions)
LABELS = ["sports", "politics", "science", "weather"]
QUERIES = ["what is the capital of france", "how tall is the river"]
PASSAGES = ["paris is the capital of france", "berlin is a city in germany", "the river is long",
            "music and sports", " ".join(["the city of paris"] * 20)]
ST_SIGMOID = "torch.nn.modules.activation.Sigmoid"
ST_IDENTITY = "torch.nn.modules.linear.Identity"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    mk = tmp_path_factory.mktemp
    return {"bart": tp.save_nli(mk("nli-bart"), tp.BART_ORDER),
            "deberta": tp.save_nli(mk("nli-deb"), tp.DEBERTA_ORDER, 1),
            "sentiment": tp.save_classifier(mk("sentiment"), tp.SENTIMENT),
            "ce": tp.save_cross_encoder(mk("ce")), "ce-identity": tp.save_cross_encoder(mk("ce-id"), ST_IDENTITY, 2),
            "ce-sigmoid": tp.save_cross_encoder(mk("ce-sig"), ST_SIGMOID, 3),
            # the catalogued models' own architectures: bart-large-mnli, DeBERTa-v3 NLI, bge-reranker (XLM-R)
            "bart-model": tp.save_bart_nli(mk("bart-model")), "deberta-model": tp.save_deberta_nli(mk("deb-model")),
            "xlmr-ce": tp.save_xlmr_cross_encoder(mk("xlmr-ce"))}
ZERO_SHOT = {"task": "zero-shot-classification"}


@pytest.mark.parametrize("name, task", [("bart-model", "zero-shot-classification"),
                                        ("deberta-model", "zero-shot-classification"), ("xlmr-ce", "text-ranking")])
def test_the_catalogued_architectures_are_detected_by_their_heads(dirs, name, task):
    """A BART NLI head is a classifier, not a summariser, though BART also summarises."""
    assert hub.get_spec(str(dirs[name])).task == task


def direct(directory):
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(directory)).eval()
    return model, transformers.AutoTokenizer.from_pretrained(str(directory))


def pair_logits(model, tok, first, second, truncation=True):
    """One pair alone (no padding), as the model scores it."""
    with torch.inference_mode():
        encoded = tok(first, second, truncation=truncation, max_length=64, return_tensors="pt")
        return model(**encoded).logits[0].float()


def zero_shot_reference(model, tok, text, labels, template, multi_label):
    """transformers' zero-shot computation, written out: entailment softmax over labels, or per label."""
    entail = next(i for name, i in model.config.label2id.items() if name.startswith("entail"))
    contra = next(i for name, i in model.config.label2id.items() if name.startswith("contra"))
    logits = torch.stack([pair_logits(model, tok, text, template.format(label), "only_first") for label in labels])
    if multi_label or len(labels) == 1:
        pair = logits[:, [contra, entail]]
        return {label: float(p) for label, p in zip(labels, pair.softmax(-1)[:, 1])}
    return {label: float(p) for label, p in zip(labels, logits[:, entail].softmax(0))}


# -- zero-shot text classification ------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["bart", "deberta", "bart-model", "deberta-model"])
@pytest.mark.parametrize("multi_label, labels, template", [
    (False, LABELS, "This example is {}."),
    (True, LABELS, "This example is {}."),
    (False, LABELS[:2], "the text is about {}"),
    (False, ["weather"], "This example is {}."),  # one label: entailment against contradiction
])
def test_zero_shot_matches_the_nli_computation(dirs, order, multi_label, labels, template):
    """Batched and padded (batch_size 3), as each pair alone; on BERT with both label orders and the BART and
    DeBERTa-v2 architectures."""
    pipe = hub.load(str(dirs[order]), dtype="fp32", **ZERO_SHOT)
    assert pipe.task == "zero-shot-classification"
    model, tok = direct(dirs[order])
    results = pipe(TEXTS, labels=labels, hypothesis_template=template, multi_label=multi_label, batch_size=3,
                   top_k=len(labels))
    for text, result in zip(TEXTS, results):
        want = zero_shot_reference(model, tok, text, labels, template, multi_label)
        got = {l.label: l.score for l in result.labels}
        assert got.keys() == want.keys()
        assert max(abs(got[k] - want[k]) for k in want) <= TOL
        assert [l.score for l in result.labels] == sorted(got.values(), reverse=True)
        assert all(labels[l.index] == l.label for l in result.labels)
    if not multi_label and len(labels) > 1:
        assert all(abs(sum(l.score for l in r.labels) - 1) < 1e-5 for r in results)


@pytest.mark.parametrize("kind", ["bart", "bart-model", "deberta-model"])
@pytest.mark.parametrize("multi_label", [False, True])
def test_zero_shot_equals_transformers_pipeline(dirs, multi_label, kind):
    pipe = hub.load(str(dirs[kind]), dtype="fp32", **ZERO_SHOT)
    model, tok = direct(dirs[kind])
    reference = transformers.pipeline("zero-shot-classification", model=model, tokenizer=tok, device="cpu")
    for text in TEXTS[:3]:
        want = reference(text, candidate_labels=LABELS, multi_label=multi_label)
        got = pipe(text, labels=LABELS, multi_label=multi_label, top_k=len(LABELS))
        assert [l.label for l in got.labels] == want["labels"]
        assert max(abs(a.score - b) for a, b in zip(got.labels, want["scores"])) <= TOL


def test_zero_shot_top_k_contract(dirs):
    from option_contract import check_top_k

    pipe = hub.load(str(dirs["bart"]), dtype="fp32")
    labels = LABELS + ["music", "city"]
    check_top_k(pipe, TEXTS[:2], len(labels), labels=labels)


def test_truncation_warns_once(dirs):
    import warnings

    from hub.tasks.base import HubWarning

    pipe = hub.load(str(dirs["deberta"]), dtype="fp32", cache=False)
    with pytest.warns(HubWarning, match="text pair longer than the model's maximum of 64 tokens was truncated"):
        pipe(TEXTS[-1], labels=LABELS[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe(TEXTS[0], labels=LABELS[:2])  # short: no warning


def test_zero_shot_needs_an_entailment_label(dirs):
    with pytest.raises(HubError, match="no 'entailment' label.*negative, positive.*bart-large-mnli"):
        hub.load(str(dirs["sentiment"]), task="zero-shot-classification", dtype="fp32", cache=False)


# -- text ranking -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, activation", [("ce", "sigmoid"), ("ce-sigmoid", "sigmoid"), ("ce-identity", None),
                                              ("xlmr-ce", "sigmoid")])
def test_ranking_matches_cross_encoder_and_the_model(dirs, kind, activation):
    from sentence_transformers import CrossEncoder

    pipe = hub.load(str(dirs[kind]), dtype="fp32")
    assert pipe.task == "text-ranking"
    model, tok = direct(dirs[kind])
    encoder = CrossEncoder(str(dirs[kind]), device="cpu")
    st = [encoder.predict([(query, p) for p in PASSAGES], batch_size=2) for query in QUERIES]
    logits = [[float(pair_logits(model, tok, query, p)[0]) for p in PASSAGES] for query in QUERIES]
    for batch_size in (1, 3, 32):
        results = pipe(QUERIES, texts=PASSAGES, batch_size=batch_size, top_k=len(PASSAGES))
        for q, result in enumerate(results):
            assert sorted(l.index for l in result.labels) == list(range(len(PASSAGES)))
            assert [l.score for l in result.labels] == sorted((l.score for l in result.labels), reverse=True)
            got = {l.index: l.score for l in result.labels}
            assert all(PASSAGES[l.index] == l.label for l in result.labels)
            direct_scores = [1 / (1 + math.exp(-x)) if activation else x for x in logits[q]]
            assert max(abs(got[i] - float(st[q][i])) for i in got) <= TOL
            assert max(abs(got[i] - direct_scores[i]) for i in got) <= TOL
    raw = pipe(QUERIES[0], texts=PASSAGES, raw_scores=True, top_k=len(PASSAGES))
    assert max(abs(l.score - logits[0][l.index]) for l in raw.labels) <= TOL


def test_ranking_top_k_and_pairs(dirs):
    from option_contract import check_top_k

    pipe = hub.load(str(dirs["ce"]), dtype="fp32")
    more = PASSAGES + ["the capital", "a city"]
    check_top_k(pipe, QUERIES, len(more), texts=more)
    everything = pipe(QUERIES[0], texts=more, top_k=len(more))
    assert len(pipe(QUERIES[0], texts=more).labels) == 5  # top_k's default, as for every ranked result
    for k in (1, 2, "3", len(more) + 5):
        got = pipe(QUERIES[0], texts=more, top_k=k)
        assert [(l.index, round(l.score, 6)) for l in got.labels] == \
            [(l.index, round(l.score, 6)) for l in everything.labels[:int(k)]]
    pairs = [(QUERIES[0], p) for p in more]  # the server's path: one score per pair
    scores = pipe.run_batches(pairs, 2, False, **pipe.resolve_options({}))
    assert max(abs(scores[l.index] - l.score) for l in everything.labels) <= TOL
    assert pipe([], texts=PASSAGES) == []


def test_ranking_needs_one_output(dirs):
    with pytest.raises(HubError, match="3 outputs.*one relevance output.*zero-shot-classification"):
        hub.load(str(dirs["bart"]), task="text-ranking", dtype="fp32", cache=False)


# -- bad input --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, given, options, error, words", [
    ("bart", "a text", {}, OptionError, ["needs candidate labels", "--label"]),
    ("bart", "a text", {"labels": []}, OptionError, ["labels", "non-empty"]),
    ("bart", "a text", {"labels": ["sports", ""]}, OptionError, ["labels[1]", "non-empty string"]),
    ("bart", "a text", {"labels": ["sports", "   "]}, OptionError, ["labels[1]"]),
    ("bart", "a text", {"labels": ["sports", "sports"]}, OptionError, ["distinct", "sports"]),
    ("bart", "a text", {"labels": ["sports", 3]}, OptionError, ["'labels'", "list of strings"]),
    ("bart", "a text", {"labels": ["a"], "hypothesis_template": "no place"}, OptionError, ["'{}'", "This example"]),
    ("bart", "a text", {"labels": ["a"], "hypothesis_template": "{} and {x}"}, OptionError, ["cannot be filled"]),
    ("bart", "a text", {"labels": ["a"], "multi_label": "maybe"}, OptionError, ["'multi_label'", "boolean"]),
    ("bart", "a text", {"labels": [" ".join(["sports"] * 70)]}, OptionError, ["leaves no room for the text"]),
    ("bart", "", {"labels": ["sports"]}, InputError, ["text to classify is empty"]),
    ("bart", " \n ", {"labels": ["sports", "music"]}, InputError, ["text to classify is empty"]),
    ("bart", 42, {"labels": ["sports"]}, InputError, ["takes text"]),
    ("ce", "a query", {}, OptionError, ["needs passages", "--text"]),
    ("ce", "a query", {"texts": []}, OptionError, ["texts", "non-empty"]),
    ("ce", "a query", {"texts": ["ok", 5]}, OptionError, ["'texts'", "list of strings"]),
    ("ce", "a query", {"texts": ["ok", " "]}, OptionError, ["texts[1]", "non-empty string"]),
    ("ce", "", {"texts": ["ok"]}, InputError, ["query is empty"]),
    ("ce", "   ", {"texts": ["ok"]}, InputError, ["query is empty"]),
    ("ce", 42, {"texts": ["ok"]}, InputError, ["takes text"]),
    ("ce", "a query", {"texts": ["ok"], "top_k": 0}, OptionError, ["'top_k'", ">= 1"]),
])
def test_bad_input_is_refused(dirs, kind, given, options, error, words):
    pipe = hub.load(str(dirs[kind]), dtype="fp32")
    for inputs in (given, [given]):
        with pytest.raises(error) as err:
            pipe(inputs, **options)
        assert all(w in str(err.value) for w in words), str(err.value)


@pytest.mark.parametrize("kind, given, args, words", [
    ("bart", "a text", [], ["needs candidate labels"]),
    ("bart", "a text", ["--label", "a", "-o", "hypothesis_template=nothing"], ["hypothesis_template", "{}"]),
    ("bart", "a text", ["--label", "a", "--label", "a"], ["distinct"]),
    ("ce", "a query", [], ["needs passages"]),
    ("ce", "a query", ["--text", "ok", "-o", "top_k=0"], ["'top_k'"]),
    ("ce", " ", ["--text", "ok"], ["query is empty"]),
    ("bart", " ", ["--label", "sports"], ["text to classify is empty"]),
])
def test_cli_refuses_bad_input(dirs, kind, given, args, words):
    from option_contract import check_cli_refuses

    task = "zero-shot-classification" if kind == "bart" else "text-ranking"
    check_cli_refuses(str(dirs[kind]), task, given, args, words)


def test_cli_runs_both_tasks(dirs, cli_runner):
    from hub.cli import cli

    result = cli_runner.invoke(cli, ["run", str(dirs["ce"]), QUERIES[0], "--text", PASSAGES[0], "--text", PASSAGES[1],
                                     "--dtype", "fp32", "--json"])
    assert result.exit_code == 0, result.output
    want = hub.load(str(dirs["ce"]), dtype="fp32")(QUERIES[0], texts=PASSAGES[:2])
    assert json.loads(result.stdout)[0]["labels"] == want.to_dict()["labels"]
    result = cli_runner.invoke(cli, ["run", str(dirs["deberta"]), TEXTS[0], "--label", "sports,science",
                                     "-o", "multi_label=true", "--dtype", "fp32"])
    assert result.exit_code == 0, result.output
    assert "sports (" in result.stdout and "science (" in result.stdout


# -- detection and the catalogue -------------------------------------------------------------------------------
def test_spec_for_path_tells_pair_models_apart(dirs, tmp_path):
    from hub.api import spec_for_path

    assert spec_for_path(str(dirs["bart"])).task == "zero-shot-classification"
    assert spec_for_path(str(dirs["deberta"])).task == "zero-shot-classification"
    assert spec_for_path(str(dirs["sentiment"])).task == "text-classification"
    for kind in ("ce", "ce-identity", "ce-sigmoid"):
        assert spec_for_path(str(dirs[kind])).task == "text-ranking"
    regression = tp.save_classifier(tmp_path / "reg", {0: "LABEL_0"}, problem_type="regression")
    assert spec_for_path(str(regression)).task == "text-classification"
    assert spec_for_path(str(dirs["bart"]), "text-classification").task == "text-classification"


def test_catalogue_entries_and_aliases():
    from hub.api import get_spec, list_models
    from hub.model_options import model_options

    ranking = {s.id for s in list_models(task="rerank")}
    zero_shot = {s.id for s in list_models(task="nli")}
    assert {"ms-marco-minilm-l6-v2", "bge-reranker-base"} <= ranking
    assert {"bart-large-mnli", "deberta-v3-base-mnli-fever-anli"} <= zero_shot
    assert get_spec("cross-encoder/ms-marco-MiniLM-L-6-v2").id == "ms-marco-minilm-l6-v2"
    assert get_spec("facebook/bart-large-mnli").task == "zero-shot-classification"
    names = [o.name for o in model_options(get_spec("bart-large-mnli"))]
    assert names == ["labels", "hypothesis_template", "multi_label", "top_k"]
    assert [o.name for o in model_options(get_spec("BAAI/bge-reranker-base"))] == ["texts", "top_k", "raw_scores"]


@pytest.mark.mmhub_plugins("transformers")
@pytest.mark.parametrize("kind, inputs, options", [("bart", TEXTS[:3], {"labels": LABELS}),
                                                   ("ce", QUERIES + ["where is berlin"], {"texts": PASSAGES})])
def test_pair_models_keep_the_contract(isolated_hub, dirs, kind, inputs, options):
    from hub.testing import check_model_contract

    task = "zero-shot-classification" if kind == "bart" else "text-ranking"
    report = check_model_contract(str(dirs[kind]), inputs, task=task, options=options,
                                  skip=("listing-imports", "import-time"))
    assert report.checked


def test_both_tasks_are_served_through_the_task_table(dirs):
    """POST /v1/run gives what hub.load gives; bad labels and an empty text are 400s naming the problem."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from serve_server import hub_app, running

    want = hub.load(str(dirs["bart"]), dtype="fp32")(TEXTS[:2], labels=LABELS, multi_label=True)
    ranked = hub.load(str(dirs["ce"]), dtype="fp32")(QUERIES, texts=PASSAGES, top_k=3)
    with running(hub_app(preload=(str(dirs["bart"]), str(dirs["ce"])))) as url:
        def post(inputs, options, kind="bart"):
            return httpx.post(f"{url}/v1/run/{dirs[kind].name}", json={"inputs": inputs, "options": options},
                              timeout=60)

        answer = post(TEXTS[:2], {"labels": LABELS, "multi_label": True})
        refused = [post(["a text"], {}), post(["a text"], {"labels": ["a", "a"]}), post([" "], {"labels": ["a"]})]
        ranking = post(QUERIES, {"texts": PASSAGES, "top_k": 3}, "ce")
        no_passages = post(QUERIES, {}, "ce")
    assert ranking.status_code == 200 and ranking.json()["task"] == "text-ranking", ranking.text
    for got, result in zip(ranking.json()["results"], ranked):
        assert [l["index"] for l in got["labels"]] == [l.index for l in result.labels]
        assert max(abs(l["score"] - w.score) for l, w in zip(got["labels"], result.labels)) <= TOL
    assert no_passages.status_code == 400 and "needs passages" in no_passages.json()["error"]["message"]
    assert answer.status_code == 200, answer.text
    assert answer.json()["task"] == "zero-shot-classification"
    for got, result in zip(answer.json()["results"], want):
        assert [l["label"] for l in got["labels"]] == [l.label for l in result.labels]
        assert max(abs(l["score"] - w.score) for l, w in zip(got["labels"], result.labels)) <= TOL
    messages = [r.json()["error"]["message"] for r in refused]
    assert [r.status_code for r in refused] == [400] * 3, messages
    assert "needs candidate labels" in messages[0] and "distinct" in messages[1] and "is empty" in messages[2]
