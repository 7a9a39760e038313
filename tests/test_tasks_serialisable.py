"""The result contract, checked once in the base pipeline: the CLI, the server and the API refuse alike a result
that is not a result object or whose ``to_dict()`` is not JSON, naming the plugin and the model."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

import hub
from hub.tasks.base import Pipeline
from hub.tasks.results import Embedding, Generation, Result
from hub.tasks.serialisable import ResultContractError


@dataclass
class Keyed(Result):
    table: dict


class RaisingToDict(Generation):
    def to_dict(self):
        raise RuntimeError("cannot say")


class ListToDict(Generation):
    def to_dict(self):
        return [self.text]


class Opaque:
    pass


def _numpy_float():
    import numpy

    return Embedding([numpy.float32(0.5)])


BAD = {  # model id -> (a factory of the bad result, words the error names)
    "bad-set": (lambda: Embedding({1.0, 2.0}), "set"),
    "bad-bytes": (lambda: Generation(b"hello"), "bytes"),
    "bad-object": (lambda: Generation(Opaque()), "Opaque"),
    "bad-numpy": (_numpy_float, "float32"),
    "bad-tuple-key": (lambda: Keyed({(1, 2): 3}), "key of type tuple"),
    "bad-nested": (lambda: Keyed({"a": [1, {"b": {1j}}]}), "a.1.b"),
    "bad-plain-dict": (lambda: {"embedding": [1.0]}, "not a result object"),
    "bad-string": (lambda: "hello", "not a result object"),
    "bad-raising": (lambda: RaisingToDict("x"), "raised RuntimeError in to_dict(): cannot say"),
    "bad-list": (lambda: ListToDict("x"), "gave a list from to_dict()"),
}


class Returns(Pipeline):
    task = "text-embedding"

    def preprocess(self, items, **kwargs):
        return items

    def forward(self, batch, **kwargs):
        return batch

    def postprocess(self, outputs, items, **kwargs):
        return [BAD[self.spec.id][0]() for _ in items]


class BadResults:
    @hub.hookimpl
    def register_models(self, register):
        for model_id in BAD:
            register({"id": model_id, "task": "text-embedding", "source": "nowhere"})

    @hub.hookimpl
    def load_model(self, spec, device_manager, options):
        return Returns(spec, None, device_manager, **options)


@pytest.fixture
def bad_results(fresh_hub):
    hub.get_plugin_manager().register(BadResults(), name="bad-results")
    yield
    from hub.device import MODEL_CACHE

    MODEL_CACHE.clear()


def expected_words(model_id: str) -> list[str]:
    return ["plugin 'bad-results'", f"model '{model_id}'", "result contract", BAD[model_id][1]]


@pytest.mark.parametrize("model_id", sorted(BAD))
def test_the_cli_refuses_a_result_that_is_not_json_naming_plugin_and_model(model_id, bad_results, cli_runner):
    from hub.cli import cli

    for args in (["--json"], []):  # the table view reads to_dict too
        done = cli_runner.invoke(cli, ["run", model_id, "hi", "there", *args])
        assert done.exit_code == 2 and done.stdout == "" and "Traceback" not in done.output, done.output
        line = done.stderr.strip()
        assert "\n" not in line and all(w in line for w in expected_words(model_id)), line


@pytest.mark.parametrize("model_id", sorted(BAD))
def test_the_api_refuses_it_the_same_way(model_id, bad_results):
    with pytest.raises(ResultContractError) as caught:
        hub.run(model_id, ["hi", "there"], dtype="fp32")
    assert all(w in str(caught.value) for w in expected_words(model_id)) and caught.value.plugin == "bad-results"


def test_the_server_answers_500_naming_plugin_and_model_for_every_instance(bad_results):
    import httpx

    from serve_server import hub_app, running

    with running(hub_app()) as url:
        for model_id in BAD:
            answer = httpx.post(f"{url}/v1/run/{model_id}", json={"inputs": ["hi", "there"]}, timeout=60)
            assert answer.status_code == 500, (model_id, answer.text)
            error = answer.json()["error"]
            assert error["code"] == "result_contract" and all(w in error["message"] for w in expected_words(model_id))
        good = httpx.post(f"{url}/v1/run/all-minilm-l6-v2", json={"inputs": ["hi"]}, timeout=120)
        assert good.status_code == 200 and len(good.json()["results"][0]["embedding"]) == 384


def test_results_that_keep_the_contract_pass_untouched(fresh_hub, cli_runner):
    from hub.cli import cli

    done = cli_runner.invoke(cli, ["run", "all-minilm-l6-v2", "a cat", "--json", "--dtype", "fp32"])
    assert done.exit_code == 0 and len(json.loads(done.stdout)[0]["embedding"]) == 384
