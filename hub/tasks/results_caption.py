"""The result of image captioning: the caption, its token ids and, where the model gives one, its score.

A plain dataclass, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hub.tasks.results import Result


@dataclass
class Caption(Result):
    """The caption a model wrote for one image.

    ``tokens`` are the generated token ids without the start and end tokens (and the padding after the end),
    ``num_tokens`` their count; ``prompt`` the text the caption was asked to continue (conditional
    captioning), when one was given; ``score`` the sequence score where the decoding gives one (beam search).
    """

    text: str
    tokens: list[int] = field(default_factory=list)
    num_tokens: int = 0
    prompt: str | None = None
    score: float | None = None

    def summary(self) -> str:
        return self.text
