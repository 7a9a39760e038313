"""The task table: every task the hub knows, by modality. Cheap to import (no torch).

The result types live in :mod:`hub.tasks.results`; the pipeline base class that
plugins subclass lives in :mod:`hub.tasks.base` and imports torch only when used.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hub.errors import UnknownTaskError

MODALITIES = ("nlp", "vision", "speech", "crossmodal")


@dataclass(frozen=True)
class TaskInfo:
    """One row of the task table."""

    name: str
    modality: str
    inputs: str  # "text", "image", "audio" or "image+text"
    result: str  # name of the result class in hub.tasks.results
    description: str
    aliases: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "modality": self.modality,
            "inputs": self.inputs,
            "result": self.result,
            "description": self.description,
            "aliases": list(self.aliases),
        }


def _rows() -> list[TaskInfo]:
    T = TaskInfo
    return [
        T("text-embedding", "nlp", "text", "Embedding", "One vector per text (pooled, optionally normalised).",
          ("feature-extraction", "sentence-similarity", "sentence-embedding")),
        T("text-classification", "nlp", "text", "Classification", "Labels with scores for a whole text.",
          ("sentiment-analysis", "sequence-classification")),
        T("fill-mask", "nlp", "text", "FillMask", "Candidates for the mask token in a text.", ("masked-lm",)),
        T("token-classification", "nlp", "text", "TokenClassification", "A label per word or entity span.",
          ("ner", "named-entity-recognition")),
        T("text-generation", "nlp", "text", "Generation", "Continue a prompt (greedy or sampled).",
          ("causal-lm", "generate")),
        T("image-classification", "vision", "image", "Classification", "Top-k class labels for an image.", ()),
        T("image-embedding", "vision", "image", "Embedding", "A pooled feature vector per image.",
          ("image-feature-extraction",)),
        T("speech-recognition", "speech", "audio", "Transcription", "Text spoken in an audio clip.",
          ("automatic-speech-recognition", "asr", "transcription")),
        T("audio-classification", "speech", "audio", "Classification", "Labels with scores for an audio clip.", ()),
        T("zero-shot-image-classification", "crossmodal", "image", "Classification",
          "Score an image against free-text labels.", ("zero-shot",)),
        T("image-text-similarity", "crossmodal", "image+text", "Similarity",
          "Image and text embeddings, their similarity matrix and top-k retrieval.",
          ("image-text-retrieval", "clip-similarity")),
    ]


TASKS: dict[str, TaskInfo] = {t.name: t for t in _rows()}
ALIASES: dict[str, str] = {alias: t.name for t in TASKS.values() for alias in t.aliases}


def resolve_task(name: str) -> str:
    """Return the canonical task name for ``name`` or one of its aliases."""
    key = name.strip().lower().replace("_", "-")
    if key in TASKS:
        return key
    if key in ALIASES:
        return ALIASES[key]
    raise UnknownTaskError(name, sorted(TASKS))


def task_info(name: str) -> TaskInfo:
    return TASKS[resolve_task(name)]


def list_tasks(modality: str | None = None) -> list[TaskInfo]:
    return [t for t in TASKS.values() if modality is None or t.modality == modality]
