"""Metrics of generated text against references: sacreBLEU, chrF and ROUGE-L.

The scores come from the ``sacrebleu`` and ``rouge-score`` packages themselves (imported when a
score is computed, never at module import), with their default settings, so a number here is the
number those packages give for the same strings:

- ``bleu``: corpus BLEU, ``sacrebleu.metrics.BLEU().corpus_score`` (0-100, 13a tokenisation);
- ``chrf``: corpus chrF, ``sacrebleu.metrics.CHRF().corpus_score`` (0-100, character 6-grams, beta 2);
- ``rougeL``: the mean over rows of rouge-score's ROUGE-L F-measure (0-1, as rouge-score gives it).
  rouge-score's default tokeniser keeps only ``a-z`` and ``0-9``, so ROUGE-L is meaningful for
  English targets (summaries) and undercounts accented or non-Latin text; use chrF for those.

Corpus scores are not means of per-row scores, so an evaluation under torch.distributed gathers
every rank's hypotheses and references (in rank order) and scores the whole set on every rank.
"""
from __future__ import annotations

from hub.train.distributed import DistContext, gather_lists

METRIC_NAMES = ("chrf", "bleu", "rougeL")
DEFAULT_METRIC = "chrf"


def _check(hypotheses: list[str], references: list[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")


def bleu(hypotheses: list[str], references: list[str]) -> float:
    """Corpus sacreBLEU (0-100) of ``hypotheses`` against one reference each."""
    from sacrebleu.metrics import BLEU

    _check(hypotheses, references)
    if not references:  # sacrebleu fails on no rows; nothing generated scores nothing
        return 0.0
    return float(BLEU().corpus_score(list(hypotheses), [list(references)]).score)


def chrf(hypotheses: list[str], references: list[str]) -> float:
    """Corpus chrF (0-100) of ``hypotheses`` against one reference each."""
    from sacrebleu.metrics import CHRF

    _check(hypotheses, references)
    if not references:
        return 0.0
    return float(CHRF().corpus_score(list(hypotheses), [list(references)]).score)


def rouge_l(hypotheses: list[str], references: list[str]) -> float:
    """Mean ROUGE-L F-measure (0-1) over rows, from rouge-score's ``RougeScorer(["rougeL"])``."""
    from rouge_score.rouge_scorer import RougeScorer

    _check(hypotheses, references)
    if not references:
        return 0.0
    scorer = RougeScorer(["rougeL"])
    return float(sum(scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(references, hypotheses)) / len(references))


def text_report(hypotheses: list[str], references: list[str]) -> dict:
    """All three scores and the row count for one evaluation."""
    return {"chrf": chrf(hypotheses, references), "bleu": bleu(hypotheses, references),
            "rougeL": rouge_l(hypotheses, references), "count": len(references)}


class GeneratedTextMetrics:
    """One evaluation's accumulator: generated texts and the records' reference texts, scored at the end.

    ``adapter.predict`` returns one generated string per row of the batch; the reference is the
    record's ``text``. :meth:`result` gathers both lists across ranks and scores the whole set.
    """

    def __init__(self, adapter=None, device: str = "cpu"):
        self.hypotheses: list[str] = []
        self.references: list[str] = []

    def add(self, out, batch: dict, records: list) -> None:
        texts = list(out)
        if len(texts) != len(records):
            raise ValueError(f"predict returned {len(texts)} texts for a batch of {len(records)} rows")
        self.hypotheses.extend(str(t) for t in texts)
        self.references.extend(r.text or "" for r in records)

    def result(self, ctx: DistContext | None = None) -> dict:
        ctx = ctx or DistContext()
        return text_report(gather_lists(self.hypotheses, ctx), gather_lists(self.references, ctx))
