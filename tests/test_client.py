"""hub.client.Client and ``hub run --server`` against a real server (uvicorn on a free port).

The SDK must answer like ``hub.run``: the same result classes, equal within 1e-5 (fp32 on the CPU on
both sides), one input in, one result out; and the server's errors as HubError subclasses with its message.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # serves tiny models

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "plugins"))

from hub.errors import HubError, InputError, OptionError  # noqa: E402
from hub.tasks.results import (RESULT_TYPES, Classification, Embedding, Entity, FillMask, Generation,  # noqa: E402
                               LabelScore, MaskCandidate, Similarity, TokenClassification, Transcription,
                               TranscriptionChunk, result_from_dict)

KEY = "client-test-key"
MINILM = "all-minilm-l6-v2"
TEXTS = ["a cat sleeps on the sofa", "a kitten", "the stock market fell sharply today after the news"]
RATE = 16000


# -- result classes from JSON (no server) -------------------------------------------------------------
EXAMPLES = [
    Embedding([0.25, -1.5]),
    Classification([LabelScore("cat", 0.75, 3), LabelScore("dog", 0.25)], warning="untrained head"),
    FillMask([MaskCandidate(7, "capital", 0.5, "paris is the capital")]),
    TokenClassification([Entity("Paris", "LOC", 0.99, 0, 5), Entity("Ada", "PER", 0.9)]),
    Generation("world", "hello ", [1, 2]),
    Transcription("hi there", [TranscriptionChunk("hi", 0.0, 0.5), TranscriptionChunk("there", 0.5, 1.0)]),
    Similarity([[0.1, 0.2]], [[0.3, 0.4], [0.5, 0.6]], [[0.9, 0.1]], [[LabelScore("a cat", 0.9, 0)]]),
]


@pytest.mark.parametrize("result", EXAMPLES, ids=lambda r: type(r).__name__)
def test_results_read_back_from_their_json(result):
    data = json.loads(json.dumps(result.to_dict()))
    assert type(result).from_dict(data) == result
    assert result_from_dict(type(result).__name__, data) == result


def test_every_result_type_has_an_example():
    assert {type(r).__name__ for r in EXAMPLES} == set(RESULT_TYPES)


def test_result_json_with_unknown_or_missing_keys():
    assert Embedding.from_dict({"embedding": [1.0], "added_later": True}) == Embedding([1.0])
    assert Transcription.from_dict({"text": "x"}) == Transcription("x")
    with pytest.raises(ValueError, match="Classification needs the key\\(s\\) labels"):
        Classification.from_dict({"warning": None})
    with pytest.raises(ValueError, match="unknown result type 'Nope'"):
        result_from_dict("Nope", {})


def test_error_answers_map_to_error_classes():
    import httpx

    from hub.client import ServerBusyError, ServerError, ServerInputError, ServerTimeoutError, error_from_response

    def answer(status, body=None, text=None, headers=None):
        return error_from_response(httpx.Response(status, json=body, text=text, headers=headers), sent_key=True)

    envelope = {"error": {"message": "queue full: retry later", "type": "rate_limit_exceeded", "param": None,
                          "code": "queue_full"}}
    busy = answer(429, envelope, headers={"Retry-After": "2"})
    assert type(busy) is ServerBusyError and busy.retry_after == 2.0 and str(busy) == "queue full: retry later"
    too_big = answer(413, {"error": {"message": "body over 32 MiB", "type": "request_too_large", "param": None,
                                     "code": "body_too_large"}})
    assert isinstance(too_big, InputError) and too_big.exit_code == 2
    assert type(answer(504, envelope)) is ServerTimeoutError
    proxy = answer(502, text="<html><body>Bad   Gateway</body></html>")
    assert type(proxy) is ServerError and proxy.exit_code == 1
    assert str(proxy) == "the server answered HTTP 502: <html><body>Bad Gateway</body></html>"


# -- a real server -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    import torch
    from tiny_models import save_ctc, save_timm

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("client")
    return {"timm": save_timm(root / "tiny-image"), "ctc": save_ctc(root / "tiny-ctc")}


@pytest.fixture(scope="module")
def server(models):
    from serve_server import hub_app, running

    app = hub_app(preload=(MINILM, str(models["timm"]), str(models["ctc"])), allow=(MINILM,), api_key=KEY)
    with running(app) as url:
        yield url


@pytest.fixture
def client(server):
    from hub.client import Client

    with Client(server, api_key=KEY) as c:
        yield c


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("digits")
    paths = []
    for i, suffix in enumerate(("png", "jpg", "png")):
        pixels = (digits.images[i * 5] * (255 / 16)).astype("uint8")
        path = root / f"digit{i}.{suffix}"
        Image.fromarray(pixels).resize((40, 40), Image.BILINEAR).convert("RGB").save(path)
        paths.append(path)
    return paths


def waves():
    import numpy as np

    t = np.arange(int(0.6 * RATE)) / RATE
    return [(0.3 * np.sin(2 * math.pi * f * t)).astype("float32") for f in (220.0, 440.0)]


def local(model, inputs, **options):
    import hub

    return hub.run(str(model), inputs, device="cpu", dtype="fp32", **options)


def close_vectors(a: list[float], b: list[float], tol: float = 1e-5) -> bool:
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) <= tol


def same_labels(got: Classification, want: Classification) -> None:
    assert [l.label for l in got.labels] == [l.label for l in want.labels]
    assert close_vectors([l.score for l in got.labels], [l.score for l in want.labels])


def test_text_embeddings_equal_hub_run(client):
    got, want = client.run(MINILM, TEXTS), local(MINILM, TEXTS)
    assert isinstance(got, list) and all(type(r) is Embedding for r in got)
    assert all(close_vectors(g.embedding, w.embedding) for g, w in zip(got, want))
    one = client.run(MINILM, TEXTS[1])
    assert type(one) is Embedding and close_vectors(one.embedding, want[1].embedding)
    assert client.run(MINILM, []) == []


def test_large_lists_are_split_into_requests_and_kept_in_order(client):
    texts = [f"sentence number {i} about {'cats' if i % 2 else 'markets'}" for i in range(70)]
    got, want = client.run(MINILM, texts, batch_size=16), local(MINILM, texts)
    assert len(got) == 70 and all(close_vectors(g.embedding, w.embedding) for g, w in zip(got, want))


def test_embed_uses_the_openai_route(client):
    got, want = client.embed(MINILM, TEXTS), local(MINILM, TEXTS)
    assert all(type(g) is Embedding and close_vectors(g.embedding, w.embedding) for g, w in zip(got, want))
    short = client.embed(MINILM, TEXTS[0], dimensions=8)
    norm = math.sqrt(sum(x * x for x in want[0].embedding[:8]))
    assert close_vectors(short.embedding, [x / norm for x in want[0].embedding[:8]])


def test_images_of_every_kind_equal_hub_run(client, models, images):
    import numpy as np
    from PIL import Image

    model = models["timm"]
    model_id = client.get_model(model.name)["id"]
    want = local(model, [str(p) for p in images])
    assert all(type(r) is Classification for r in client.run(model_id, images))
    for got, expected in zip(client.run(model_id, [str(p) for p in images]), want):
        same_labels(got, expected)
    same_labels(client.run(model_id, images[0].read_bytes()), want[0])
    with Image.open(images[1]) as img:
        same_labels(client.run(model_id, img), want[1])
        array = np.asarray(img.convert("RGB"))
    same_labels(client.run(model_id, array), want[1])


def test_options_reach_the_pipeline(client, models, images):
    got = client.run(models["timm"].name, images[0], top_k=2)
    assert len(got.labels) == 2
    same_labels(got, local(models["timm"], str(images[0]), top_k=2))


def test_audio_arrays_and_files_equal_hub_run(client, models, tmp_path):
    import soundfile as sf

    model = models["ctc"]
    model_id = client.get_model(model.name)["id"]
    a, b = waves()
    path = tmp_path / "tone.flac"
    sf.write(path, b, RATE)
    want = local(model, [(a, RATE), str(path), (a[::2].copy(), RATE // 2)])
    got = client.run(model_id, [(a, RATE), path, {"array": a[::2].copy(), "sampling_rate": RATE // 2}])
    assert all(type(r) is Transcription for r in got)
    assert [r.to_dict() for r in got] == [r.to_dict() for r in want]
    single = client.run(model_id, (a, RATE))  # one (array, rate) pair is one input
    assert type(single) is Transcription and single.text == want[0].text


def test_catalogue_calls(client, models):
    ids = {m["id"] for m in client.list_models()}
    assert MINILM in ids and models["timm"].name in ids
    assert [m["id"] for m in client.list_models(task="feature-extraction")] == [MINILM]
    info = client.get_model(models["timm"].name)
    assert info["inputs"] == "image" and info["task"] == "image-classification"
    assert "top_k" in {o["name"] for o in info["options"]}
    assert {"text-embedding", "speech-recognition"} <= {t["name"] for t in client.tasks()}
    assert client.health() == {"status": "ok"} and client.ready()


def test_server_errors_become_hub_errors(client, server, models, images):
    from hub.client import (Client, ServerAuthError, ServerNotFoundError, ServerOptionError,
                            ServerUnreachableError)

    with pytest.raises(ServerNotFoundError) as missing:
        client.run("all-minilm-l6", "a cat")
    assert isinstance(missing.value, (HubError, KeyError)) and missing.value.status == 404
    assert "unknown model id 'all-minilm-l6'" in str(missing.value) and missing.value.exit_code == 2

    with pytest.raises(ServerOptionError) as bad_option:
        client.run(models["timm"].name, images[0], top_k=0)
    assert isinstance(bad_option.value, OptionError) and "top_k" in str(bad_option.value)
    assert bad_option.value.code == "invalid_option" and bad_option.value.param == "options"

    with pytest.raises(ServerAuthError, match="API key") as no_key:
        Client(server, api_key="").list_models()
    assert no_key.value.status == 401 and "HUB_API_KEY" in str(no_key.value)
    with pytest.raises(ServerAuthError):
        Client(server, api_key="wrong").run(MINILM, "a cat")

    with pytest.raises(ServerUnreachableError, match="cannot reach a hub server at http://127.0.0.1:9"):
        Client("http://127.0.0.1:9", api_key=KEY, timeout=5).list_models()


def test_inputs_are_checked_before_sending(client, models, tmp_path):
    from hub.client import Client

    with pytest.raises(InputError, match="must start with http"):
        Client("localhost:8000")
    with pytest.raises(InputError, match="input 1 must be text"):
        client.run(MINILM, ["fine", 42])
    with pytest.raises(InputError, match="image file .* does not exist"):
        client.run(models["timm"].name, [tmp_path / "missing.png"])
    with pytest.raises(InputError, match="is a directory"):
        client.run(models["timm"].name, tmp_path)
    with pytest.raises(InputError, match="sample rate"):
        client.run(models["ctc"].name, (waves()[0], 3.5))
    with pytest.raises(OptionError, match="function"):
        client.run(MINILM, "a cat", labels=[str.upper])


# -- hub run --server ----------------------------------------------------------------------------------
def cli_main():
    from hub.cli import cli

    return cli


def run_cli(cli_runner, args, key=KEY):
    return cli_runner.invoke(cli_main(), args, env={"HUB_API_KEY": key})


def test_hub_run_server_prints_what_a_local_run_prints(cli_runner, server, models, images):
    remote = run_cli(cli_runner, ["run", MINILM, *TEXTS, "--json", "--server", server])
    here = run_cli(cli_runner, ["run", MINILM, *TEXTS, "--json", "--dtype", "fp32", "--device", "cpu"])
    assert remote.exit_code == 0 and here.exit_code == 0, remote.output + here.output
    pairs = zip(json.loads(remote.stdout), json.loads(here.stdout))
    assert all(close_vectors(a["embedding"], b["embedding"]) for a, b in pairs)

    table = run_cli(cli_runner, ["run", MINILM, *TEXTS, "--server", server])
    assert table.exit_code == 0 and "cosine similarity" in table.stdout and "most similar pairs" in table.stdout
    piped = cli_runner.invoke(cli_main(), ["run", MINILM, "-", "--json", "--server", server],
                              input="\n".join(TEXTS) + "\n\n", env={"HUB_API_KEY": KEY})
    assert piped.exit_code == 0 and len(json.loads(piped.stdout)) == 3

    args = ["run", models["timm"].name, *map(str, images), "--top-k", "2", "--json"]
    remote = json.loads(run_cli(cli_runner, [*args, "--server", server]).stdout)
    want = local(models["timm"], [str(p) for p in images], top_k=2)
    for got, expected in zip(remote, want):
        same_labels(Classification.from_dict(got), expected)


def test_hub_run_server_mistakes_are_one_line(cli_runner, server, models):
    cases = [
        (["run", MINILM, "a cat", "--server", server, "--device", "cpu"], "--device cannot be used with --server"),
        (["run", "all-minilm-l6", "a cat", "--server", server], "unknown model id 'all-minilm-l6'"),
        (["run", models["timm"].name, "no-such-image.png", "--server", server], "does not exist"),
        (["run", MINILM, "a cat", "-o", "top_k=3", "--server", server], "does not take the option 'top_k'"),
        (["run", MINILM, "a cat", "--server", "http://127.0.0.1:9"], "cannot reach a hub server"),
    ]
    for args, words in cases:
        result = run_cli(cli_runner, args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and words in lines[0], (args, result.output)
        assert "Traceback" not in result.output
    wrong_key = run_cli(cli_runner, ["run", MINILM, "a cat", "--server", server], key="wrong")
    assert wrong_key.exit_code == 2 and "API key" in wrong_key.stderr
