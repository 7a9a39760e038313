import json

import pytest

from hub.errors import UnknownTaskError
from hub.errors import HubError
from hub.tasks import ALIASES, MODALITIES, TASKS, TaskInfo, list_tasks, resolve_task
from hub.tasks.table import as_task
from hub.tasks.results import RESULT_TYPES, Classification, Embedding, LabelScore, cosine


def test_every_modality_has_tasks():
    assert {t.modality for t in TASKS.values()} == set(MODALITIES)


def test_named_tasks_exist():
    for name in ["text-embedding", "text-classification", "fill-mask", "token-classification", "text-generation",
                 "image-classification", "image-embedding", "speech-recognition", "audio-classification",
                 "zero-shot-image-classification", "image-text-similarity"]:
        assert name in TASKS


def test_aliases_resolve():
    assert resolve_task("feature-extraction") == "text-embedding"
    assert resolve_task("ASR") == "speech-recognition"
    assert resolve_task("sentiment_analysis") == "text-classification"
    assert all(resolve_task(a) == t for a, t in ALIASES.items())


def test_unknown_task_lists_valid_ones():
    with pytest.raises(UnknownTaskError) as err:
        resolve_task("text-clasification")
    message = str(err.value)
    assert "text-classification" in message and "image-embedding" in message


def test_every_task_result_type_exists_and_serialises():
    for info in TASKS.values():
        if info.plugin == "core" and ":" not in info.result:  # a class of hub.tasks.results by name
            assert info.result in RESULT_TYPES
        else:  # "module:Class", imported only when used
            assert ":" in info.result
        if info.plugin == "core":
            assert callable(info.result_type().from_dict)
    result = Classification([LabelScore("cat", 0.9, 1)])
    assert json.loads(json.dumps(result.to_dict())) == {"labels": [{"label": "cat", "score": 0.9, "index": 1}],
                                                        "warning": None}


def test_list_tasks_by_modality():
    assert [t.name for t in list_tasks("speech")] == ["speech-recognition", "audio-classification", "text-to-speech",
                                                      "zero-shot-audio-classification"]


def test_cosine():
    assert cosine([1, 0], [1, 0]) == pytest.approx(1.0)
    assert cosine([1, 0], [0, 1]) == pytest.approx(0.0)
    assert Embedding([0.0, 1.0, 2.0]).dim == 3


def test_the_core_declares_its_tasks_first():
    core = [t for t in TASKS.values() if t.plugin == "core"]
    from hub.tasks.builtin import core_tasks

    assert len(core) == len(core_tasks()) >= 19 and list(TASKS.values())[:len(core)] == core
    assert all(t.view == "table" and t.loader is None for t in core)
    assert [t.name for t in core if t.save] == ["text-to-speech"]  # the one core task that writes files


def test_a_declaration_is_checked_field_by_field():
    ok = {"name": "word-count", "modality": "nlp", "inputs": "text", "result": "pkg.results:Count"}
    info = as_task({**ok, "aliases": ["wc"]}, "words")
    assert info == TaskInfo("word-count", "nlp", "text", "pkg.results:Count", aliases=("wc",), plugin="words")
    assert as_task(info, "other").plugin == "other"
    bad = [
        ({**ok, "colour": "red"}, "unknown field(s) colour"),
        ({**ok, "modality": None}, "required field(s) missing or empty: modality"),
        ({**ok, "name": "Word Count"}, "'Word Count' is not a valid task name"),
        ({**ok, "aliases": "wc"}, "'aliases' must be a list of strings"),
        ({**ok, "modality": "smell"}, "unknown modality 'smell'"),
        ({**ok, "view": "chart"}, "unknown view 'chart'; valid views: table, text"),
        ({**ok, "inputs": "midi"}, "the new kind 'midi' need a 'loader'"),
        ({**ok, "loader": "pkg.io:read"}, "inputs of kind 'text' are read by the hub"),
        ({**ok, "result": "Embedding"}, "'result' must name the result class as \"module:Class\""),
        ({**ok, "save": "pkg.io.save"}, "'save' must name a function as \"module:function\""),
        ({**ok, "description": 3}, "'description' must be a string"),
        (["word-count"], "register() takes a dict or a hub.tasks.TaskInfo, got list"),
    ]
    for entry, words in bad:
        with pytest.raises(HubError) as err:
            as_task(entry, "words")
        assert words in str(err.value), (entry, str(err.value))
    assert as_task({**ok, "inputs": "midi", "loader": "pkg.io:read"}, "words").loader == "pkg.io:read"


def test_task_rows_as_json():
    row = TASKS["speech-recognition"].to_dict()
    assert row == {"name": "speech-recognition", "modality": "speech", "inputs": "audio", "result": "Transcription",
                   "description": "Text spoken in an audio clip.",
                   "aliases": ["automatic-speech-recognition", "asr", "transcription"], "view": "table",
                   "saves_files": False, "plugin": "core"}


@pytest.mark.slow
def test_importing_the_task_table_builds_nothing():
    import subprocess
    import sys

    code = ("import sys; from hub.tasks import TASKS; import hub.registry, hub.cli; "
            "print(sorted(m for m in ('hub.plugins', 'torch', 'fastapi') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


# -- what the services do with a task comes from its declaration, never from its name ------------------------------
ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
DECLARATIONS = {"hub/tasks/builtin.py"}  # the one place that spells the core's task names


def task_name_literals(source: str, names) -> list[tuple[int, str]]:
    """(line, text) of every string constant in ``source`` equal to one of ``names`` (an f-string's literal parts
    and a docstring count as well: a name is a name wherever it is spelled as a whole string)."""
    import ast

    return sorted((node.lineno, node.value) for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names)


def test_no_module_of_the_hub_checks_a_core_task_by_name():
    """Export, training, recommend, measure, the server and every other module read TaskInfo fields; only the
    declarations name the core's tasks."""
    from hub.tasks.builtin import core_tasks

    names = {info.name for info in core_tasks()}
    found = [f"{path.relative_to(ROOT)}:{line}: {text!r}" for path in sorted((ROOT / "hub").rglob("*.py"))
             if str(path.relative_to(ROOT)) not in DECLARATIONS
             for line, text in task_name_literals(path.read_text(encoding="utf-8"), names)]
    assert not found, "task names spelled outside the declarations (use a TaskInfo field):\n" + "\n".join(found)


@pytest.mark.parametrize("snippet", ['if spec.task == "text-embedding": pass',
                                     'KINDS = {"image-classification": 1}',
                                     'ok = task in ("speech-recognition", "x")',
                                     'route = f"{x}" if y else "text-ranking"'])
def test_the_task_name_check_finds_a_name_check(snippet):
    from hub.tasks.builtin import core_tasks

    assert task_name_literals(snippet, {info.name for info in core_tasks()})


def test_the_services_find_their_tasks_through_the_declarations():
    from hub.tasks import task_with, tasks_with

    assert task_with(route="embeddings", inputs="text") == "text-embedding"
    assert task_with(route="embeddings", modality="vision") == "image-embedding"
    assert task_with(route="embeddings", modality="crossmodal") == "image-text-similarity"
    assert tasks_with(route="transcriptions") == ["speech-recognition"]
    assert tasks_with(route="rerank") == ["text-ranking"]
    assert task_with(route="no-such-route") is None
    assert [t for t, info in TASKS.items() if info.needs_mask] == ["fill-mask"]
    assert {t: info.export for t, info in TASKS.items() if info.export} == {
        "text-embedding": "embedding", "image-embedding": "embedding", "text-classification": "classification",
        "image-classification": "classification", "zero-shot-image-classification": "zero-shot",
        "image-text-similarity": "image-text"}


def test_training_kinds_come_from_the_declarations():
    from hub.train.api import task_kinds

    assert task_kinds() == {
        "text-classification": ("classification", "text"), "token-classification": ("classification", "text"),
        "image-classification": ("classification", "image"), "audio-classification": ("classification", "audio"),
        "image-text-similarity": ("contrastive", "image"), "zero-shot-image-classification": ("contrastive", "image"),
        "speech-recognition": ("ctc", "audio")}


SERVICE_FIELDS_OK = {"name": "word-count", "modality": "nlp", "inputs": "text", "result": "pkg.results:Count"}


@pytest.mark.parametrize("field, value, words", [
    ("export", "onnx", "unknown export 'onnx'; valid values: embedding, classification, image-text, zero-shot"),
    ("export", 3, "field 'export' must be a string"),
    ("route", "chat", "unknown route 'chat'; valid values: embeddings, transcriptions, rerank"),
    ("train_kind", "regression", "unknown train_kind 'regression'; valid values: classification, contrastive, ctc"),
    ("advice", "lots", "unknown advice 'lots'; valid values: labels, no-training, embedding, generator"),
    ("zero_shot", "Zero Shot", "field 'zero_shot' must name a task"),
    ("zero_shot", ["x"], "field 'zero_shot' must be a string"),
    ("needs_mask", "yes", "field 'needs_mask' must be true or false"),
])
def test_a_declaration_s_service_fields_are_checked(field, value, words):
    with pytest.raises(HubError) as err:
        as_task({**SERVICE_FIELDS_OK, field: value}, "words")
    assert words in str(err.value)


def test_a_plugin_task_declares_what_the_services_do_with_it():
    info = as_task({**SERVICE_FIELDS_OK, "export": "classification", "route": "rerank", "train_kind": "classification",
                    "advice": "generator", "zero_shot": "zero-shot-classification", "needs_mask": True}, "words")
    assert (info.export, info.route, info.train_kind, info.advice, info.zero_shot, info.needs_mask) == (
        "classification", "rerank", "classification", "generator", "zero-shot-classification", True)
    assert as_task(SERVICE_FIELDS_OK, "words").advice == "labels"
