"""Text metrics: the scores sacrebleu and rouge-score give for the same strings, and the evaluation accumulator."""
from __future__ import annotations

import subprocess
import sys

import pytest

from hub.train import text_metrics as TM
from hub.train.adapter import Record

HYPOTHESES = ["le chat est assis sur le tapis", "trois cent quarante-deux", "vingt et un", "",
              "the quick brown fox jumps over the lazy dog", "soixante-dix-sept"]
REFERENCES = ["le chat s'est assis sur le tapis", "trois cent quarante-deux", "vingt-et-un", "zéro",
              "a quick brown fox jumped over the dog", "soixante et onze"]


@pytest.mark.parametrize("cut", [1, 3, len(HYPOTHESES)])
def test_bleu_and_chrf_are_sacrebleus_corpus_scores(cut):
    import sacrebleu

    hyps, refs = HYPOTHESES[:cut], REFERENCES[:cut]
    assert TM.bleu(hyps, refs) == sacrebleu.corpus_bleu(hyps, [refs]).score
    assert TM.chrf(hyps, refs) == sacrebleu.corpus_chrf(hyps, [refs]).score


def test_rouge_l_is_the_mean_of_rouge_scores_f_measures():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = [scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(REFERENCES, HYPOTHESES)]
    assert TM.rouge_l(HYPOTHESES, REFERENCES) == pytest.approx(sum(expected) / len(expected), abs=1e-12)
    assert 0 < TM.rouge_l(HYPOTHESES, REFERENCES) < 1


def test_scores_separate_right_wrong_and_unrelated_outputs():
    right = TM.text_report(REFERENCES, REFERENCES)
    unrelated = TM.text_report(["xyz"] * len(REFERENCES), REFERENCES)
    assert right["chrf"] == pytest.approx(100) and right["bleu"] == pytest.approx(100)
    assert right["rougeL"] == pytest.approx(1)
    assert unrelated["chrf"] < 5 and unrelated["bleu"] == 0 and unrelated["rougeL"] == 0
    assert right["count"] == unrelated["count"] == len(REFERENCES)


@pytest.mark.parametrize("metric", [TM.bleu, TM.chrf, TM.rouge_l, TM.text_report])
def test_unequal_lists_are_refused(metric):
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        metric(["a", "b"], ["a"])


def test_an_evaluation_without_rows_scores_zero():
    assert TM.text_report([], []) == {"chrf": 0.0, "bleu": 0.0, "rougeL": 0.0, "count": 0}
    assert TM.GeneratedTextMetrics().result() == TM.text_report([], [])


def test_the_accumulator_scores_predictions_against_the_records_texts():
    metrics = TM.GeneratedTextMetrics()
    records = [Record(input=f"source {i}", text=ref) for i, ref in enumerate(REFERENCES)]
    metrics.add(HYPOTHESES[:4], {}, records[:4])
    metrics.add(HYPOTHESES[4:], {}, records[4:])
    assert metrics.result() == TM.text_report(HYPOTHESES, REFERENCES)
    with pytest.raises(ValueError, match="2 texts for a batch of 1 rows"):
        metrics.add(["a", "b"], {}, records[:1])


@pytest.mark.slow
def test_importing_the_metrics_loads_neither_sacrebleu_nor_rouge_score():
    code = ("import sys, hub.train.text_metrics, hub.train.pairs; "
            "print(sorted(m for m in ('sacrebleu', 'rouge_score', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
