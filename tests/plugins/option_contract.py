"""The call-option contract as each shipped plugin's tests check it, so that every plugin is held to one behaviour.

``check_top_k`` asserts what ``top_k`` means for any pipeline that ranks labels (text, image, audio and
zero-shot classification, image-text similarity); ``check_bad_options`` and ``check_cli_refuses`` assert
that bad options fail cleanly through the Python API and ``hub run -o``.
"""
from __future__ import annotations

import pytest

from hub.errors import OptionError

BAD_TOP_K = [0, -1, True, False, 2.5, "abc", "0", "", [2], {"k": 2}]


def ranked(result):
    """(label, index, score) rows of a classification or of a similarity result's one image."""
    rows = result.top_k[0] if hasattr(result, "top_k") else result.labels
    return [(row.label, row.index, round(row.score, 6)) for row in rows]


def check_top_k(pipe, inputs: list, n_labels: int, **required) -> None:
    """top_k: the 5 best by default, the k best first for k >= 1 (also given as a string), all of them when k
    exceeds the labels; anything else is an OptionError naming top_k, raised before any input is read."""
    everything = [ranked(r) for r in pipe(inputs, top_k=n_labels, **required)]
    assert all(len(rows) == n_labels for rows in everything)
    assert [ranked(r) for r in pipe(inputs, **required)] == [rows[:5] for rows in everything]
    for k in (1, 2, "2", " 3 ", n_labels + 1, n_labels + 100):
        want = [rows[:int(k)] for rows in everything]
        assert [ranked(r) for r in pipe(inputs, top_k=k, **required)] == want, k
    single = ranked(pipe(inputs[0], top_k=1, **required))  # alone, not in a padded batch: scores may differ a little
    assert [row[:2] for row in single] == [row[:2] for row in everything[0][:1]]
    assert single[0][2] == pytest.approx(everything[0][0][2], abs=1e-4)
    check_bad_options(pipe, inputs, [({"top_k": value}, ["'top_k'", "integer >= 1"]) for value in BAD_TOP_K],
                      **required)
    check_bad_options(pipe, inputs, [({"top_kk": 2}, ["'top_kk'", "Did you mean: top_k?"])], **required)


def check_bad_options(pipe, inputs: list, cases, **required) -> None:
    """Each (options, words) case raises an OptionError containing every word, for lists and single inputs."""
    for options, words in cases:
        for given in (inputs, inputs[0]):
            with pytest.raises(OptionError) as err:
                pipe(given, **{**required, **options})
            assert all(w in str(err.value) for w in words), (options, str(err.value))


def check_cli_refuses(model: str, task: str, given: str, args: list[str], words: list[str]) -> None:
    """'hub run MODEL GIVEN --task TASK ARGS' exits 2 with one line naming the problem, and no traceback."""
    from hub.testing import assert_clean_error, invoke_hub

    assert_clean_error(invoke_hub(["run", model, given, "--task", task, "--dtype", "fp32", *args]), *words)
