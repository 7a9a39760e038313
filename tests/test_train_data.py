"""Training data readers: every format, bad rows with file:line, skip vs error, splits."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from hub.errors import HubError
from hub.train.adapter import Record
from hub.train.data import check_val_labels, label_names, read_records, stratified_split

DATA = Path(__file__).parent / "data"


def write_png(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (200, 10, 10)).save(path)


def write_wav(path: Path) -> None:
    import numpy as np
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(160, dtype="float32"), 16000)


def write_jsonl(path: Path, rows) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- text tables -----------------------------------------------------------------------------
def test_csv_text_rows_and_bad_rows_with_lines(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text('text,label\ngreat film,pos\n"awful, boring",neg\n  ,pos\nfine,\n"multi\nline",pos\n')
    records, problems = read_records(f, "classification", "text")
    assert [(r.input, r.label) for r in records] == [("great film", "pos"), ("awful, boring", "neg"),
                                                      ("multi\nline", "pos")]
    assert records[0].where == "data.csv:2" and records[2].where == "data.csv:7"
    assert problems == ["data.csv:4: empty text", "data.csv:5: missing label"]


def test_on_bad_error_lists_problems(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("text,label\nok,a\n" + "".join(f",a\n" for _ in range(12)))
    with pytest.raises(HubError) as err:
        read_records(f, "classification", "text", on_bad="error")
    msg = str(err.value)
    assert "13 bad rows" not in msg and "12 bad rows" in msg
    assert "data.csv:3: empty text" in msg and "and 2 more" in msg and "on_bad='skip'" in msg


def test_custom_columns_tsv_and_missing_column_names_file_and_columns(tmp_path):
    f = tmp_path / "reviews.tsv"
    f.write_text("review\tstars\nloved it\t5\nmeh\t2\n")
    records, problems = read_records(f, "classification", "text", text_column="review", label_column="stars")
    assert [(r.input, r.label) for r in records] == [("loved it", "5"), ("meh", "2")] and not problems
    with pytest.raises(HubError) as err:
        read_records(f, "classification", "text")
    assert "reviews.tsv" in str(err.value) and "'text'" in str(err.value) and "review, stars" in str(err.value)


def test_jsonl_text_with_unparsable_and_non_object_lines(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [{"text": "hi", "label": "a"}, "{broken", "[1, 2]", "",
                                           {"text": "yo", "label": 3}, {"text": "no label"}])
    records, problems = read_records(f, "classification", "text")
    assert [(r.input, r.label, r.where) for r in records] == [("hi", "a", "d.jsonl:1"), ("yo", "3", "d.jsonl:5")]
    assert problems[0].startswith("d.jsonl:2: unparsable JSON")
    assert problems[1] == "d.jsonl:3: expected a JSON object, got list"
    assert problems[2] == "d.jsonl:6: missing label"


def test_json_array_file(tmp_path):
    f = tmp_path / "d.json"
    f.write_text(json.dumps([{"text": "a", "label": "x"}, 5]))
    records, problems = read_records(f, "classification", "text")
    assert records[0].where == "d.json:#0" and problems == ["d.json:#1: expected a JSON object, got int"]


def test_token_classification_rows(tmp_path):
    f = write_jsonl(tmp_path / "ner.jsonl", [
        {"tokens": ["Ada", "lives", "in", "Paris"], "tags": ["B-PER", "O", "O", "B-LOC"]},
        {"tokens": ["a", "b"], "tags": ["O"]},
        {"tokens": [], "tags": []},
    ])
    records, problems = read_records(f, "classification", "text")
    assert records[0].input == ["Ada", "lives", "in", "Paris"] and records[0].label[-1] == "B-LOC"
    assert problems == ["ner.jsonl:2: 2 tokens but 1 tags", "ner.jsonl:3: empty text (tokens must be a non-empty "
                        "list of non-empty strings)"]
    assert label_names(records) == ["B-LOC", "B-PER", "O"]


# -- folders and media -----------------------------------------------------------------------
def test_image_folder(tmp_path):
    root = tmp_path / "pets"
    write_png(root / "cat" / "1.png")
    write_png(root / "cat" / "2.jpg")
    write_png(root / "dog" / "sub" / "3.png")
    (root / "dog" / "notes.txt").write_text("x")
    (root / ".hidden").mkdir()
    records, problems = read_records(root, "classification", "image")
    assert [(Path(r.input).name, r.label) for r in records] == [("1.png", "cat"), ("2.jpg", "cat"), ("3.png", "dog")]
    assert records[2].where == "pets/dog/sub/3.png"
    assert len(problems) == 1 and problems[0].startswith("pets/dog/notes.txt: not an image file")
    assert label_names(records) == ["cat", "dog"]


def test_audio_folder_and_folder_without_classes(tmp_path):
    write_wav(tmp_path / "sounds" / "yes" / "a.wav")
    write_wav(tmp_path / "sounds" / "no" / "b.flac")
    records, _ = read_records(tmp_path / "sounds", "classification", "audio")
    assert sorted(r.label for r in records) == ["no", "yes"]
    (tmp_path / "flat").mkdir()
    write_wav(tmp_path / "flat" / "c.wav")
    with pytest.raises(HubError, match="no class subfolders"):
        read_records(tmp_path / "flat", "classification", "audio")


def test_image_table_paths_relative_to_the_file(tmp_path):
    write_png(tmp_path / "img" / "a.png")
    f = tmp_path / "labels.csv"
    f.write_text("image,label\nimg/a.png,cat\nimg/missing.png,dog\n")
    records, problems = read_records(f, "classification", "image")
    assert records[0].input == str(tmp_path / "img" / "a.png") and records[0].label == "cat"
    assert problems == ["labels.csv:3: image file 'img/missing.png' not found"]


def test_contrastive_captions(tmp_path):
    write_png(tmp_path / "a.png")
    write_png(tmp_path / "b.png")
    (tmp_path / "c.txt").write_text("not an image")
    f = write_jsonl(tmp_path / "captions.jsonl", [
        {"image": "a.png", "caption": "a red square"}, {"image": "b.png", "caption": " "},
        {"image": "gone.png", "caption": "x"}, {"image": "c.txt", "caption": "x"}, {"caption": "no image"},
    ])
    records, problems = read_records(f, "contrastive", "image")
    assert [(Path(r.input).name, r.text, r.label) for r in records] == [("a.png", "a red square", None)]
    assert problems == ["captions.jsonl:2: empty caption", "captions.jsonl:3: image file 'gone.png' not found",
                        "captions.jsonl:4: 'c.txt' is not an image file (expected one of .bmp, .gif, .jpeg, .jpg, "
                        ".png, .tif, .tiff, .webp)", "captions.jsonl:5: no image file named"]
    # a folder holding metadata.jsonl works too
    (tmp_path / "metadata.jsonl").write_text(f.read_text())
    assert len(read_records(tmp_path, "contrastive", "image")[0]) == 1


def test_ctc_transcripts(tmp_path):
    write_wav(tmp_path / "clips" / "1.wav")
    f = write_jsonl(tmp_path / "train.jsonl", [{"audio": "clips/1.wav", "text": "hello world"},
                                               {"audio": "clips/1.wav", "text": ""},
                                               {"audio": "clips/2.wav", "text": "hi"}])
    records, problems = read_records(f, "ctc", "audio")
    assert records[0].text == "hello world" and records[0].where == "train.jsonl:1"
    assert problems == ["train.jsonl:2: empty transcript", "train.jsonl:3: audio file 'clips/2.wav' not found"]


def test_clear_errors_for_wrong_paths_kinds_and_empty_data(tmp_path):
    with pytest.raises(HubError, match="does not exist"):
        read_records(tmp_path / "nope.csv", "classification", "text")
    with pytest.raises(HubError, match="unknown kind 'regression'"):
        read_records(tmp_path, "regression", "text")
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(HubError, match="unsupported type '.parquet'"):
        read_records(tmp_path / "x.parquet", "classification", "text")
    f = tmp_path / "bad.csv"
    f.write_text("text,label\n,a\n")
    with pytest.raises(HubError, match="no usable rows.*bad.csv:2: empty text"):
        read_records(f, "classification", "text")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(HubError, match="header row"):
        read_records(tmp_path / "empty.csv", "classification", "text")
    (tmp_path / "latin.csv").write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(HubError, match="not UTF-8"):
        read_records(tmp_path / "latin.csv", "classification", "text")


def test_shipped_sentence_set_is_balanced_and_reproducible():
    import importlib.util

    records, problems = read_records(DATA / "topics.jsonl", "classification", "text")
    assert not problems and len(records) >= 400 and len({r.input for r in records}) == len(records)
    counts = Counter(r.label for r in records)
    assert len(counts) >= 2 and max(counts.values()) - min(counts.values()) <= 1
    spec = importlib.util.spec_from_file_location("make_sentences", DATA / "make_sentences.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert [(r.input, r.label) for r in records] == [(row["text"], row["label"]) for row in module.sentences()]


# -- splits and validation labels ------------------------------------------------------------
def _rows(counts: dict) -> list[Record]:
    return [Record(input=f"{label} {i}", label=label, where=f"d.csv:{i}") for label, n in counts.items()
            for i in range(n)]


def test_stratified_split_is_stratified_deterministic_and_keeps_every_class():
    records = _rows({"a": 50, "b": 20, "c": 2, "d": 1})
    train, val = stratified_split(records, 0.2, seed=0)
    assert Counter(r.label for r in val) == {"a": 10, "b": 4, "c": 1}
    assert Counter(r.label for r in train) == {"a": 40, "b": 16, "c": 1, "d": 1}
    assert {id(r) for r in train}.isdisjoint({id(r) for r in val}) and len(train) + len(val) == len(records)
    again = stratified_split(records, 0.2, seed=0)
    assert [r.input for r in again[1]] == [r.input for r in val]
    other = stratified_split(records, 0.2, seed=1)
    assert [r.input for r in other[1]] != [r.input for r in val]
    assert stratified_split(records, 0.0) == (records, [])
    with pytest.raises(HubError, match="val_fraction"):
        stratified_split(records, 1.5)


def test_split_of_unlabelled_rows_is_random_share():
    records = [Record(input=f"{i}.png", text=f"caption {i}") for i in range(10)]
    train, val = stratified_split(records, 0.3, seed=3)
    assert len(val) == 3 and len(train) == 7


def test_check_val_labels_reports_unknown_labels():
    val = _rows({"a": 2, "z": 1})
    kept, problems = check_val_labels(val, ["a", "b"], "skip")
    assert [r.label for r in kept] == ["a", "a"]
    assert problems == ["d.csv:0: label 'z' is not among the training labels (a, b)"]
    with pytest.raises(HubError, match="d.csv:0: label 'z'"):
        check_val_labels(val, ["a", "b"], "error")
    tokens = [Record(input=["x", "y"], label=["O", "B-NEW"], where="t.jsonl:4")]
    assert check_val_labels(tokens, ["O"], "skip")[1][0].startswith("t.jsonl:4: label 'B-NEW'")
