"""The result of extractive question answering. Plain dataclasses, no torch."""
from __future__ import annotations

from dataclasses import dataclass, field

from hub.tasks.results import Result


@dataclass
class Answer(Result):
    """One answer span: its text, its character offsets in the context (``context[start:end] == answer``)
    and its score (the span's probability among every valid span of every window of the context)."""

    answer: str
    start: int
    end: int
    score: float


@dataclass
class Answers(Result):
    """The best answer spans to one question about one context, best first.

    ``no_answer`` is True when the model judges that the context does not answer the question (SQuAD v2
    models, with the ``null_threshold`` option set); ``answers`` then still lists the best spans, and
    ``null_score`` is the no-answer score on the same scale as theirs. ``warning`` says when the model's
    question-answering head was not in its checkpoint.
    """

    answers: list[Answer] = field(default_factory=list)
    no_answer: bool = False
    null_score: float | None = None
    warning: str | None = None
    nested = {"answers": Answer}

    @property
    def answer(self) -> str:
        """The predicted answer: the best span's text, or '' when there is no answer."""
        return "" if self.no_answer or not self.answers else self.answers[0].answer

    def summary(self) -> str:
        spans = ", ".join(f"{a.answer!r} ({a.score:.3f}) [{a.start}:{a.end}]" for a in self.answers[:3])
        if self.no_answer:
            null = f" ({self.null_score:.3f})" if self.null_score is not None else ""
            return f"(no answer){null}" + (f"; best spans: {spans}" if spans else "")
        return spans or "(no answer)"
