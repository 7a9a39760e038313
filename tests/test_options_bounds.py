"""Length-like call options are bounded by the model: every bounded option of every shipped generating pipeline,
at its largest value plus one, is refused in one line before any batch runs, through the API, ``hub run`` (exit
2) and ``hub serve`` (422); at its largest value it runs. The server's own caps (``--max-new-tokens``,
``--max-generation-mb``) are 422s naming their flags.

Every integer option of every shipped pipeline class has a bound (a static maximum, or ``model_bound`` with the
pipeline's ``limits()`` giving it), except the ``top_k`` of rankers, which returns everything there is when it
asks for more (and allocates nothing for it).
"""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import hub  # noqa: E402
from hub.errors import OptionError  # noqa: E402
from hub.options import OptionLimitError  # noqa: E402
from hub.serve.limits import Limits  # noqa: E402
from hub.testing import assert_clean_error, invoke_hub  # noqa: E402
from plugins.tiny_captioners import images  # noqa: E402
from plugins.tiny_generation import MODELS, bounded  # noqa: E402
from serve_server import hub_app, running  # noqa: E402
from test_options import shipped_pipelines  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Each tiny model saved once, with one input file of its kind."""
    import numpy as np
    import soundfile as sf

    root = tmp_path_factory.mktemp("bounds")
    picture, sound = root / "picture.png", root / "speech.wav"
    images(1)[0].save(picture)
    sf.write(sound, (0.1 * np.sin(np.arange(16000) / 8)).astype("float32"), 16000)
    inputs = {"text": "hello world, the city of paris", "image": str(picture), "audio": str(sound)}
    torch.manual_seed(0)
    return {name: (builder(root / name), task, inputs[kind], required)
            for name, (builder, task, kind, required) in MODELS.items()}


@pytest.fixture(scope="module")
def pipes(models):
    return {name: hub.load(str(d), task=task, device="cpu", dtype="fp32") for name, (d, task, _, _) in models.items()}


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fail the test if any batch is planned (so none runs and nothing is allocated for one)."""
    from hub.tasks.base import Pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("a batch was planned for a request that should have been refused")

    monkeypatch.setattr(Pipeline, "batch_plan", refuse)


def test_every_integer_option_of_every_shipped_pipeline_is_bounded():
    unbounded = []
    for cls in shipped_pipelines():
        for option in cls.call_options:
            if option.type is int and option.maximum is None and not option.model_bound and option.name != "top_k":
                unbounded.append(f"{cls.__name__}.{option.name}")
    assert unbounded == []


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_bound_option_has_a_bound(pipes, name):
    pipe = pipes[name]
    limits = pipe.limits()
    assert {o.name for o in pipe.call_options if o.model_bound} <= set(limits), name
    assert bounded(pipe), name  # each generating pipeline has length-like options


@pytest.mark.parametrize("name", sorted(MODELS))
def test_over_the_bound_is_refused_before_any_batch_api_and_cli(models, pipes, name, nothing_runs):
    directory, task, given, required = models[name]
    for option, largest in bounded(pipes[name]).items():
        with pytest.raises(OptionLimitError) as err:
            pipes[name](given, **{**required, option: largest + 1})
        assert f"'{option}'" in str(err.value) and str(largest) in str(err.value), str(err.value)
        args = [f"{k}={v}" for k, v in {**required, option: largest + 1}.items()]
        result = invoke_hub(["run", str(directory), given, "--task", task, "--dtype", "fp32",
                             *[x for a in args for x in ("-o", a)]])
        assert_clean_error(result, f"'{option}'", str(largest))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_huge_value_is_refused_at_once(models, pipes, name, nothing_runs):
    """The issue's instance: max_new_tokens=1000000000 (and its kin) is one line, not an allocation."""
    _, _, given, required = models[name]
    for option, largest in bounded(pipes[name]).items():
        with pytest.raises(OptionError, match=f"'{option}'"):
            pipes[name](given, **{**required, option: max(10**9, 2 * largest + 1)})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_largest_new_token_counts_run(models, pipes, name):
    """At the bound the model runs: the bound is not a guess that lets an IndexError through."""
    _, _, given, required = models[name]
    pipe = pipes[name]
    for option in pipe.call_options:
        if option.new_tokens:
            largest = bounded(pipe)[option.name]
            extra = {"num_beams": 1} if "num_beams" in {o.name for o in pipe.call_options} else {}
            if name == "bound-coca":
                extra = {"generation_type": "greedy", "min_seq_len": 1}
            pipe(given, **{**required, **extra, option.name: largest})


def test_a_long_blip_prompt_is_one_line(models, pipes, nothing_runs):
    directory, task, given, _ = models["bound-blip"]
    prompt = " ".join(["a picture of"] * 20)
    with pytest.raises(OptionLimitError, match="'prompt'.*shorten the prompt"):
        pipes["bound-blip"](given, prompt=prompt)
    assert_clean_error(invoke_hub(["run", str(directory), given, "--task", task, "-o", f"prompt={prompt}"]),
                       "'prompt'", "positions")
    with pytest.raises(OptionLimitError, match="'max_new_tokens'"):
        pipes["bound-blip"](given, prompt="a picture of", max_new_tokens=10**9)


# -- the server -------------------------------------------------------------------------------------------------
def body(models, name: str, options: dict) -> dict:
    import base64
    from pathlib import Path

    _, task, given, required = models[name]
    kind = MODELS[name][2]
    sent = given if kind == "text" else base64.b64encode(Path(given).read_bytes()).decode()
    return {"inputs": [sent], "options": {**required, **options}, "task": task}


@pytest.fixture(scope="module")
def served(models):
    """A server with every tiny model loaded: (its URL, the route of each model by name)."""
    preload = tuple(str(d) for d, *_ in models.values())
    with running(hub_app(preload=preload, limits=Limits(max_new_tokens=40, max_generation_mb=64))) as url:
        ids = [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]
        yield url, {name: f"{url}/v1/run/{next(i for i in ids if i.endswith(name))}" for name in models}


@pytest.fixture(scope="module")
def server(served):
    return served[0]


@pytest.fixture(scope="module")
def route(served):
    return served[1]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_server_answers_422_for_every_option_over_its_bound(models, pipes, route, name, nothing_runs):
    for option, largest in bounded(pipes[name]).items():
        for value in (largest + 1, max(10**9, 2 * largest + 1)):
            answer = httpx.post(route[name], json=body(models, name, {option: value}), timeout=60)
            assert answer.status_code == 422, (option, value, answer.text)
            message = answer.json()["error"]["message"]
            assert f"'{option}'" in message and "\n" not in message, message


def test_the_server_caps_new_tokens_with_its_flag(models, route, nothing_runs):
    for name in ("bound-gpt2", "bound-marian", "bound-blip", "bound-coca", "bound-whisper"):
        option = "seq_len" if name == "bound-coca" else "max_new_tokens"
        extra = {"generation_type": "greedy", "min_seq_len": 1} if name == "bound-coca" else {}
        answer = httpx.post(route[name], json=body(models, name, {**extra, option: 41}), timeout=60)
        if answer.status_code == 422 and "for this model" in answer.text:
            continue  # the model's own bound is lower than the server's: refused all the same
        assert answer.status_code == 422, answer.text
        message = answer.json()["error"]["message"]
        assert "max_new_tokens=40" in message and "--max-new-tokens" in message, message


def test_the_server_refuses_a_generation_over_its_memory_budget(models, route):
    """Requests with equal options share batches of up to --max-batch inputs: one input is judged by that batch."""
    big = body(models, "bound-marian", {"num_beams": 64, "max_new_tokens": 40})
    answer = httpx.post(route["bound-marian"], json=big, timeout=60)
    message = answer.json()["error"]["message"]
    assert answer.status_code == 422 and "--max-generation-mb" in message and "--max-batch" in message, answer.text
    small = body(models, "bound-marian", {"num_beams": 1, "max_new_tokens": 4})
    assert httpx.post(route["bound-marian"], json=small, timeout=60).status_code == 200


def test_the_serve_command_has_the_flags(cli_runner):
    from hub.serve.command import serve_cmd

    text = cli_runner.invoke(serve_cmd, ["--help"]).output
    assert "--max-new-tokens" in text and "--max-generation-mb" in text
    refused = cli_runner.invoke(serve_cmd, ["--max-new-tokens", "0"])
    assert refused.exit_code == 2 and "--max-new-tokens" in refused.output


def test_a_plugin_that_forgets_a_model_bound_is_named(models, pipes, monkeypatch):
    from hub.errors import PluginError

    pipe = pipes["bound-gpt2"]
    monkeypatch.setattr(type(pipe), "limits", lambda self: {})
    with pytest.raises(PluginError, match="max_new_tokens.*limits()"):
        pipe("hello", max_new_tokens=2)


def test_option_contract_shows_the_bound_kinds():
    from hub.options import MAX_NEW_TOKENS, SAMPLE_TOP_K, TOP_K

    assert MAX_NEW_TOKENS.to_dict()["model_bound"] and MAX_NEW_TOKENS.to_dict()["new_tokens"]
    assert SAMPLE_TOP_K.model_bound and not TOP_K.model_bound
    assert json.loads(json.dumps(MAX_NEW_TOKENS.to_dict()))["model_bound"] is True
