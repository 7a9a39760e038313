"""CLI views: the streamed table and JSON array of 'hub run', bounded for any number of inputs."""
import json
import math

import pytest

from hub.tasks.results import Embedding, Generation
from hub.views import SIMILAR_PAIRS_MAX, SIMILARITY_MATRIX_MAX, JsonArrayView, TableView


def embeddings(n: int, dim: int = 8) -> list[Embedding]:
    return [Embedding([math.sin(i * 0.37 + k) for k in range(dim)]) for i in range(n)]


def feed(view, names, results, chunk=3):
    for i in range(0, len(results), chunk):
        view.add(names[i:i + chunk], results[i:i + chunk])
    view.close()


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("chunk", [1, 2, 256])
def test_json_array_is_what_json_dumps_writes_however_it_is_chunked(capsys, n, chunk):
    results = embeddings(n) + [Generation("héllo\nworld", prompt="p")]
    feed(JsonArrayView(), [str(i) for i in range(len(results))], results, chunk)
    out = capsys.readouterr().out
    assert out == json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False) + "\n"


def test_json_array_of_nothing_is_an_empty_array(capsys):
    JsonArrayView().close()
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("n", [2, SIMILARITY_MATRIX_MAX])
def test_a_handful_of_embeddings_get_the_matrix_and_pairs(capsys, n):
    feed(TableView(), [f"text {i}" for i in range(n)], embeddings(n))
    out = capsys.readouterr().out
    assert "cosine similarity" in out and "most similar pairs" in out
    assert len(out.split("cosine similarity")[1].split("most similar pairs")[0].strip().splitlines()) == n + 1


@pytest.mark.parametrize("n", [SIMILARITY_MATRIX_MAX + 1, SIMILAR_PAIRS_MAX])
def test_more_embeddings_get_a_bounded_pairs_list_and_no_matrix(capsys, n):
    feed(TableView(), [f"text {i}" for i in range(n)], embeddings(n))
    out = capsys.readouterr().out
    assert "cosine similarity" not in out
    pairs = out.split("most similar pairs")[1].strip().splitlines()
    assert len(pairs) == 10
    scores = [float(line.split()[0]) for line in pairs]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("n", [SIMILAR_PAIRS_MAX + 1, 10_000])
def test_many_embeddings_print_one_line_each_and_a_note(capsys, n):
    feed(TableView(), [f"sentence number {i}" for i in range(n)], embeddings(n, dim=384), chunk=256)
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == n
    assert "cosine similarity" not in captured.out and "most similar pairs" not in captured.out
    assert f"{n} were given" in captured.err and "--json" in captured.err


def test_results_that_are_not_embeddings_get_no_similarity(capsys):
    feed(TableView(), ["a", "b"], [Generation("x"), Generation("y")])
    out = capsys.readouterr().out
    assert out.splitlines() == ["a  x", "b  y"]


@pytest.mark.parametrize("name, shown", [
    ("tab\there", "tab\\there"), ("new\nline", "new\\nline"), ("esc\x1b[31mred", "esc\\x1b[31mred"),
    ("caf\udce9", "caf\\xe9"), ("lone\ud800", "lone\\ud800"), ("bell\x07", "bell\\x07"),
])
def test_names_are_printed_safely(capsys, name, shown):
    feed(TableView(), [name], [Generation("ok")])
    assert capsys.readouterr().out.splitlines() == [f"{shown}  ok"]


def test_the_first_batch_fixes_the_name_column(capsys):
    view = TableView()
    view.add(["ab", "abcd"], [Generation("1"), Generation("2")])
    view.add(["x" * 100], [Generation("3")])
    view.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ab    1" and lines[1] == "abcd  2"
    assert lines[2] == "xxx…  3"
