"""Label values in data tables: one spelling per class, booleans vs numbers, columns that look swapped.

Each class of bad input is checked through the reader (:func:`hub.train.data.read_records`), the Python
API (:func:`hub.train.api.finetune` / ``evaluate``) and the command line (``hub finetune`` / ``hub eval``:
exit 2, one ``Error:`` line, no traceback). The data errors are found before any model is loaded.
"""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from hub.errors import HubError
from hub.train.data import label_names, read_records
from hub.train.labels import canonical

MODEL = "all-minilm-l6-v2"  # a catalogue id; these errors come before its weights are read


def write(path: Path, rows) -> Path:
    """JSONL from dicts, CSV from lists of cells (the first is the header)."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        path.write_text("".join(",".join(map(str, r)) + "\n" for r in rows), encoding="utf-8")
    return path


def hub_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"}, timeout=300)


def assert_one_line_error(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


# -- one spelling per class ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, name", [
    (1, "1"), (1.0, "1"), ("1", "1"), (" 1 ", "1"), ("1.0", "1"), ("01", "1"), ("+1", "1"), ("1e0", "1"),
    (-2, "-2"), ("-2.0", "-2"), (2.5, "2.5"), ("2.50", "2.5"), (True, "true"), (False, "false"),
    ("TRUE", "true"), ("False", "false"), ("cat", "cat"), (" Cat ", "Cat"), ("1st", "1st"), ("1_000", "1_000"),
    (float("nan"), ""), (float("inf"), ""), (None, ""), ([1], ""), ({"a": 1}, ""), ("", ""),
])
def test_canonical_label_names(raw, name):
    assert canonical(raw) == name


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_numeric_spellings_merge_into_one_class_with_a_warning(tmp_path, suffix):
    if suffix == ".jsonl":
        rows = [{"text": f"row {i}", "label": v} for i, v in enumerate([1, 1.0, "1", 2, "2.0", 2, 1, 2])]
    else:
        rows = [["text", "label"]] + [[f"row {i}", v] for i, v in enumerate(["1", "1.0", "01", "2", "2", "2.0",
                                                                              "1", "2"])]
    data = write(tmp_path / f"d{suffix}", rows)
    with pytest.warns(UserWarning, match="merged") as caught:
        records, problems = read_records(data, "classification", "text")
    assert label_names(records) == ["1", "2"] and not problems
    message = str(caught[0].message)
    assert f"d{suffix}" in message and '-> "1"' in message and '-> "2"' in message
    if suffix == ".jsonl":
        assert '1, 1.0, "1"' in message


def test_one_spelling_per_class_gives_no_warning(tmp_path):
    data = write(tmp_path / "d.jsonl", [{"text": f"t{i}", "label": i % 2} for i in range(6)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records, _ = read_records(data, "classification", "text")
    assert label_names(records) == ["0", "1"]


def test_token_tags_and_image_labels_are_normalised_too(tmp_path):
    ner = write(tmp_path / "ner.jsonl", [{"tokens": ["a", "b"], "tags": [0, 1.0]}, {"tokens": ["c"], "tags": ["1"]}])
    with pytest.warns(UserWarning, match="merged"):
        records, _ = read_records(ner, "classification", "text")
    assert [r.label for r in records] == [["0", "1"], ["1"]]
    from PIL import Image

    for name in ("a.png", "b.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    table = write(tmp_path / "images.jsonl", [{"image": "a.png", "label": 3}, {"image": "b.png", "label": "3.0"}])
    with pytest.warns(UserWarning, match="merged"):
        records, _ = read_records(table, "classification", "image")
    assert [r.label for r in records] == ["3", "3"]


@pytest.mark.parametrize("suffix, values", [
    (".jsonl", [True, 1, False, 0]),
    (".jsonl", [True, "1", False, "0"]),
    (".jsonl", ["true", 1.0, "false", 0.0]),
    (".csv", ["true", "1", "false", "0"]),
    (".csv", ["True", "2", "FALSE", "3"]),
])
def test_booleans_mixed_with_numbers_are_refused(tmp_path, suffix, values):
    if suffix == ".jsonl":
        rows = [{"text": f"row {i}", "label": v} for i, v in enumerate(values * 2)]
    else:
        rows = [["text", "label"]] + [[f"row {i}", v] for i, v in enumerate(values * 2)]
    data = write(tmp_path / f"mixed{suffix}", rows)
    with pytest.raises(HubError, match="mixes true/false with numbers") as err:
        read_records(data, "classification", "text")
    assert f"mixed{suffix}:" in str(err.value) and "'label'" in str(err.value)


def test_booleans_alone_are_two_classes(tmp_path):
    data = write(tmp_path / "b.jsonl", [{"text": f"t{i}", "label": v} for i, v in enumerate([True, False, "true"])])
    with pytest.warns(UserWarning, match="merged"):
        records, _ = read_records(data, "classification", "text")
    assert label_names(records) == ["false", "true"]


# -- labels kept as written but warned about: case variants, numbers mixed with words ----------------------------------
CASE_VARIANTS = [["One", "one"], ["cat", "Cat", "CAT"], ["Positive", "positive"], ["Straße", "STRASSE"],
                 ["Ärger", "ärger"], ["B-PER", "b-per"]]
MIXED_KINDS = [[1, "two"], [1, 1.5, "One"], ["0", "neg"], [3, "three", 4], [-1, "negative"], ["2.5", "high"]]


def rows_of(values, suffix):
    """Eight rows cycling through ``values`` (JSONL keeps numbers as numbers; CSV holds text)."""
    cells = [values[i % len(values)] for i in range(8)]
    if suffix == ".jsonl":
        return [{"text": f"row {i}", "label": v} for i, v in enumerate(cells)]
    return [["text", "label"]] + [[f"row {i}", v] for i, v in enumerate(cells)]


def label_warnings(path: Path) -> tuple[list[str], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records, _ = read_records(path, "classification", "text")
    return label_names(records), [str(w.message) for w in caught]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
@pytest.mark.parametrize("values", CASE_VARIANTS, ids=lambda v: "/".join(map(str, v)))
def test_labels_that_differ_only_in_case_stay_apart_with_a_warning_naming_them(tmp_path, values, suffix):
    names, messages = label_warnings(write(tmp_path / f"d{suffix}", rows_of(values, suffix)))
    assert names == sorted(values)  # still separate classes: the hub does not guess
    case = [m for m in messages if "differ only in case" in m]
    assert len(case) == 1 and f"d{suffix}" in case[0]
    assert all(f'"{v}" (' in case[0] for v in values)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
@pytest.mark.parametrize("values", MIXED_KINDS, ids=lambda v: "/".join(map(str, v)))
def test_numbers_mixed_with_words_warn_naming_both_kinds(tmp_path, values, suffix):
    names, messages = label_warnings(write(tmp_path / f"d{suffix}", rows_of(values, suffix)))
    assert len(names) == len(values)
    mixed = [m for m in messages if "mixes numbers" in m]
    assert len(mixed) == 1 and "'label'" in mixed[0] and "Use one kind of label" in mixed[0]
    assert all(f'"{canonical(v)}" (' in mixed[0] for v in values)


def test_the_reported_labels_one_one_and_a_half_and_two_cases_of_one_get_both_warnings(tmp_path):
    names, messages = label_warnings(write(tmp_path / "d.jsonl", rows_of([1, 1.5, "One", "one"], ".jsonl")))
    assert names == ["1", "1.5", "One", "one"]
    assert len(messages) == 1 and "differ only in case" in messages[0] and "mixes numbers" in messages[0]


@pytest.mark.parametrize("values", [["cat", "dog"], [1, 2, 3], ["true", "false"], ["yes", "no", "true"],
                                    ["Cat", "Dog"], [0.5, 1.5]])
def test_one_kind_and_one_case_per_label_give_no_warning(tmp_path, values):
    data = write(tmp_path / "d.jsonl", rows_of(values, ".jsonl"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records, _ = read_records(data, "classification", "text")
    assert len(label_names(records)) == len(values)


# -- swapped columns ----------------------------------------------------------------------------------------------
SENTENCES = ["I loved every minute of this film", "The service was slow and the food was cold",
             "A quiet, moving story about two brothers", "Nothing happens for two long hours",
             "The best concert I have been to in years", "Would not recommend this hotel to anyone"]


def swapped_rows(kind: str):
    """Rows whose columns look swapped: free text as labels, or one label per row."""
    if kind == "free-text-labels":
        return [{"text": ["pos", "neg"][i % 2], "label": s} for i, s in enumerate(SENTENCES)]
    return [{"text": f"review {i}", "label": f"id-{i}"} for i in range(6)]


@pytest.mark.parametrize("kind", ["free-text-labels", "one-label-per-row"])
@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_swapped_columns_are_refused_naming_the_columns_and_the_fix(tmp_path, kind, suffix):
    rows = swapped_rows(kind)
    if suffix == ".csv":
        rows = [["text", "label"]] + [[r["text"], r["label"]] for r in rows]
    data = write(tmp_path / f"d{suffix}", rows)
    with pytest.raises(HubError) as err:
        read_records(data, "classification", "text")
    message = str(err.value)
    assert "'label'" in message and "--text-column/--label-column" in message and f"d{suffix}" in message
    assert "look swapped" in message


def test_one_label_per_row_is_fine_in_evaluation_and_small_data(tmp_path):
    data = write(tmp_path / "d.jsonl", swapped_rows("one-label-per-row"))
    assert len(read_records(data, "classification", "text", purpose="evaluation")[0]) == 6
    small = write(tmp_path / "s.jsonl", swapped_rows("one-label-per-row")[:4])
    assert len(read_records(small, "classification", "text")[0]) == 4


def test_the_right_columns_read_the_same_data(tmp_path):
    data = write(tmp_path / "d.jsonl", swapped_rows("free-text-labels"))
    records, _ = read_records(data, "classification", "text", text_column="label", label_column="text")
    assert label_names(records) == ["neg", "pos"] and records[0].input == SENTENCES[0]


def test_image_table_with_file_names_in_the_label_column_is_refused(tmp_path):
    from PIL import Image

    for name in ("a.png", "b.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    data = write(tmp_path / "images.jsonl", [{"image": "cat", "label": "a.png"}, {"image": "dog", "label": "b.png"}])
    with pytest.raises(HubError, match="holds file names .* look swapped"):
        read_records(data, "classification", "image")


# -- through the Python API and the command line ------------------------------------------------------------------
BAD_DATA = {
    "booleans-and-numbers": [{"text": f"row {i}", "label": v} for i, v in enumerate([True, 1, False, 0] * 2)],
    "free-text-labels": swapped_rows("free-text-labels"),
    "one-label-per-row": swapped_rows("one-label-per-row"),
}
EXPECTED = {"booleans-and-numbers": "mixes true/false with numbers", "free-text-labels": "look swapped",
            "one-label-per-row": "look swapped"}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_finetune_and_evaluate_refuse_bad_labels(tmp_path, case):
    from hub.train.api import evaluate, finetune

    data = write(tmp_path / "data.jsonl", BAD_DATA[case])
    with pytest.raises(HubError, match=EXPECTED[case]):
        finetune(MODEL, data, task="text-classification", out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "model.safetensors").exists()
    if case != "one-label-per-row":  # a different label on every row is fine to evaluate on
        with pytest.raises(HubError, match=EXPECTED[case]):
            evaluate(MODEL, data, task="text-classification")


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_DATA))
def test_cli_refuses_bad_labels_with_one_line(tmp_path, case):
    data = write(tmp_path / "data.jsonl", BAD_DATA[case])
    done = hub_cli("finetune", MODEL, "--data", str(data), "--task", "text-classification", "--out",
                   str(tmp_path / "out"), cwd=tmp_path)
    assert_one_line_error(done, EXPECTED[case], "data.jsonl")
    if case != "one-label-per-row":
        done = hub_cli("eval", MODEL, "--data", str(data), "--task", "text-classification", cwd=tmp_path)
        assert_one_line_error(done, EXPECTED[case], "data.jsonl")
