"""Typed, JSON-serialisable results of every task. Plain dataclasses, no torch."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


class Result:
    """Base of all results: ``to_dict`` gives plain JSON types."""

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[arg-type]

    def summary(self) -> str:
        """A one-line, human-readable view for the CLI table output."""
        return str(self.to_dict())


@dataclass
class Embedding(Result):
    embedding: list[float]

    @property
    def dim(self) -> int:
        return len(self.embedding)

    def summary(self) -> str:
        head = ", ".join(f"{v:+.4f}" for v in self.embedding[:4])
        return f"[{head}, ...] dim={self.dim}"


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


@dataclass
class LabelScore(Result):
    label: str
    score: float
    index: int | None = None


@dataclass
class Classification(Result):
    labels: list[LabelScore]
    warning: str | None = None

    @property
    def top(self) -> LabelScore:
        return self.labels[0]

    def summary(self) -> str:
        return ", ".join(f"{l.label} ({l.score:.3f})" for l in self.labels[:5])


@dataclass
class MaskCandidate(Result):
    token: int
    token_str: str
    score: float
    sequence: str


@dataclass
class FillMask(Result):
    candidates: list[MaskCandidate]

    def summary(self) -> str:
        return ", ".join(f"{c.token_str!r} ({c.score:.3f})" for c in self.candidates[:5])


@dataclass
class Entity(Result):
    word: str
    label: str
    score: float
    start: int | None = None
    end: int | None = None


@dataclass
class TokenClassification(Result):
    entities: list[Entity]

    def summary(self) -> str:
        return ", ".join(f"{e.word}/{e.label}" for e in self.entities) or "(no entities)"


@dataclass
class Generation(Result):
    text: str
    prompt: str = ""
    tokens: list[int] = field(default_factory=list)

    def summary(self) -> str:
        return self.prompt + self.text


@dataclass
class TranscriptionChunk(Result):
    text: str
    start: float
    end: float


@dataclass
class Transcription(Result):
    text: str
    chunks: list[TranscriptionChunk] = field(default_factory=list)

    def summary(self) -> str:
        return self.text


@dataclass
class Similarity(Result):
    """Image-text similarity: embeddings, the image x text matrix, and top-k texts per image."""

    image_embeddings: list[list[float]]
    text_embeddings: list[list[float]]
    matrix: list[list[float]]
    top_k: list[list[LabelScore]]

    def summary(self) -> str:
        return "; ".join(", ".join(f"{l.label} ({l.score:.3f})" for l in row) for row in self.top_k)


RESULT_TYPES = {
    cls.__name__: cls
    for cls in (Embedding, Classification, FillMask, TokenClassification, Generation, Transcription, Similarity)
}
