"""Seq2seq training data: source/target pairs from JSONL, CSV and TSV, bad rows named by file and line."""
from __future__ import annotations

import json

import pytest

from hub.errors import HubError
from hub.train.data import read_kind_records
from hub.train.pairs import read_pairs, seq2seq_kind

GOOD = {"source": "twenty-one", "target": "vingt et un"}


def write_jsonl(path, rows) -> str:
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("names", [("source", "target"), ("src", "tgt"), ("input", "output"), ("text", "summary"),
                                   ("document", "summary")])
@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".tsv"])
def test_pairs_are_read_from_each_format_and_column_naming(tmp_path, names, suffix):
    pairs = [("twenty-one", "vingt et un"), ("seventy, one", "soixante et onze"), ("zero", "zéro")]
    file = tmp_path / f"data{suffix}"
    if suffix == ".jsonl":
        write_jsonl(file, [dict(zip(names, p)) for p in pairs])
    else:
        import csv

        with file.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="\t" if suffix == ".tsv" else ",")
            writer.writerows([names, *pairs])
    records, problems = read_pairs(file)
    assert not problems
    assert [(r.input, r.text) for r in records] == pairs
    assert records[0].where == f"data{suffix}:{1 if suffix == '.jsonl' else 2}"


BAD_ROWS = [
    ({"source": "one", "target": ""}, "empty target ('target')"),
    ({"source": "one", "target": "   "}, "empty target ('target')"),
    ({"source": "", "target": "un"}, "empty source ('source')"),
    ({"source": "one"}, "no target ('target')"),
    ({"target": "un"}, "no source ('source')"),
    ({"source": "one", "target": None}, "empty target ('target')"),
    ({"source": ["one"], "target": "un"}, "the source ('source') is a list, not a text"),
    ({"source": "one", "target": {"fr": "un"}}, "the target ('target') is a dict, not a text"),
    ({"source": True, "target": "un"}, "the source ('source') is a bool, not a text"),
    ('{"source": "one", "target": ', "unparsable JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
]


@pytest.mark.parametrize("row,problem", BAD_ROWS, ids=[p for _, p in BAD_ROWS])
def test_a_bad_row_is_skipped_and_named_or_stops_a_strict_run(tmp_path, row, problem):
    file = write_jsonl(tmp_path / "data.jsonl", [GOOD, row, GOOD])
    records, problems = read_kind_records(seq2seq_kind(), file, "skip")
    assert len(records) == 2 and len(problems) == 1
    assert problems[0].startswith(f"data.jsonl:2: {problem}")
    with pytest.raises(HubError) as caught:
        read_kind_records(seq2seq_kind(), file, "error")
    message = str(caught.value)
    assert "\n" not in message and f"data.jsonl:2: {problem}" in message and "--on-bad-rows skip" in message


def test_numbers_are_texts_and_whitespace_is_trimmed(tmp_path):
    file = write_jsonl(tmp_path / "data.jsonl", [{"source": 21, "target": "  vingt et un \n"}])
    records, _ = read_pairs(file)
    assert (records[0].input, records[0].text) == ("21", "vingt et un")


def test_a_csv_row_with_more_fields_than_the_header_is_a_bad_row(tmp_path):
    file = tmp_path / "data.csv"
    file.write_text("source,target\none,un\ntwo,deux,extra\n", encoding="utf-8")
    records, problems = read_pairs(file)
    assert len(records) == 1 and problems == ["data.csv:3: more fields than the header has columns"]


@pytest.mark.parametrize("rows,lacking", [
    ([{"source": "one", "label": "un"}], "no target column (target / tgt / output / summary)"),
    ([{"english": "one", "target": "un"}], "no source column (source / src / input / text / document)"),
    ([{"en": "one", "fr": "un"}], "no source column (source / src / input / text / document) and no target column"),
    ([{"translation": {"en": "one", "fr": "un"}}], "no source column"),
])
def test_a_file_without_a_source_or_target_column_is_refused_naming_its_columns(tmp_path, rows, lacking):
    file = write_jsonl(tmp_path / "data.jsonl", rows)
    with pytest.raises(HubError) as caught:
        read_pairs(file)
    message = str(caught.value)
    assert lacking in message and "its columns are: " + ", ".join(sorted(rows[0])) in message
    assert "'source' and 'target'" in message and "\n" not in message


def test_a_folder_is_read_through_its_data_file_or_refused(tmp_path):
    write_jsonl(tmp_path / "data.jsonl", [GOOD])
    records, _ = read_pairs(tmp_path)
    assert records[0].text == "vingt et un"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HubError, match=r"'.*empty' is a folder without data.jsonl.*\"source\""):
        read_pairs(empty, "validation")


@pytest.mark.parametrize("content,message", [("", "holds no usable rows"),
                                             ('{"source": "", "target": "un"}\n', "holds no usable rows")])
def test_no_usable_rows_stops_any_run(tmp_path, content, message):
    file = tmp_path / "data.jsonl"
    file.write_text(content, encoding="utf-8")
    with pytest.raises(HubError, match=message):
        read_kind_records(seq2seq_kind(), file, "skip")


def test_the_kind_reports_chrf_bleu_and_rouge_l_and_selects_by_chrf():
    from hub.train.evaluation import resolve_metric

    kind = seq2seq_kind()
    assert kind.name == "seq2seq" and kind.metric_names == ("chrf", "bleu", "rougeL")
    assert resolve_metric(kind, None) == resolve_metric(kind, "accuracy") == "chrf"
    assert resolve_metric(kind, "bleu") == "bleu"
    with pytest.raises(HubError, match="metric 'wer' is not computed for seq2seq training; choose one of: chrf, "
                                       "bleu, rougeL"):
        resolve_metric(kind, "wer")
