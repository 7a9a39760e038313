"""The call-option contract: declarations, checking and conversion, the base pipeline, the hook, 'hub info'."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import hub
from hub.errors import InputError, OptionError, PluginError
from hub.options import (DO_SAMPLE, LABELS, MAX_NEW_TOKENS, SEED, TEMPERATURE, TEXTS, TOP_K, TOP_P, Option,
                         option_lines, validate_options)
from hub.plugins import get_plugin_manager
from hub.registry import ModelSpec
from hub.tasks.base import Pipeline
from hub.tasks.results import Embedding

SCALE = Option("scale", float, 1.0, "multiply the counts", minimum=0, exclusive_minimum=True, maximum=10)
MODE = Option("mode", str, "sum", "how to count", choices=("sum", "max"))
ALL = (TOP_K, SCALE, DO_SAMPLE, MODE, LABELS, TEXTS)
SHIPPED = ("mmhub_transformers", "mmhub_timm", "mmhub_openclip")


# -- conversion and checking --------------------------------------------------------------------------------
@pytest.mark.parametrize("option, text, expected", [
    (TOP_K, "3", 3), (TOP_K, " +7 ", 7), (TOP_K, 12, 12),
    (SCALE, "0.5", 0.5), (SCALE, "1e-3", 0.001), (SCALE, 2, 2.0), (SCALE, "10", 10.0),
    *[(DO_SAMPLE, word, True) for word in ("true", "True", "YES", "on", "1", True)],
    *[(DO_SAMPLE, word, False) for word in ("false", "False", "no", "off", "0", False)],
    (MODE, "max", "max"),
    (LABELS, "cat, dog,,bird", ["cat", "dog", "bird"]), (LABELS, "[cat, a red car]", ["cat", "a red car"]), (LABELS, '["a, b", "c"]', ["a, b", "c"]),
    (LABELS, ("cat",), ["cat"]), (TEXTS, "a dog, on grass", ["a dog, on grass"]), (TEXTS, "[1, 2]", ["1", "2"]),
])
def test_values_are_converted_to_the_declared_type(option, text, expected):
    got = validate_options([option], {option.name: text})[option.name]
    assert got == expected and type(got) is type(expected)


BAD_VALUES = [
    # bool is not an int, nor a float; an int is not a bool
    (TOP_K, True, "an integer"), (TOP_K, False, "an integer"), (TOP_K, 2.0, "an integer"),
    (TOP_K, "2.5", "an integer"), (TOP_K, "three", "an integer"), (TOP_K, "", "an integer"),
    (TOP_K, "--3", "an integer"), (TOP_K, [3], "an integer"), (TOP_K, "²", "an integer"),
    (SCALE, True, "a number"), (SCALE, "fast", "a number"), (SCALE, "nan", "a number"),
    (SCALE, float("inf"), "a number"), (SCALE, "-inf", "a number"), (SCALE, [0.5], "a number"),
    (DO_SAMPLE, 1, "a boolean"), (DO_SAMPLE, 0, "a boolean"), (DO_SAMPLE, "maybe", "a boolean"),
    (DO_SAMPLE, "", "a boolean"), (DO_SAMPLE, 1.0, "a boolean"),
    (MODE, 5, "one of sum, max"), (MODE, ["sum"], "one of sum, max"), (MODE, True, "one of sum, max"),
    (LABELS, 5, "a list of strings"), (LABELS, [1, 2], "a list of strings"), (LABELS, {"a": 1}, "a list of strings"),
    (LABELS, "[unclosed, list", "a list of strings"), (LABELS, '[1, {"a": 2}]', "a list of strings"), (LABELS, [lambda c: c], "a list of strings"),
]


@pytest.mark.parametrize("option, value, words", BAD_VALUES)
def test_a_wrong_type_names_the_option_and_the_type(option, value, words):
    with pytest.raises(OptionError) as err:
        validate_options(ALL, {option.name: value}, "some-model")
    message = str(err.value)
    assert f"'{option.name}'" in message and "some-model" in message and words in message
    assert repr(value) in message


@pytest.mark.parametrize("option, value, words", [
    (TOP_K, 0, ">= 1"), (TOP_K, -4, ">= 1"), (TOP_K, "0", ">= 1"),
    (SCALE, 0, "> 0 and <= 10"), (SCALE, "-0.5", "> 0"), (SCALE, 10.5, "<= 10"),
    (TOP_P, 0, "> 0 and <= 1"), (TOP_P, 1.01, "<= 1"), (TEMPERATURE, "0", "> 0"),
    (MAX_NEW_TOKENS, 0, ">= 1"), (SEED, -1, ">= 0"), (SEED, 2**40, "<= 4294967295"),
    (MODE, "mean", "one of sum, max"), (MODE, "SUM", "one of sum, max"),
])
def test_out_of_range_values_name_the_allowed_range(option, value, words):
    with pytest.raises(OptionError, match=f"'{option.name}'.*{words}"):
        validate_options([option], {option.name: value}, "m")


def test_a_long_bad_value_is_shortened_in_the_message():
    with pytest.raises(OptionError) as err:
        validate_options([TOP_K], {"top_k": "9" * 500 + "x"})
    assert len(str(err.value)) < 200 and str(err.value).endswith("...")


def test_the_edges_of_a_range_are_allowed():
    assert validate_options([TOP_P, SCALE], {"top_p": "1", "scale": 10}) == {"top_p": 1.0, "scale": 10.0}
    assert validate_options([SEED], {"seed": 0}) == {"seed": 0}


@pytest.mark.parametrize("given, words", [
    ({"top_kk": 3}, ["'top_kk'", "Did you mean: top_k?", "Valid options: top_k, scale, do_sample, mode"]),
    ({"sample": True}, ["'sample'", "Did you mean: do_sample?"]),
    ({"zzz": 1, "label": "a"}, ["options 'label', 'zzz'", "Did you mean: labels?"]),
    ({"qqqqq": None}, ["'qqqqq'", "Valid options:"]),
])
def test_unknown_options_list_the_valid_ones(given, words):
    with pytest.raises(OptionError) as err:
        validate_options(ALL, given, "tiny (text-embedding)")
    message = str(err.value)
    assert message.startswith("tiny (text-embedding) does not take the option")
    assert all(w in message for w in words), message
    assert "qqqqq" not in message or "Did you mean" not in message


def test_a_pipeline_without_options_says_it_takes_none():
    with pytest.raises(OptionError, match="does not take the option 'top_k'. It takes no options"):
        validate_options((), {"top_k": 1}, "m")


def test_defaults_fill_what_is_not_given_and_none_means_not_given():
    got = validate_options(ALL, {"scale": "2", "top_k": None})
    assert got == {"top_k": 5, "scale": 2.0, "do_sample": False, "mode": "sum", "labels": None, "texts": None}


@pytest.mark.parametrize("kwargs, error", [
    ({"name": "top_k", "type": dict}, TypeError), ({"name": "top-k", "type": int}, ValueError),
    ({"name": "k", "type": list[str]}, TypeError),
])
def test_declarations_are_checked(kwargs, error):
    with pytest.raises(error):
        Option(**kwargs)


def test_option_error_is_an_input_error_with_exit_code_2():
    assert issubclass(OptionError, InputError) and OptionError("x").exit_code == 2


def test_option_lines_are_an_aligned_table():
    lines = option_lines([TOP_K, MODE])
    assert lines[0].split() == ["NAME", "TYPE", "DEFAULT", "HELP"]
    assert lines[1].startswith("top_k") and "integer >= 1" in lines[1] and " 5 " in lines[1]
    assert "one of sum, max" in lines[2] and lines[1].index("integer") == lines[2].index("one of")
    assert option_lines([]) == []


# -- the base pipeline ------------------------------------------------------------------------------------
class Counter(Pipeline):
    """Counts the letters 'a' to 'e' of each text; records what each step received."""

    task = "text-embedding"
    call_options = (SCALE, MODE)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prepared, self.received = [], []

    def prepare(self, item):
        self.prepared.append(item)
        return item

    def preprocess(self, items, **kw):
        self.received.append(("preprocess", kw))
        return items

    def forward(self, batch, **kw):
        self.received.append(("forward", kw))
        return [[kw["scale"] * text.count(c) for c in "abcde"] for text in batch]

    def postprocess(self, outputs, items, **kw):
        self.received.append(("postprocess", kw))
        return [Embedding(row) for row in outputs]


def counter(preprocess=None, **load_options):
    from hub.device import DeviceManager

    spec = ModelSpec(id="counter", task="text-embedding", plugin="toy", source="builtin",
                     preprocess=preprocess or {})
    return Counter(spec, model=None, device_manager=DeviceManager(device="cpu", dtype="fp32"), **load_options)


def test_every_step_gets_the_checked_options_with_defaults():
    pipe = counter()
    assert pipe("abba", scale="2").embedding == [4.0, 4.0, 0.0, 0.0, 0.0]
    assert [kw for _, kw in pipe.received] == [{"scale": 2.0, "mode": "sum"}] * 3


@pytest.mark.parametrize("kwargs", [{"scael": 2}, {"scale": "big"}, {"scale": 0}, {"mode": "mean"}, {"top_k": 1}])
def test_bad_options_fail_before_any_input_is_read(kwargs):
    pipe = counter()
    for inputs in (["abba", "cd"], "abba", []):
        with pytest.raises(OptionError):
            pipe(inputs, **kwargs)
    assert pipe.prepared == [] and pipe.received == []


def test_option_defaults_come_from_catalogue_then_load_options_then_the_call():
    assert counter(preprocess={"scale": 3, "max_length": 9})("a").embedding[0] == 3.0
    assert counter(preprocess={"scale": 3}, scale="5")("a").embedding[0] == 5.0
    assert counter(preprocess={"scale": 3}, scale=5)("a", scale=0.5).embedding[0] == 0.5
    assert counter(scale=5)("a", scale=None).embedding[0] == 5.0
    with pytest.raises(OptionError, match="'scale'"):
        counter(preprocess={"scale": "lots"})("a")


# -- every shipped pipeline declares its options --------------------------------------------------------
def shipped_pipelines() -> list[type]:
    """Every pipeline class the shipped plugins serve, with the speech variants the dispatcher picks."""
    import importlib

    from hub.plugin_kit import resolve_ref

    classes = {}
    for package in SHIPPED:
        for ref in importlib.import_module(package).PIPELINES.values():
            cls = resolve_ref(ref)
            classes[cls.__name__] = cls
            classes.update({sub.__name__: sub for sub in cls.__subclasses__()})
    return list(classes.values())


def test_shipped_pipelines_declare_options():
    names = {cls.__name__: [o.name for o in cls.call_options] for cls in shipped_pipelines()}
    assert names["TextEmbeddingPipeline"] == [] and names["ImageEmbeddingPipeline"] == []
    for cls in shipped_pipelines():
        assert all(isinstance(o, Option) and o.help for o in cls.call_options), cls
        assert len(names[cls.__name__]) == len(set(names[cls.__name__])), cls
    classifiers = ("TextClassificationPipeline", "FillMaskPipeline", "AudioClassificationPipeline",
                   "ImageClassificationPipeline", "ZeroShotImageClassificationPipeline", "ImageTextSimilarityPipeline")
    for name in classifiers:
        assert "top_k" in names[name], name


def test_the_same_option_means_the_same_thing_everywhere():
    """One type and range per name across all shipped pipelines; result counts share TOP_K's default."""
    seen: dict[str, Option] = {}
    for cls in shipped_pipelines():
        for option in cls.call_options:
            first = seen.setdefault(option.name, option)
            same = ("type", "minimum", "maximum", "exclusive_minimum", "choices")
            assert [getattr(option, f) for f in same] == [getattr(first, f) for f in same], (cls, option.name)
            if option.name == "top_k" and cls.__name__ not in ONE_BY_DEFAULT:
                assert option.default == TOP_K.default, cls


# tasks whose useful answer is one (a continuation, an answer span), as in the libraries they come from
ONE_BY_DEFAULT = ("TextGenerationPipeline", "QuestionAnsweringPipeline")


@pytest.mark.slow
def test_pipeline_modules_do_not_import_torch():
    code = textwrap.dedent(f"""
        import importlib, sys
        from hub.plugin_kit import resolve_ref
        for package in {SHIPPED!r}:
            for ref in importlib.import_module(package).PIPELINES.values():
                resolve_ref(ref).call_options
        print(sorted(m for m in ("torch", "transformers", "timm", "open_clip", "numpy", "PIL") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# -- the model_options hook, 'hub info' and 'hub run' ----------------------------------------------------------
class ToyPlugin:
    loads = 0

    @hub.hookimpl
    def register_models(self, register):
        register({"id": "toy-counter", "task": "text-embedding", "source": "builtin", "params": 0})

    @hub.hookimpl
    def load_model(self, spec, device_manager, options):
        ToyPlugin.loads += 1
        return Counter(spec, model=None, device_manager=device_manager, **options)

    @hub.hookimpl
    def model_options(self, spec):
        return list(Counter.call_options)


class GreedyPlugin:
    """Answers model_options for every model, its own or not; must never be asked about others'."""

    @hub.hookimpl
    def model_options(self, spec):
        return [Option("stolen", int, 1, "not mine")]


class BrokenOptionsPlugin:
    @hub.hookimpl
    def register_models(self, register):
        register({"id": "broken-options", "task": "text-embedding", "source": "builtin"})

    @hub.hookimpl
    def model_options(self, spec):
        return ["top_k"]


@pytest.fixture
def toy(fresh_hub):
    ToyPlugin.loads = 0
    pm = get_plugin_manager()
    pm.register(GreedyPlugin(), name="greedy")
    pm.register(ToyPlugin(), name="toy")


def test_hook_model_options(toy):
    from hub.model_options import model_options

    assert [o.name for o in model_options(hub.get_spec("toy-counter"))] == ["scale", "mode"]
    assert [o.name for o in model_options(hub.get_spec("bert-base-uncased"))] == ["top_k"]
    assert [o.name for o in model_options(hub.get_spec("all-minilm-l6-v2"))] == []
    unserved = ModelSpec(id="x", task="text-embedding", plugin="nobody", source="x")
    assert model_options(unserved) is None


def test_a_plugin_returning_no_options_objects_is_named(fresh_hub, cli_runner):
    from hub.cli import cli
    from hub.model_options import model_options

    get_plugin_manager().register(BrokenOptionsPlugin(), name="brokenopts")
    with pytest.raises(PluginError, match="brokenopts"):
        model_options(hub.get_spec("broken-options"))
    result = cli_runner.invoke(cli, ["info", "broken-options"])
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.parametrize("model_id, names", [
    ("toy-counter", ["scale", "mode"]), ("gpt2", ["max_new_tokens", "do_sample", "temperature", "top_k"]),
    ("resnet50.a1_in1k", ["top_k"]), ("clip-vit-b-32-openai", ["labels", "templates", "top_k"]),
    ("whisper-tiny", ["language", "task", "chunk_s"]), ("bert-base-ner", ["aggregation"]),
])
def test_info_shows_the_options(toy, cli_runner, model_id, names):
    from hub.cli import cli

    text = cli_runner.invoke(cli, ["info", model_id], catch_exceptions=False).output
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("options:"))
    shown = [line.split()[0] for line in lines[start + 2:]]
    assert all(n in shown for n in names), text
    data = json.loads(cli_runner.invoke(cli, ["info", model_id, "--json"], catch_exceptions=False).stdout)
    by_name = {o["name"]: o for o in data["options"]}
    assert all(n in by_name for n in names)
    assert all({"type", "default", "help", "minimum", "maximum", "choices"} <= set(o) for o in by_name.values())


def test_info_of_a_model_without_options(cli_runner):
    from hub.cli import cli

    text = cli_runner.invoke(cli, ["info", "all-minilm-l6-v2"], catch_exceptions=False).output
    assert "options:     (none)" in text
    data = json.loads(cli_runner.invoke(cli, ["info", "all-minilm-l6-v2", "--json"]).stdout)
    assert data["options"] == []


@pytest.mark.slow
def test_info_shows_options_without_importing_torch():
    code = textwrap.dedent("""
        import sys
        from hub.cli import cli
        for model in ("gpt2", "whisper-tiny", "resnet50.a1_in1k", "clip-vit-b-32-openai", "bert-base-ner"):
            for extra in ([], ["--json"]):
                cli.main(["info", model, *extra], standalone_mode=False)
        print("HEAVY", sorted(m for m in ("torch", "timm", "transformers", "open_clip", "numpy", "PIL")
                              if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "top_p" in out.stdout and "templates" in out.stdout and "stride_s" in out.stdout
    assert out.stdout.strip().endswith("HEAVY []"), out.stdout[-500:] + out.stderr


@pytest.mark.parametrize("args, words", [
    (["-o", "scael=2"], ["'scael'", "Did you mean: scale?", "Valid options: scale, mode"]),
    (["-o", "scale=big"], ["'scale'", "a number"]),
    (["-o", "scale=0"], ["'scale'", "> 0"]),
    (["-o", "mode=mean"], ["'mode'", "one of sum, max"]),
    (["--top-k", "2"], ["'top_k'", "no", "scale, mode"]),
    (["--label", "cat"], ["'labels'"]),
])
def test_run_refuses_bad_options_before_loading(toy, cli_runner, args, words):
    from hub.cli import cli

    result = cli_runner.invoke(cli, ["run", "toy-counter", "abc", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output
    assert all(w in lines[0] for w in words), lines[0]
    assert ToyPlugin.loads == 0


def test_run_converts_option_strings(toy, cli_runner):
    from hub.cli import cli

    result = cli_runner.invoke(cli, ["run", "toy-counter", "abba", "-o", "scale=0.5", "-o", "mode=max", "--json"],
                               catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["embedding"] == [1.0, 1.0, 0.0, 0.0, 0.0]


class NoOptionsHookPlugin:
    @hub.hookimpl
    def register_models(self, register):
        register({"id": "silent-model", "task": "text-embedding", "source": "builtin"})


def test_info_of_a_plugin_without_the_hook_says_nothing_about_options(fresh_hub, cli_runner):
    from hub.cli import cli

    get_plugin_manager().register(NoOptionsHookPlugin(), name="silent")
    assert "options:" not in cli_runner.invoke(cli, ["info", "silent-model"], catch_exceptions=False).output
    data = json.loads(cli_runner.invoke(cli, ["info", "silent-model", "--json"], catch_exceptions=False).stdout)
    assert data["options"] is None


@pytest.mark.slow
@pytest.mark.parametrize("model, given, args, words", [
    ("all-minilm-l6-v2", "a cat", ["-o", "top_k=3"], ["'top_k'", "It takes no options"]),
    ("gpt2", "Hello", ["-o", "temperature=hot"], ["'temperature'", "a number > 0"]),
    ("gpt2", "Hello", ["-o", "do_sample=maybe"], ["'do_sample'", "a boolean"]),
    ("bert-base-ner", "Ada in Kyoto", ["-o", "aggregation=mean"], ["'aggregation'", "first, average"]),
    ("whisper-tiny", "speech.wav", ["-o", "chunk_s=abc"], ["'chunk_s'", "a number > 0"]),
    ("ast-audioset", "speech.wav", ["-o", "top_k=0"], ["'top_k'", "an integer >= 1"]),
    ("resnet50.a1_in1k", "cat.png", ["-o", "top_k=all"], ["'top_k'", "an integer >= 1"]),
    ("resnet50.a1_in1k-embed", "cat.png", ["-o", "top_k=1"], ["'top_k'", "It takes no options"]),
    ("clip-vit-b-32-openai", "cat.png", ["--label", "a,b", "-o", "top_k=-2"], ["'top_k'", ">= 1"]),
    ("clip-similarity", "cat.png", ["--text", "a", "-o", "embedings=no"], ["Did you mean: embeddings?"]),
])
def test_hub_run_refuses_bad_options_in_one_line(tmp_path, model, given, args, words):
    """The installed 'hub' command, for a catalogue model of every shipped plugin: checked before any weights."""
    from conftest import hub_exe

    (tmp_path / "cat.png").write_bytes(b"")  # never read: the options fail first
    (tmp_path / "speech.wav").write_bytes(b"")
    out = subprocess.run([hub_exe(), "run", model, given, *args], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and all(w in lines[0] for w in words), out.stderr


# -- a declared default the option itself refuses: refused when declared, naming the plugin -----------------------------
BAD_DEFAULTS = [
    ("int, '3'", "int, '3'"), ("int, True", "int, True"), ("int, 0, minimum=1", "int, 0"),
    ("int, 2.5", "int, 2.5"), ("float, float('nan')", "float, nan"), ("float, '0.5'", "float, '0.5'"),
    ("float, 2.0, maximum=1", "float, 2.0"), ("float, 0, minimum=0, exclusive_minimum=True", "float, 0"),
    ("str, 3", "str, 3"), ("str, 'x', choices=('a', 'b')", "str, 'x'"), ("bool, 1", "bool, 1"),
    ("bool, 'true'", "bool, 'true'"), ("list, 'a,b'", "list, 'a,b'"), ("list, [1, 2]", "list, [1, 2]"),
]
BAD_OPTION_PLUGIN = '''
from hub import hookimpl
from hub.options import Option
from hub.tasks.base import Pipeline
{eager}

class Declared(Pipeline):
    task = "text-embedding"
    call_options = ()

    def preprocess(self, items, **kw): return items
    def forward(self, batch, **kw): return batch
    def postprocess(self, outputs, items, **kw): return []


@hookimpl
def register_models(register):
    register({{"id": "{name}-model", "task": "text-embedding", "source": "nowhere"}})


@hookimpl
def model_options(spec):
    if {lazy}:
        return [{option}]  # declared when asked, as a pipeline module imported late declares it
    return list(Declared.call_options)
'''


@pytest.mark.parametrize("declaration, shown", BAD_DEFAULTS)
@pytest.mark.parametrize("when", ["import", "hook"])
def test_an_option_whose_default_it_refuses_fails_the_plugin_by_name(declaration, shown, when, tmp_path, monkeypatch,
                                                                     fresh_hub, cli_runner):
    import importlib

    from hub.cli import cli
    from hub.testing.isolation import write_dist_info

    name = f"baddefault{abs(hash((declaration, when))) % 10**8}"
    option = f"Option('knob', {declaration})"
    source = BAD_OPTION_PLUGIN.format(name=name, option=option, lazy=when == "hook",
                                      eager=f"KNOB = {option}" if when == "import" else "")
    (tmp_path / f"mmhub_{name}.py").write_text(source)
    write_dist_info(tmp_path, f"mmhub-{name}", "1.0", name, f"mmhub_{name}")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("HUB_PLUGINS", raising=False)
    importlib.invalidate_caches()
    try:
        rows = {r["name"]: r for r in json.loads(cli_runner.invoke(cli, ["plugins", "--json"]).stdout)}
        listed = cli_runner.invoke(cli, ["list", "--json"])
        assert listed.exit_code == 0 and "all-minilm-l6-v2" in listed.stdout  # every other plugin keeps working
        if when == "import":
            assert rows[name]["status"] == "failed", rows[name]
            error = rows[name]["error"]
        else:
            done = cli_runner.invoke(cli, ["info", f"{name}-model"])
            assert done.exit_code == 2 and "Traceback" not in done.output
            error = done.stderr.strip()
            assert "\n" not in error and f"plugin '{name}'" in error
        assert f"option 'knob' declares the default {shown.split(', ', 1)[1]}" in error, error
    finally:
        sys.modules.pop(f"mmhub_{name}", None)


@pytest.mark.parametrize("option", [TOP_K, SCALE, MODE, LABELS, DO_SAMPLE, SEED, TEMPERATURE, TOP_P, MAX_NEW_TOKENS,
                                    Option("n", int, 0, minimum=0), Option("f", float, 3, maximum=3),
                                    Option("l", list, ("a", "b")), Option("s", str, "b", choices=("a", "b"))])
def test_defaults_the_option_accepts_are_kept(option):
    assert option.but(help="another wording").default == option.default
