"""Typed, JSON-serialisable results of every task. Plain dataclasses, no torch."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields


class Result:
    """Base of all results: ``to_dict`` gives plain JSON types, ``from_dict`` reads them back."""

    nested: dict = {}  # field name -> Result class of its items (lists, nested lists or one dict)

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: dict):
        """The result whose ``to_dict()`` is ``data``; keys this class does not know are ignored."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__} is read from a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        kwargs = {k: _rebuilt(cls.nested.get(k), v) for k, v in data.items() if k in known}
        missing = sorted(f.name for f in fields(cls) if f.name not in kwargs and _required(f))  # type: ignore[arg-type]
        if missing:
            raise ValueError(f"{cls.__name__} needs the key(s) {', '.join(missing)}; got {', '.join(data) or 'none'}")
        return cls(**kwargs)

    def summary(self) -> str:
        """A one-line, human-readable view for the CLI table output."""
        return str(self.to_dict())


def _rebuilt(kind, value):
    """``value`` with every JSON object in it (at any list depth) read as a ``kind`` result."""
    if kind is None:
        return value
    if isinstance(value, list):
        return [_rebuilt(kind, v) for v in value]
    return kind.from_dict(value) if isinstance(value, dict) else value


def _required(f) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING


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
    nested = {"labels": LabelScore}

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
    nested = {"candidates": MaskCandidate}

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
    nested = {"entities": Entity}

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
    nested = {"chunks": TranscriptionChunk}

    def summary(self) -> str:
        return self.text


@dataclass
class Similarity(Result):
    """Image-text similarity: embeddings, the image x text matrix, and top-k texts per image."""

    image_embeddings: list[list[float]]
    text_embeddings: list[list[float]]
    matrix: list[list[float]]
    top_k: list[list[LabelScore]]
    nested = {"top_k": LabelScore}

    def summary(self) -> str:
        return "; ".join(", ".join(f"{l.label} ({l.score:.3f})" for l in row) for row in self.top_k)


RESULT_TYPES = {
    cls.__name__: cls
    for cls in (Embedding, Classification, FillMask, TokenClassification, Generation, Transcription, Similarity)
}


def result_from_dict(result: str, data: dict):
    """The result of class name ``result`` (a task's ``TaskInfo.result``) read from its ``to_dict()`` JSON."""
    if result not in RESULT_TYPES:
        raise ValueError(f"unknown result type '{result}'; known: {', '.join(sorted(RESULT_TYPES))}")
    return RESULT_TYPES[result].from_dict(data)
