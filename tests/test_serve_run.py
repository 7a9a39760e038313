"""POST /v1/run with structured inputs: an object a task takes (question-answering's {"question", "context"})
is answered over HTTP (JSON, and the SDK) exactly as hub.run answers it and as a JSONL line of
``hub run --input`` answers it. Tiny question-answering models of each kind; a real uvicorn server."""
import json
import random

import pytest

pytestmark = pytest.mark.slow  # serves tiny models

pytest.importorskip("fastapi")
pytest.importorskip("transformers")
httpx = pytest.importorskip("httpx")

import hub  # noqa: E402
from plugins import tiny_qa  # noqa: E402
from serve_server import hub_app, running  # noqa: E402
from test_serve_app import close  # noqa: E402

KINDS = ("bert", "distilbert", "roberta")
CONTEXT, FACTS = tiny_qa.passage(random.Random(3), people=6)
PAIRS = [{"question": f"where was {FACTS[0]['name']} born?", "context": CONTEXT},
         {"question": f"what does {FACTS[1]['name']} work as?", "context": CONTEXT},
         {"question": "when was anna born?", "context": "anna was born in paris in 1903. ben works in rome."},
         {"context": "ben works as a baker in rome, near the river.", "question": "where does ben work?"}]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("qa")
    return {kind: tiny_qa.save_qa(kind, root / f"qa-{kind}") for kind in KINDS}


@pytest.fixture(scope="module")
def served(dirs):
    with running(hub_app(preload=tuple(str(d) for d in dirs.values()))) as url:
        yield url


def jsonl_results(cli_runner, directory, pairs, tmp_path) -> list[dict]:
    """The results of ``hub run DIR --input pairs.jsonl --output out.jsonl``, one {"input": pair} a line."""
    from hub.cli import cli

    source, out = tmp_path / "pairs.jsonl", tmp_path / "answers.jsonl"
    source.write_text("".join(json.dumps({"input": p}, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
    done = cli_runner.invoke(cli, ["run", "--device", "cpu", "--dtype", "fp32", str(directory), "--input", str(source),
                                   "--output", str(out)])
    assert done.exit_code == 0, done.output
    return [json.loads(line)["result"] for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("options", [{}, {"top_k": 3}, {"max_answer_len": 4}])
def test_structured_inputs_over_http_equal_hub_run_and_jsonl(served, dirs, cli_runner, tmp_path, kind, options):
    directory = dirs[kind]
    want = [r.to_dict() for r in hub.run(str(directory), PAIRS, device="cpu", dtype="fp32", **options)]
    answer = httpx.post(f"{served}/v1/run/{directory.name}", json={"inputs": PAIRS, "options": options}, timeout=120)
    assert answer.status_code == 200, answer.text
    assert answer.json()["task"] == "question-answering"
    assert close(answer.json()["results"], want)
    if not options:
        assert close(jsonl_results(cli_runner, directory, PAIRS, tmp_path), want)


def test_the_sdk_sends_structured_inputs_as_they_are(served, dirs):
    from hub.client import Client

    directory = dirs["bert"]
    want = hub.run(str(directory), PAIRS, device="cpu", dtype="fp32")
    with Client(served) as client:
        got = client.run(directory.name, PAIRS)
        one = client.run(directory.name, PAIRS[0])
    assert close([r.to_dict() for r in got], [r.to_dict() for r in want])
    assert close(one.to_dict(), want[0].to_dict())


def test_a_structured_input_and_its_json_text_are_one_input(served, dirs):
    name = dirs["distilbert"].name
    as_objects = httpx.post(f"{served}/v1/run/{name}", json={"inputs": PAIRS[:2]}).json()["results"]
    as_text = httpx.post(f"{served}/v1/run/{name}", json={"inputs": [json.dumps(p) for p in PAIRS[:2]]}).json()
    assert close(as_objects, as_text["results"])


@pytest.mark.parametrize("item, words", [
    ({"question": "who?"}, "has no 'context'"),
    ({"question": 3, "context": "anna was born."}, "must be text"),
    ({"question": "who?", "context": ""}, "context"),
    ({}, "has no 'context'"),
    ([PAIRS[0]["question"], CONTEXT], "input 0 must be a string, or an object"),
    (7, "input 0 must be a string, or an object"),
    (None, "input 0 must be a string, or an object"),
])
def test_bad_structured_inputs_are_400_naming_the_problem(served, dirs, item, words):
    answer = httpx.post(f"{served}/v1/run/{dirs['bert'].name}", json={"inputs": [item]})
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]["message"]


def test_a_structured_input_is_held_to_the_text_limit(dirs):
    from hub.serve.limits import Limits

    directory = dirs["bert"]
    with running(hub_app(preload=(str(directory),), limits=Limits(max_text_chars=60))) as url:
        long = {"question": "who?", "context": "anna was born in paris. " * 3}
        answer = httpx.post(f"{url}/v1/run/{directory.name}", json={"inputs": [long]})
    assert answer.status_code == 422 and "max_text_chars=60" in answer.json()["error"]["message"]
