"""Extractive question answering (mmhub_transformers.qa) on tiny random BERT, DistilBERT and RoBERTa heads.

Each model is saved with ``save_pretrained`` and loaded by path, the code path a catalogue id takes. Parity: the
pipeline's windows and logits are those of the tokenizer and model called directly, and its best span, scores
and no-answer verdict are those of the start/end computation written out here (every valid span of every window,
ranked by start + end logit). The contexts need several windows, so the stride path is exercised.
"""
from __future__ import annotations

import json
import math
import random

import pytest

pytestmark = pytest.mark.slow  # tiny backbone models

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hub  # noqa: E402
import tiny_qa  # noqa: E402
from hub.errors import InputError, OptionError  # noqa: E402
from hub.tasks.results_qa import Answer, Answers  # noqa: E402

KINDS = ("bert", "distilbert", "roberta")
CONTEXT, FACTS = tiny_qa.passage(random.Random(7), people=8)  # about 130 tokens: 3 or more windows of 64
QUESTION = f"where was {FACTS[0]['name']} born?"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-qa")
    return {kind: tiny_qa.save_qa(kind, root / kind) for kind in KINDS}


@pytest.fixture(scope="module")
def pipes(dirs):
    return {kind: hub.load(str(dirs[kind]), dtype="fp32", device="cpu") for kind in KINDS}


def direct(directory):
    return (transformers.AutoModelForQuestionAnswering.from_pretrained(str(directory)).eval(),
            transformers.AutoTokenizer.from_pretrained(str(directory)))


def reference(directory, question, context, max_length=64, stride=16, max_answer_len=15):
    """Windows and logits from transformers directly, and every distinct valid span with its best logit."""
    model, tok = direct(directory)
    enc = tok(question, context, truncation="only_second", max_length=max_length, stride=stride,
              return_overflowing_tokens=True, return_offsets_mapping=True, padding="longest", return_tensors="pt")
    offsets = enc.pop("offset_mapping")
    enc.pop("overflow_to_sample_mapping")
    with torch.inference_mode():
        out = model(**enc)
    spans, nulls = {}, []
    for w in range(enc["input_ids"].shape[0]):
        ctx = [i for i, s in enumerate(enc.sequence_ids(w)) if s == 1]
        for s in ctx:
            for e in ctx:
                if s <= e < s + max_answer_len:
                    key = (int(offsets[w, s, 0]), int(offsets[w, e, 1]))
                    value = float(out.start_logits[w, s] + out.end_logits[w, e])
                    spans[key] = max(spans.get(key, -math.inf), value)
        cls = enc["input_ids"][w].tolist().index(tok.cls_token_id)
        nulls.append(float(out.start_logits[w, cls] + out.end_logits[w, cls]))
    return enc, out, spans, min(nulls)


# -- parity -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_windows_and_logits_are_those_of_the_model_called_directly(dirs, pipes, kind):
    pipe = pipes[kind]
    enc, out, _, _ = reference(dirs[kind], QUESTION, CONTEXT)
    assert enc["input_ids"].shape[0] >= 3  # a long context: the stride path
    options = pipe.check_options(pipe.resolve_options({"doc_stride": 16}))
    batch = pipe.preprocess([pipe.prepare({"question": QUESTION, "context": CONTEXT})], **options)
    assert torch.equal(batch["inputs"]["input_ids"], enc["input_ids"])
    assert batch["inputs"].keys() == {k for k in enc if k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.inference_mode():
        got = pipe.forward(batch)
    mask = enc["attention_mask"].bool()
    assert torch.allclose(got["start"][mask], out.start_logits[mask], atol=1e-6)
    assert torch.allclose(got["end"][mask], out.end_logits[mask], atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_best_spans_and_scores_are_the_argmax_over_valid_spans(dirs, pipes, kind):
    _, _, spans, _ = reference(dirs[kind], QUESTION, CONTEXT, max_answer_len=6)
    result = pipes[kind]({"question": QUESTION, "context": CONTEXT}, top_k=4, doc_stride=16, max_answer_len=6)
    ranked = sorted(spans.items(), key=lambda kv: -kv[1])
    top = max(spans.values())
    total = sum(math.exp(v - top) for v in spans.values())
    assert [(a.start, a.end) for a in result.answers] == [key for key, _ in ranked[:4]]
    for answer, (_, logit) in zip(result.answers, ranked):
        assert answer.answer == CONTEXT[answer.start:answer.end]
        assert answer.score == pytest.approx(math.exp(logit - top) / total, abs=1e-6)
    assert not result.no_answer and result.null_score is None and result.answer == result.answers[0].answer


def test_no_answer_follows_the_null_score_threshold(dirs, pipes):
    _, _, spans, null = reference(dirs["bert"], QUESTION, CONTEXT)
    margin = null - max(spans.values())
    pipe, item = pipes["bert"], {"question": QUESTION, "context": CONTEXT}
    said_none = pipe(item, doc_stride=16, null_threshold=margin - 0.01)
    answered = pipe(item, doc_stride=16, null_threshold=margin + 0.01)
    assert said_none.no_answer and said_none.answer == "" and "(no answer)" in said_none.summary()
    assert not answered.no_answer and answered.answer == answered.answers[0].answer
    top = max(max(spans.values()), null)
    total = sum(math.exp(v - top) for v in [*spans.values(), null])
    assert said_none.null_score == pytest.approx(math.exp(null - top) / total, abs=1e-6)
    assert said_none.answers[0].score + said_none.null_score <= 1 + 1e-9


def test_max_answer_len_and_stride(pipes):
    pipe = pipes["distilbert"]
    one = pipe({"question": QUESTION, "context": CONTEXT}, max_answer_len=1, top_k=5)
    assert all(len(pipe.tokenizer(a.answer, add_special_tokens=False)["input_ids"]) == 1 for a in one.answers)
    few = pipe.preprocess([pipe.prepare(CONTEXT)], question=QUESTION, max_length=64, doc_stride=0)
    many = pipe.preprocess([pipe.prepare(CONTEXT)], question=QUESTION, max_length=64, doc_stride=24)
    assert len(few["owner"]) < len(many["owner"])
    default = pipe.check_options(pipe.resolve_options({}))
    assert default["max_length"] == 64  # the model's limit, below the default window of 384


def test_a_stride_too_large_for_a_long_question_is_lowered_with_a_warning(dirs):
    import warnings

    from hub.tasks.base import HubWarning

    pipe = hub.load(str(dirs["bert"]), dtype="fp32", device="cpu", cache=False)
    long_question = "where was the person born in the city of the big river near the sea?"
    with pytest.warns(HubWarning, match="doc_stride 30 was lowered .* raise max_length or lower doc_stride"):
        lowered = pipe({"question": long_question, "context": CONTEXT}, doc_stride=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe({"question": QUESTION, "context": CONTEXT}, doc_stride=16)  # room enough: no warning
    assert lowered.answers and lowered.answers[0].answer == CONTEXT[lowered.answers[0].start:lowered.answers[0].end]


def test_a_question_reaches_the_pipeline_in_any_of_its_forms(pipes):
    pipe = pipes["bert"]
    want = pipe({"question": QUESTION, "context": CONTEXT}).to_dict()
    assert pipe(CONTEXT, question=QUESTION).to_dict() == want
    assert pipe(json.dumps({"question": QUESTION, "context": CONTEXT})).to_dict() == want
    assert pipe({"context": CONTEXT}, question=QUESTION).to_dict() == want
    many = pipe([{"question": QUESTION, "context": CONTEXT}, {"question": "who?", "context": "anna was born."}])
    assert len(many) == 2 and many[0].to_dict() == want


def test_results_read_back_from_json():
    result = Answers([Answer("paris", 10, 15, 0.5), Answer("rome", 20, 24, 0.25)], True, 0.125)
    assert Answers.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert result.answer == "" and Answers([Answer("x", 0, 1, 1.0)]).answer == "x"


def test_the_task_and_its_detection():
    from hub.tasks import resolve_task, task_info

    assert resolve_task("qa") == resolve_task("extractive-qa") == "question-answering"
    assert task_info("question-answering").result_type() is Answers


def test_directories_of_question_answering_heads_are_detected(dirs):
    from hub.api import get_spec

    for kind in KINDS:
        spec = get_spec(str(dirs[kind]))
        assert spec.task == "question-answering" and spec.plugin == "transformers"


# -- bad input --------------------------------------------------------------------------------------------------
LONG_QUESTION = " ".join(["where was anna born in the city of the river"] * 8) + "?"
BAD_INPUTS = [
    ({"question": QUESTION, "context": ""}, {}, "the context is empty"),
    ({"question": QUESTION, "context": "  \n "}, {}, "the context is empty"),
    ({"question": "", "context": CONTEXT}, {}, "the question is empty"),
    ({"question": "where was anna born, and when, and why?", "context": "anna was born."}, {},
     "longer than its context"),
    ({"question": LONG_QUESTION, "context": CONTEXT}, {}, "no context fits in a window of 64 tokens"),
    ({"context": CONTEXT}, {}, "no question for the context"),
    (CONTEXT, {}, "no question for the context"),
    ({"question": QUESTION}, {}, "has no 'context' \\(its keys: question\\)"),
    ({"question": 3, "context": CONTEXT}, {}, "the question must be text \\(a str\\), got int"),
    ({"question": QUESTION, "context": ["anna"]}, {}, "the context must be text \\(a str\\), got list"),
    (42, {}, "takes a context \\(str\\) or a"),
    ('{"question": "who?", }', {}, "not valid JSON"),
    ('{"question": "who?", "context": "anna."}\n{"question": "who?", "context": "ben."}', {},
     "holds more than one JSON object.*pipe a JSONL file of pairs on stdin"),
    ({"question": QUESTION, "context": CONTEXT}, {"question": QUESTION}, "the question is given twice"),
]


@pytest.mark.parametrize("item, options, words", BAD_INPUTS, ids=[w.split(" ")[1] + str(i)
                                                                  for i, (_, _, w) in enumerate(BAD_INPUTS)])
def test_bad_inputs_are_refused_naming_the_problem(pipes, item, options, words):
    with pytest.raises(InputError, match=words):
        pipes["bert"]([{"question": QUESTION, "context": CONTEXT}, item], **options)


@pytest.mark.parametrize("options, words", [
    ({"doc_stride": 64}, "doc_stride.*must be below the window of 64"),
    ({"max_length": 1000}, "max_length.*must be at most 64"),
    ({"question": " "}, "question.*empty"),
    ({"top_k": 0}, "top_k"),
    ({"max_answer_len": 0}, "max_answer_len"),
    ({"null_threshold": "high"}, "null_threshold"),
])
def test_bad_options_are_refused_before_any_input(pipes, options, words):
    with pytest.raises(OptionError, match=words):
        pipes["bert"](CONTEXT, **{"question": QUESTION, **options})


# -- the contract, the CLI and the server -------------------------------------------------------------------------
@pytest.mark.mmhub_plugins("transformers")
def test_the_plugin_contract_holds(isolated_hub, dirs):
    from hub.testing import check_model_contract

    pairs = [{"question": QUESTION, "context": CONTEXT}, {"question": "who works?", "context": "anna works in rome."},
             {"question": "when was ben born?", "context": "ben was born in 1903 in oslo."}]
    check_model_contract(str(dirs["roberta"]), pairs, skip=("listing-imports", "import-time"))


def run_cli(runner, *args, stdin=None):
    from hub.cli import cli

    return runner.invoke(cli, ["run", "--dtype", "fp32", "--device", "cpu", *map(str, args)], input=stdin)


def test_cli_takes_a_question_option_or_jsonl_pairs(cli_runner, dirs, pipes, tmp_path):
    want = pipes["bert"](CONTEXT, question=QUESTION).to_dict()
    context_file = tmp_path / "context.txt"
    context_file.write_text(CONTEXT + "\n", encoding="utf-8")
    shown = run_cli(cli_runner, dirs["bert"], "-o", f"question={QUESTION}", context_file, "--json")
    assert shown.exit_code == 0, shown.output
    got = json.loads(shown.stdout)[0]["answers"][0]
    assert (got["answer"], got["start"], got["end"]) == tuple(want["answers"][0][k] for k in ("answer", "start", "end"))
    assert got["score"] == pytest.approx(want["answers"][0]["score"], abs=1e-6)
    lines = "\n".join(json.dumps({"question": q, "context": CONTEXT}) for q in (QUESTION, "when was anna born?"))
    piped = run_cli(cli_runner, dirs["bert"], "-", "--json", stdin=lines + "\n")
    assert piped.exit_code == 0, piped.output
    rows = json.loads(piped.stdout)
    assert len(rows) == 2 and rows[0]["answers"][0]["answer"] == want["answers"][0]["answer"]
    table = run_cli(cli_runner, dirs["bert"], "-o", f"question={QUESTION}", "-o", "top_k=2", context_file)
    assert table.exit_code == 0 and want["answers"][0]["answer"] in table.output


def test_batch_inference_takes_pairs_as_jsonl_inputs(cli_runner, dirs, pipes, tmp_path):
    """hub run --input: a JSONL line {"input": {"question", "context"}} is one pair, answered as hub.run answers."""
    questions = (QUESTION, "when was anna born?")
    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(json.dumps({"input": {"question": q, "context": CONTEXT}}) + "\n" for q in questions))
    out = tmp_path / "answers.jsonl"
    done = run_cli(cli_runner, dirs["bert"], "--input", src, "--output", out)
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    want = [pipes["bert"](CONTEXT, question=q).to_dict()["answers"][0]["answer"] for q in questions]
    assert [row["line"] for row in rows] == [1, 2]
    assert [row["result"]["answers"][0]["answer"] for row in rows] == want


@pytest.mark.parametrize("args, stdin, words", [
    (["-o", "question=", "anna was born in paris."], None, "question"),
    (["anna was born in paris."], None, "no question for the context"),
    (["-"], '{"question": "who?"}\n', "has no 'context'"),
    (["-"], '{"question": 3, "context": "anna was born."}\n', "must be text"),
    (["{pairs}"], None, "pipe a JSONL file of pairs on stdin"),
    (["-o", "question=where was anna born in the big city of paris?", "anna was born."], None, "longer than"),
    (["-o", "doc_stride=100", "-o", f"question={QUESTION}", "anna was born in paris."], None, "doc_stride"),
])
def test_cli_bad_input_is_one_line_and_exit_2(cli_runner, dirs, tmp_path, args, stdin, words):
    pairs = tmp_path / "pairs.jsonl"  # a JSONL file given as an argument is one input
    pairs.write_text("\n".join(json.dumps({"question": q, "context": CONTEXT}) for q in (QUESTION, "who?")) + "\n")
    result = run_cli(cli_runner, dirs["bert"], *(a.format(pairs=pairs) for a in args), stdin=stdin)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and words in errors[0] and "Traceback" not in result.output


def test_the_server_answers_through_the_task_table(dirs, pipes):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from serve_server import hub_app, running

    name = dirs["bert"].name
    want = pipes["bert"](CONTEXT, question=QUESTION).to_dict()
    with running(hub_app(preload=(str(dirs["bert"]),))) as url:
        tasks = {t["name"] for t in httpx.get(f"{url}/v1/tasks").json()}
        by_option = httpx.post(f"{url}/v1/run/{name}", json={"inputs": [CONTEXT], "options": {"question": QUESTION}})
        by_pair = httpx.post(f"{url}/v1/run/{name}",
                             json={"inputs": [json.dumps({"question": QUESTION, "context": CONTEXT})]})
        no_question = httpx.post(f"{url}/v1/run/{name}", json={"inputs": [CONTEXT]})
        bad_option = httpx.post(f"{url}/v1/run/{name}", json={"inputs": [CONTEXT], "options": {"doc_stride": -1}})
    assert "question-answering" in tasks
    for answer in (by_option, by_pair):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["task"] == "question-answering"
        got = body["results"][0]
        assert got["answers"][0]["start"] == want["answers"][0]["start"]
        assert got["answers"][0]["score"] == pytest.approx(want["answers"][0]["score"], abs=1e-5)
    assert no_question.status_code == 400 and "no question" in no_question.json()["error"]["message"]
    assert bad_option.status_code == 400 and "doc_stride" in bad_option.json()["error"]["message"]
