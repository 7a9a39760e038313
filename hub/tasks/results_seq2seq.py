"""The result of the seq2seq tasks (translation, summarization). A plain dataclass, no torch."""
from __future__ import annotations

from dataclasses import dataclass, field

from hub.tasks.results import Result


@dataclass
class GeneratedText(Result):
    """Text a sequence-to-sequence model wrote for one input.

    ``tokens`` are the generated token ids (without the decoder's start and end tokens), ``num_tokens``
    their count; ``src_lang``/``tgt_lang`` the language codes used where the model needs them; ``parts``
    how many pieces a long input was split into (by sentences) and generated separately.
    """

    text: str
    tokens: list[int] = field(default_factory=list)
    num_tokens: int = 0
    src_lang: str | None = None
    tgt_lang: str | None = None
    parts: int = 1

    def summary(self) -> str:
        return self.text
