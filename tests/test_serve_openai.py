"""The OpenAI routes of hub serve, through the real ``openai`` client against a real uvicorn server.

MiniLM (the real model shipped in a package) for embeddings; tiny Whisper and CTC models built offline
for transcriptions. Every answer is compared with ``hub.run`` on the same input.
"""
import base64
import json
import math

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # serves tiny models

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

import hub  # noqa: E402
from plugins.test_transformers_speech import ctc_dir, whisper_dir  # noqa: E402,F401  (fixtures)
from serve_server import hub_app, running  # noqa: E402

MINILM = "all-minilm-l6-v2"
TEXTS = ["a cat", "a kitten sleeps on the warm windowsill all afternoon", "stock markets fell sharply today"]
RATE = 16000


@pytest.fixture(scope="module")
def speech_file(tmp_path_factory):
    """Two seconds of a tone with a little noise, as wav."""
    import soundfile as sf

    t = np.arange(2 * RATE) / RATE
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    sf.write(str(path), wave.astype(np.float32), RATE)
    return path


@pytest.fixture(scope="module")
def server(whisper_dir, ctc_dir):  # noqa: F811
    app = hub_app(preload=(MINILM, str(whisper_dir), str(ctc_dir)))
    with running(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server[0] + "/v1", api_key="unused", max_retries=0)


def local(model, inputs, **options):
    return hub.run(model, inputs, device="cpu", dtype="fp32", **options)


def test_embeddings_default_base64_equal_hub_run(client):
    response = client.embeddings.create(model=MINILM, input=TEXTS)  # the client asks for base64
    expected = [r.embedding for r in local(MINILM, TEXTS)]
    assert [d.index for d in response.data] == [0, 1, 2]
    for item, want in zip(response.data, expected):
        assert len(item.embedding) == 384
        assert np.allclose(item.embedding, want, atol=1e-5)
    assert response.model == MINILM
    assert response.usage.prompt_tokens == response.usage.total_tokens > len(TEXTS)


def test_embeddings_float_and_a_single_string(client, server):
    response = client.embeddings.create(model=MINILM, input=TEXTS[1], encoding_format="float")
    assert len(response.data) == 1
    assert np.allclose(response.data[0].embedding, local(MINILM, [TEXTS[1]])[0].embedding, atol=1e-5)
    import httpx

    raw = httpx.post(server[0] + "/v1/embeddings", json={"model": MINILM, "input": TEXTS[0],
                                                         "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, local(MINILM, [TEXTS[0]])[0].embedding, atol=1e-5)


def test_embeddings_dimensions_truncate_and_renormalise(client):
    response = client.embeddings.create(model=MINILM, input=TEXTS, dimensions=64, encoding_format="float")
    for item, full in zip(response.data, local(MINILM, TEXTS)):
        cut = np.asarray(full.embedding[:64])
        assert len(item.embedding) == 64
        assert math.isclose(float(np.linalg.norm(item.embedding)), 1.0, abs_tol=1e-5)
        assert np.allclose(item.embedding, cut / np.linalg.norm(cut), atol=1e-5)
    with pytest.raises(openai.BadRequestError, match="between 1 and 384"):
        client.embeddings.create(model=MINILM, input="x", dimensions=1000)


def test_token_arrays_and_non_embedding_models_are_400(client, whisper_dir):  # noqa: F811
    with pytest.raises(openai.BadRequestError, match="token arrays"):
        client.embeddings.create(model=MINILM, input=[[1, 2, 3]])
    with pytest.raises(openai.BadRequestError, match="token arrays"):
        client.embeddings.create(model=MINILM, input=[5, 6])
    with pytest.raises(openai.BadRequestError, match="speech-recognition model") as info:
        client.embeddings.create(model=whisper_dir.name, input="a cat")
    assert info.value.body["type"] == "invalid_request_error" and info.value.body["param"] == "model"


def test_unknown_model_is_not_found_with_the_hubs_message(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.embeddings.create(model="all-minilm-l6", input="a cat")
    assert "unknown model id 'all-minilm-l6'" in str(info.value)
    assert "all-minilm-l6-v2" in info.value.body["message"]  # the suggestion
    assert info.value.body["code"] == "model_not_found"


def test_models_list(client, whisper_dir, ctc_dir):  # noqa: F811
    models = {m.id: m for m in client.models.list()}
    assert {MINILM, whisper_dir.name, ctc_dir.name} <= set(models)
    assert models[MINILM].owned_by == "transformers" and models[MINILM].object == "model"
    assert models[MINILM].model_extra["task"] == "text-embedding"
    assert models[whisper_dir.name].model_extra["modality"] == "speech"
    assert client.models.retrieve(MINILM).id == MINILM


@pytest.mark.parametrize("which", ["whisper", "ctc"])
def test_transcriptions_in_every_response_format(client, which, whisper_dir, ctc_dir, speech_file):  # noqa: F811
    directory = whisper_dir if which == "whisper" else ctc_dir
    expected = local(str(directory), [str(speech_file)])[0]
    create = client.audio.transcriptions.create
    with open(speech_file, "rb") as fh:
        assert create(model=directory.name, file=fh).text == expected.text
    with open(speech_file, "rb") as fh:
        text = create(model=directory.name, file=fh, response_format="text")
    assert text.strip() == expected.text
    with open(speech_file, "rb") as fh:
        srt = create(model=directory.name, file=fh, response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:00:0") and expected.text.strip() in srt
    with open(speech_file, "rb") as fh:
        vtt = create(model=directory.name, file=fh, response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:0") and expected.text.strip() in vtt
    with open(speech_file, "rb") as fh:
        verbose = create(model=directory.name, file=fh, response_format="verbose_json")
    assert verbose.text == expected.text and math.isclose(verbose.duration, 2.0, abs_tol=0.01)
    chunks = expected.chunks or []
    assert len(verbose.segments) == max(1, len([c for c in chunks if c.text.strip()]))
    for segment, chunk in zip(verbose.segments, chunks):
        assert (segment.start, segment.end) == (chunk.start, chunk.end)
    assert all(0 <= s.start <= s.end <= 2.0 + 1e-6 for s in verbose.segments)


def test_transcription_options_the_model_cannot_honour_are_400(client, whisper_dir, ctc_dir, speech_file):  # noqa: F811
    create = client.audio.transcriptions.create
    with open(speech_file, "rb") as fh, pytest.raises(openai.BadRequestError, match="does not take 'language'"):
        create(model=ctc_dir.name, file=fh, language="en")
    with open(speech_file, "rb") as fh, pytest.raises(openai.BadRequestError, match="does not take 'prompt'"):
        create(model=whisper_dir.name, file=fh, prompt="earlier words")
    with open(speech_file, "rb") as fh, pytest.raises(openai.BadRequestError, match="temperature"):
        create(model=whisper_dir.name, file=fh, temperature=0.7)
    with open(speech_file, "rb") as fh:  # greedy is what the model does: temperature 0 is honoured
        assert create(model=whisper_dir.name, file=fh, temperature=0).text == local(
            str(whisper_dir), [str(speech_file)])[0].text
    with open(speech_file, "rb") as fh:
        english = create(model=whisper_dir.name, file=fh, language="en", response_format="verbose_json")
    assert english.text == local(str(whisper_dir), [str(speech_file)], language="en")[0].text
    assert english.language == "en"
    with open(speech_file, "rb") as fh, pytest.raises(openai.BadRequestError, match="speech-recognition"):
        create(model=MINILM, file=fh)
    with pytest.raises(openai.BadRequestError, match="not readable audio"):
        create(model=whisper_dir.name, file=("notes.wav", b"this is not audio"))


def test_errors_use_openais_envelope_for_validation_errors(server):
    import httpx

    response = httpx.post(server[0] + "/v1/embeddings", json={"input": "a cat"})
    assert response.status_code == 422
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert "model" in response.json()["error"]["message"]
    bad_format = httpx.post(server[0] + "/v1/embeddings", json={"model": MINILM, "input": "x",
                                                                "encoding_format": "int8"})
    assert bad_format.status_code == 422 and "encoding_format" in bad_format.json()["error"]["message"]
    assert json.loads(httpx.get(server[0] + "/v1/nothing").text)["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("over", [1, 2, 40, 2000])
def test_an_input_over_the_models_maximum_is_refused_not_truncated(server, client, over):
    """OpenAI refuses over-long input; so does the server: 422 naming the model's maximum, for any input of a list."""
    pipeline = hub.load(MINILM, device="cpu", dtype="fp32")
    limit = pipeline.max_length()
    assert limit == 256  # the sentence-transformers setting, below the tokenizer's 512

    def text(tokens: int) -> str:  # 'cat' is one token; [CLS] and [SEP] are two more
        return " ".join(["cat"] * (tokens - 2))

    assert len(pipeline.tokenizer(text(limit))["input_ids"]) == limit
    with pytest.raises(openai.UnprocessableEntityError, match=f"input 1 is {limit + over} tokens long, over the "
                                                              f"maximum of {limit} tokens of model '{MINILM}'"):
        client.embeddings.create(model=MINILM, input=["a cat", text(limit + over)], encoding_format="float")
    fits = client.embeddings.create(model=MINILM, input=[text(limit), "a cat"], encoding_format="float")
    assert fits.usage.prompt_tokens == limit + 4  # every token of what was embedded ("a cat" is 4 with [CLS], [SEP])
    assert np.allclose(fits.data[0].embedding, local(MINILM, [text(limit)])[0].embedding, atol=1e-5)
