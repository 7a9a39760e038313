"""Translation and summarization (seq2seq) pipelines of the transformers plugin, on tiny Marian, T5, BART and
mBART models built offline (tests/plugins/tiny_seq2seq.py) and loaded by path.

Parity: the hub's tokens equal ``model.generate``'s with the same settings, greedy and beam, alone and batched.
"""
from __future__ import annotations

import functools
import json
import warnings

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")

import hub  # noqa: E402
from hub.errors import HubError, InputError, OptionError  # noqa: E402
from hub.tasks.base import HubWarning  # noqa: E402
from plugins.tiny_seq2seq import BUILDERS  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses"),
              pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # slow: tiny backbone models

TEXTS = ["Where is the train station?", "Our small team finished the annual budget after months of planning.",
         "Hello"]
# per model: the task it is loaded for, the options it needs, and what the same call means to model.generate
SETUPS = {
    "marian": ("translation", {}, "", {}),
    "t5": ("translation", {"src_lang": "en", "tgt_lang": "de"}, "translate English to German: ",
           {"early_stopping": True}),
    "bart": ("summarization", {}, "", {"min_length": 3}),
    "mbart": ("translation", {"src_lang": "en_XX", "tgt_lang": "fr_XX"}, "", {}),
}
SEARCHES = {"greedy": {"num_beams": 1, "max_new_tokens": 8, "do_sample": False},
            "beam": {"num_beams": 3, "max_new_tokens": 8, "length_penalty": 0.8, "no_repeat_ngram_size": 2}}


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("seq2seq")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: build(root / name) for name, build in BUILDERS.items()}


def load(dirs, name, **options):
    return hub.load(str(dirs[name]), task=SETUPS[name][0], dtype="fp32", **options)


@functools.lru_cache(maxsize=None)
def direct(directory):
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(str(directory)).eval()
    return model, transformers.AutoTokenizer.from_pretrained(str(directory))


def expected(name, directory, texts, seed=None, **settings):
    """Token lists from model.generate on ``texts`` as one batch, with the settings the hub's call means."""
    task, options, prefix, implied = SETUPS[name]
    model, tok = direct(directory)
    if name == "mbart":
        tok.src_lang = options["src_lang"]
        implied = {**implied, "forced_bos_token_id": tok.convert_tokens_to_ids(options["tgt_lang"])}
    batch = tok([prefix + t for t in texts], padding=True, truncation=True, return_tensors="pt")
    if seed is not None:
        torch.manual_seed(seed)
    with torch.inference_mode():
        rows = model.generate(**batch, **implied, **settings).tolist()
    eos = model.generation_config.eos_token_id
    out = []
    for row in rows:
        row = row[1:]  # the decoder start token
        if "forced_bos_token_id" in implied:
            assert row[0] == implied["forced_bos_token_id"]
            row = row[1:]
        out.append(row[:row.index(eos)] if eos in row else row)
    return out


def in_hub_order(texts):
    """The order the hub batches texts in: longest first (stable)."""
    return sorted(range(len(texts)), key=lambda i: -len(texts[i]))


# -- parity ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("search", SEARCHES)
@pytest.mark.parametrize("name", SETUPS)
def test_tokens_equal_generate_alone_and_batched(dirs, name, search):
    pipe = load(dirs, name)
    settings = SEARCHES[search]
    options = SETUPS[name][1]
    alone = [pipe(text, **options, **settings) for text in TEXTS]
    assert [r.tokens for r in alone] == [expected(name, dirs[name], [t], **settings)[0] for t in TEXTS]
    order = in_hub_order(TEXTS)
    batched = expected(name, dirs[name], [TEXTS[i] for i in order], **settings)
    want = [None] * len(TEXTS)
    for i, tokens in zip(order, batched):
        want[i] = tokens
    results = pipe(TEXTS, **options, **settings)
    assert [r.tokens for r in results] == want
    assert len({tuple(r.tokens) for r in results}) > 1  # the outputs depend on the inputs
    model, tok = direct(dirs[name])
    for result in results:
        assert result.num_tokens == len(result.tokens) and result.parts == 1
        assert result.text == tok.decode(result.tokens, skip_special_tokens=True).strip()


@pytest.mark.parametrize("name", ["marian", "bart", "mbart"])
def test_settings_left_out_come_from_the_model(dirs, name):
    """No options: the generation config's beams and lengths (and BART's summarization params)."""
    pipe = load(dirs, name)
    model, _ = direct(dirs[name])
    assert model.generation_config.num_beams == 2
    got = [r.tokens for r in pipe(TEXTS[:2], batch_size=1, **SETUPS[name][1])]
    assert got == [expected(name, dirs[name], [t])[0] for t in TEXTS[:2]]
    assert max(len(t) for t in got) <= model.generation_config.max_length - 1


def test_t5_takes_its_prefix_and_settings_from_task_specific_params(dirs):
    summarise = hub.load(str(dirs["t5"]), task="summarization", dtype="fp32")
    params = dict(direct(dirs["t5"])[0].config.task_specific_params["summarization"])
    prefix = params.pop("prefix")
    model, tok = direct(dirs["t5"])
    batch = tok([prefix + TEXTS[1]], return_tensors="pt")
    with torch.inference_mode():
        row = model.generate(**batch, **params)[0].tolist()[1:]
    want = row[:row.index(1)] if 1 in row else row
    assert summarise(TEXTS[1]).tokens == want
    assert summarise("summarize: " + TEXTS[1]).tokens == want  # the prefix is not put twice
    translate = hub.load(str(dirs["t5"]), task="translation", dtype="fp32")
    to_french = translate(TEXTS[0], src_lang="en", tgt_lang="fr", num_beams=1)
    own = translate(TEXTS[0], prefix="translate English to French: ", src_lang="en", tgt_lang="fr", num_beams=1)
    assert to_french.tokens == own.tokens and (to_french.src_lang, to_french.tgt_lang) == ("en", "fr")


def test_sampling_with_a_seed_is_reproducible_and_equals_generate(dirs):
    pipe = load(dirs, "marian")
    settings = {"do_sample": True, "temperature": 1.3, "top_p": 0.95, "max_new_tokens": 8}
    first = pipe(TEXTS[0], seed=11, **settings)
    assert pipe(TEXTS[0], seed=11, **settings).tokens == first.tokens
    assert first.tokens == expected("marian", dirs["marian"], [TEXTS[0]], seed=11, **settings)[0]
    others = {tuple(pipe(TEXTS[0], seed=s, **settings).tokens) for s in range(4)}
    assert len(others) > 1


def test_languages_in_results(dirs):
    assert (load(dirs, "marian")("Hello").src_lang, load(dirs, "marian")("Hello").tgt_lang) == ("en", "de")
    mbart = load(dirs, "mbart")("Hello", tgt_lang="de_DE")
    assert (mbart.src_lang, mbart.tgt_lang) == ("en_XX", "de_DE")
    assert load(dirs, "bart")("Hello").tgt_lang is None


# -- long inputs -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["marian", "mbart"])
def test_long_input_is_split_by_sentences_and_joined(dirs, name):
    pipe = hub.load(str(dirs[name]), task="translation", dtype="fp32", cache=False)
    options = {**SETUPS[name][1], "num_beams": 1, "max_new_tokens": 5}
    sentences = [TEXTS[1], "The weather is nice today and the children play in the garden.", TEXTS[0],
                 "The weather is nice today."]
    text = " ".join(sentences * 2)
    with pytest.warns(HubWarning, match="split into parts at sentence ends"):
        result = pipe(text, **options)
    assert result.parts >= 3
    plan = pipe.plan(pipe.resolve_options(options))
    parts = pipe.split(text, plan)
    assert len(parts) == result.parts and " ".join(parts) == text
    assert all(n <= pipe.max_length() for n in pipe.count_tokens(parts, plan))
    alone = [pipe(part, **options) for part in parts]
    assert result.tokens == [t for r in alone for t in r.tokens]
    assert result.text == " ".join(r.text for r in alone if r.text)
    mixed = pipe(["Hello", text, "Hello"], **options)  # in input order, only the long one split
    assert [r.parts for r in mixed] == [1, result.parts, 1] and mixed[1].tokens == result.tokens


# -- detection ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, task", [("marian", "translation"), ("bart", "summarization"),
                                        ("mbart", "translation")])
def test_directories_are_detected(dirs, name, task):
    assert hub.load(str(dirs[name]), dtype="fp32").task == task


def test_a_model_for_both_tasks_must_be_told_which(dirs):
    with pytest.raises(HubError, match="both translation and summarization.*--task translation or --task "
                                       "summarization"):
        hub.load(str(dirs["t5"]), dtype="fp32")
    assert hub.load(str(dirs["t5"]), task="summarize", dtype="fp32").task == "summarization"


@pytest.mark.parametrize("config, task", [
    ({"model_type": "marian", "architectures": ["MarianMTModel"]}, "translation"),
    ({"model_type": "pegasus"}, "summarization"),
    ({"model_type": "bart", "task_specific_params": {"summarization": {"num_beams": 4}}}, "summarization"),
    ({"model_type": "bart"}, "summarization"),
    ({"model_type": "t5", "task_specific_params": {"translation_en_to_de": {}}}, "translation"),
    ({"model_type": "t5", "_name_or_path": "someone/t5-base-finetuned-xsum"}, "summarization"),
    ({"model_type": "mbart", "_name_or_path": "facebook/mbart-large-50-many-to-many-mmt"}, "translation"),
    ({"model_type": "bert"}, None),
    ({"model_type": "bart", "architectures": ["BartForSequenceClassification"]}, None),  # bart-large-mnli
    ({"model_type": "bart", "architectures": ["BartForQuestionAnswering"]}, None),
    ({"model_type": "t5", "architectures": ["T5ForTokenClassification"]}, None),
])
def test_seq2seq_task_by_config(config, task):
    from mmhub_transformers.seq2seq_detect import seq2seq_task

    assert seq2seq_task("model-dir", config) == task


@pytest.mark.parametrize("config", [{"model_type": "t5"}, {"model_type": "mt5", "task_specific_params": {
    "summarization": {}, "translation_en_to_fr": {}}}])
def test_seq2seq_task_refuses_to_guess(config):
    from mmhub_transformers.seq2seq_detect import seq2seq_task

    with pytest.raises(HubError, match="--task translation or --task summarization"):
        seq2seq_task("model-dir", config)


# -- bad input ---------------------------------------------------------------------------------------------------
BAD_INPUTS = [
    ("marian", "", {}, InputError, ["is empty", "text to translate"]),
    ("marian", "  \n\t ", {}, InputError, ["only whitespace"]),
    ("bart", "   ", {}, InputError, ["only whitespace", "summarise"]),
    ("marian", "Hello", {"tgt_lang": "fr"}, OptionError, ["translates en to de only", "opus-mt-en-fr"]),
    ("marian", "Hello", {"src_lang": "es"}, OptionError, ["en to de only", "src_lang"]),
    ("mbart", "Hello", {}, OptionError, ["needs the target language", "tgt_lang", "de_DE"]),
    ("mbart", "Hello", {"tgt_lang": "de"}, OptionError, ["unknown language code 'de'", "Did you mean: de_DE?"]),
    ("mbart", "Hello", {"tgt_lang": "fr_XX", "src_lang": "english"}, OptionError, ["'src_lang'", "Valid codes"]),
    ("mbart", "Hello", {"tgt_lang": "xx_YY"}, OptionError, ["'xx_YY'", "en_XX"]),
    ("t5", "Hello", {"src_lang": "en", "tgt_lang": "ro"}, OptionError, ["does not translate en to ro",
                                                                        "Did you mean: en to de, en to fr?"]),
    ("t5", "Hello", {}, OptionError, ["several language pairs", "en to de, en to fr", "-o src_lang"]),
    ("marian", "Hello", {"num_beams": 0}, OptionError, ["'num_beams'", ">= 1"]),
    ("marian", "Hello", {"num_beams": "four"}, OptionError, ["'num_beams'", "integer"]),
    ("marian", "Hello", {"max_new_tokens": 0}, OptionError, ["'max_new_tokens'", ">= 1"]),
    ("marian", "Hello", {"do_sample": "maybe"}, OptionError, ["'do_sample'", "boolean"]),
    ("marian", "Hello", {"do_sample": True, "temperature": 0}, OptionError, ["'temperature'", "> 0"]),
    ("marian", "Hello", {"do_sample": True, "top_p": 1.5}, OptionError, ["'top_p'", "<= 1"]),
    ("marian", "Hello", {"temperature": 0.7}, OptionError, ["temperature", "do_sample"]),
    ("marian", "Hello", {"length_penalty": "long"}, OptionError, ["'length_penalty'", "number"]),
    ("marian", "Hello", {"seed": -1}, OptionError, ["'seed'", ">= 0"]),
    ("marian", "Hello", {"top_k": 3}, OptionError, ["'top_k'", "Valid options"]),
    ("marian", "Hello", {"beams": 3}, OptionError, ["Did you mean: num_beams?"]),
    ("bart", "Hello", {"tgt_lang": "de"}, OptionError, ["'tgt_lang'", "Valid options"]),
]


@pytest.mark.parametrize("name, text, options, error, words", BAD_INPUTS)
def test_bad_input_is_refused_by_name(dirs, name, text, options, error, words):
    pipe = load(dirs, name)
    for given in (text, [TEXTS[0], text]):
        with pytest.raises(error) as err:
            pipe(given, **options)
        assert all(w in str(err.value) for w in words), str(err.value)


@pytest.mark.parametrize("name, text, args, words", [
    ("marian", "   ", [], ["only whitespace"]),
    ("marian", "Hello", ["-o", "tgt_lang=fr"], ["en to de only"]),
    ("mbart", "Hello", ["-o", "tgt_lang=german"], ["unknown language code 'german'", "Valid codes"]),
    ("mbart", "Hello", ["-o", "tgt_lang=de_DE", "-o", "num_beams=0"], ["'num_beams'"]),
    ("bart", "Hello", ["-o", "temperature=0.5"], ["do_sample=true"]),
])
def test_cli_refuses_bad_input_cleanly(dirs, name, text, args, words):
    from option_contract import check_cli_refuses

    check_cli_refuses(str(dirs[name]), SETUPS[name][0], text, args, words)


# -- CLI and server ----------------------------------------------------------------------------------------------
def test_cli_json_and_table(dirs, cli_runner):
    from hub.cli import cli

    args = ["run", str(dirs["mbart"]), TEXTS[0], TEXTS[1], "--dtype", "fp32", "-o", "tgt_lang=de_DE",
            "-o", "num_beams=1", "-o", "max_new_tokens=6"]
    result = cli_runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    want = load(dirs, "mbart")(TEXTS[:2], tgt_lang="de_DE", num_beams=1, max_new_tokens=6)
    assert rows == [r.to_dict() for r in want] and rows[0]["tgt_lang"] == "de_DE"
    table = cli_runner.invoke(cli, args)
    assert table.exit_code == 0 and want[0].text in table.stdout and want[1].text in table.stdout


def test_served_through_the_task_table(dirs):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from serve_server import hub_app, running

    want = load(dirs, "marian")(TEXTS[:2], num_beams=1, max_new_tokens=6)
    with running(hub_app(preload=(str(dirs["marian"]),))) as url:
        name = dirs["marian"].name
        answer = httpx.post(f"{url}/v1/run/{name}", json={"inputs": TEXTS[:2], "options": {
            "num_beams": 1, "max_new_tokens": "6"}}, timeout=60)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["task"] == "translation" and body["results"] == [r.to_dict() for r in want]
        bad = httpx.post(f"{url}/v1/run/{name}", json={"inputs": ["Hello"], "options": {"tgt_lang": "fr"}})
        assert bad.status_code == 400 and "en to de only" in bad.json()["error"]["message"]
        empty = httpx.post(f"{url}/v1/run/{name}", json={"inputs": ["  "]})
        assert empty.status_code == 400 and "whitespace" in empty.json()["error"]["message"]


# -- the plugin contract (hub.testing) ---------------------------------------------------------------------------
@pytest.mark.mmhub_plugins("transformers")
@pytest.mark.parametrize("name", ["marian", "t5", "mbart"])
def test_seq2seq_models_keep_the_contract(isolated_hub, dirs, name):
    from hub.testing import check_model_contract

    task, options, _, _ = SETUPS[name]
    report = check_model_contract(str(dirs[name]), TEXTS, task=task, options={**options, "num_beams": 1},
                                  skip=("listing-imports", "import-time"))
    assert "batch-size" in report.checked and "json-round-trip" in report.checked


def test_beam_search_leaves_cross_attention_in_place(dirs):
    """The hub's beam-search cache reorders the decoder's own keys and values, not the encoder's (equal per input)."""
    from mmhub_transformers.seq2seq import beam_search_cache

    model, _ = direct(dirs["marian"])
    cache = beam_search_cache(model)
    ones = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 2, 3, 8).contiguous()
    cache.self_attention_cache.update(ones.clone(), ones.clone(), 0)
    cache.cross_attention_cache.update(ones.clone(), ones.clone(), 0)
    cache.reorder_cache(torch.tensor([1, 1, 3, 2]))
    assert cache.self_attention_cache.layers[0].keys[:, 0, 0, 0].tolist() == [1, 1, 3, 2]
    assert cache.cross_attention_cache.layers[0].keys[:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    pipe = load(dirs, "marian")
    assert pipe.searches_beams({"num_beams": 3}) and not pipe.searches_beams({"num_beams": 1})
    assert pipe.searches_beams({})  # its generation config searches 2 beams


def test_one_overlong_sentence_is_truncated_with_a_warning(dirs):
    pipe = hub.load(str(dirs["marian"]), task="translation", dtype="fp32", cache=False)
    text = " ".join(["the weather is nice today and the children play in the garden"] * 6)
    with pytest.warns(HubWarning, match="truncated"):
        result = pipe(text, num_beams=1, max_new_tokens=4)
    assert result.parts == 1 and not any("split" in w for w in pipe.warnings)
