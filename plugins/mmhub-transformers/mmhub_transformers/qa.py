"""Extractive question answering through ``AutoModelForQuestionAnswering`` (BERT, DistilBERT, RoBERTa SQuAD heads).

Inputs: with the ``question`` option, each input is a context and the question is asked of every one
(``hub run MODEL -o question="Who ..." context.txt``); without it, each input is a pair
``{"question": ..., "context": ...}``: a dict in Python, or its JSON text (a JSONL stdin line, a server input).

Windows: a context longer than one window (``max_length`` tokens, question and special tokens included) is
split into windows that share ``doc_stride`` tokens of context, as SQuAD models were trained (lowered to half the
room a long question leaves for the context, which the tokenizer requires to be larger). A span is valid
when both its ends lie in the context part of one window, the end is not before the start, and it has at most
``max_answer_len`` tokens. Spans are ranked by start logit + end logit over every window (the BERT/SQuAD
rule), a span seen in two overlapping windows counting once with its best logit. ``score`` is the span's
probability among every valid span (a softmax of those logits); offsets are characters of the original context.

No answer (SQuAD v2 models): with ``null_threshold`` set, the no-answer logit is start + end logit of the
CLS token, the least over the windows; the result says ``no_answer`` when it beats the best span's logit by
more than the threshold (the usual threshold is 0), and it joins the softmax, so ``null_score`` and the span
scores add up to 1.
"""
from __future__ import annotations

import json
from typing import NamedTuple

from hub.errors import HubError, InputError, OptionError
from hub.options import TOP_K, Option
from mmhub_transformers.classify import HeadPipeline

DEFAULT_WINDOW = 384
DEFAULT_STRIDE = 128
QUESTION = Option("question", str, None, "the question asked of every input, each input being a context; without "
                  "it each input is a pair {\"question\": ..., \"context\": ...} (a dict, or its JSON text)")
ANSWER_TOP_K = TOP_K.but(default=1, help="how many answer spans to return, best first")
MAX_ANSWER_LEN = Option("max_answer_len", int, 15, "the longest answer span, in tokens", minimum=1,
                        model_bound=True)
MAX_LENGTH = Option("max_length", int, None, "tokens per window, question and special tokens included (default "
                    f"{DEFAULT_WINDOW}, or the model's limit when smaller)", minimum=8, model_bound=True)
DOC_STRIDE = Option("doc_stride", int, None, "tokens of context that consecutive windows of a long context share "
                    f"(default {DEFAULT_STRIDE}, or a third of the window when smaller)", minimum=0, model_bound=True)
NULL_THRESHOLD = Option("null_threshold", float, None, "SQuAD v2 models: answer nothing when the no-answer logit "
                        "beats the best span's by more than this (0 is usual); unset, a span is always answered")
FIX = ("give each input as {\"question\": ..., \"context\": ...}, or the contexts as inputs with "
       "-o question=... (Python: question=...)")


class QAInput(NamedTuple):
    """One prepared input: its question (None when it comes from the ``question`` option) and its context."""

    question: str | None
    context: str


# -- inputs -----------------------------------------------------------------------------------------------------
def qa_input(item) -> QAInput:
    """A dict pair, its JSON text, or a context (whose question comes from the option); checked."""
    if isinstance(item, str) and item.lstrip().startswith("{") and item.rstrip().endswith("}"):
        try:
            item = json.loads(item)
        except ValueError as exc:
            if "Extra data" in str(exc):  # several objects: a JSONL file given as one input
                raise InputError(f"input {_shown(item)} holds more than one JSON object; give one pair per input: "
                                 "pipe a JSONL file of pairs on stdin (hub run MODEL - < pairs.jsonl)") from None
            raise InputError(f"input {_shown(item)} looks like a JSON object but is not valid JSON ({exc}); {FIX}") \
                from None
    if isinstance(item, dict):
        if "context" not in item:
            keys = ", ".join(map(str, item)) or "none"
            raise InputError(f"question-answering input has no 'context' (its keys: {keys}); {FIX}")
        question = item.get("question")
        return QAInput(None if question is None else _text(question, "question"), _text(item["context"], "context"))
    if isinstance(item, str):
        return QAInput(None, _text(item, "context"))
    raise InputError(f"question-answering takes a context (str) or a {{\"question\", \"context\"}} dict, got "
                     f"{type(item).__name__}; {FIX}")


def _text(value, field: str) -> str:
    """``value`` if it is non-blank valid text; an InputError naming ``field`` (question or context) otherwise."""
    from hub.inputs import check_text

    if not isinstance(value, str):
        raise InputError(f"the {field} must be text (a str), got {type(value).__name__} {_shown(value)}; {FIX}")
    check_text(value, f"the {field}")
    if not value.strip():
        raise InputError(f"the {field} is empty; give a {field} with some text ({FIX})")
    return value


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def pair(item: QAInput, question: str | None) -> tuple[str, str]:
    """(question, context) of one input, its question from the input or from the option (not both)."""
    if item.question is not None and question is not None:
        raise InputError(f"the question is given twice, in the input ({_shown(item.question)}) and with the "
                         "question option; give it once")
    asked = item.question if item.question is not None else question
    if asked is None:
        raise InputError(f"no question for the context {_shown(item.context)}; {FIX}")
    if len(asked.strip()) > len(item.context.strip()):
        raise InputError(f"the question ({len(asked.strip())} characters) is longer than its context "
                         f"({len(item.context.strip())}): the context is the passage that holds the answer. "
                         "Check that the two are not swapped")
    return asked, item.context


# -- windows ----------------------------------------------------------------------------------------------------
def window_room(tokenizer, question: str, limit: int) -> int:
    """Tokens left for the context in a window of ``limit`` tokens; InputError when none are."""
    asked = len(tokenizer(question, add_special_tokens=False)["input_ids"])
    room = limit - asked - tokenizer.num_special_tokens_to_add(pair=True)
    if room < 1:
        raise InputError(f"the question {_shown(question)} is {asked} tokens long, so no context fits in a window "
                         f"of {limit} tokens; shorten the question or raise max_length")
    return room


def stride_for(given: int | None, limit: int, room: int) -> int:
    """The overlap between windows: the option's, else DEFAULT_STRIDE or a third of the window; below ``room``."""
    stride = min(DEFAULT_STRIDE, limit // 3) if given is None else given
    return min(stride, room // 2)


def encode_windows(tokenizer, question: str, context: str, limit: int, stride: int | None = None,
                   warn=None) -> list[dict]:
    """The windows of one (question, context): token ids, character offsets, which tokens are context, CLS.

    Each window is a dict of ``input_ids``, ``attention_mask`` (and ``token_type_ids`` where the tokenizer
    gives them), ``offsets`` (character start, end per token), ``context`` (bool per token) and ``cls``.
    ``warn(message)`` is told when a ``stride`` given is lowered to fit the room the question leaves.
    """
    room = window_room(tokenizer, question, limit)
    if warn is not None and stride is not None and stride_for(stride, limit, room) < stride:
        warn(f"doc_stride {stride} was lowered for questions that leave less than {2 * stride} tokens of the "
             f"{limit}-token window for the context (the stride must stay below that room); raise max_length or "
             "lower doc_stride to choose it yourself")
    first = tokenizer.padding_side == "right"  # question first, as BERT-style models read it
    pair_args = (question, context) if first else (context, question)
    encoded = tokenizer(*pair_args, truncation="only_second" if first else "only_first", max_length=limit,
                        stride=stride_for(stride, limit, room), return_overflowing_tokens=True,
                        return_offsets_mapping=True)
    side = 1 if first else 0
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in encoded]
    windows = []
    for i, ids in enumerate(encoded["input_ids"]):
        in_context = [s == side for s in encoded.sequence_ids(i)]
        cls = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
        window = {n: list(encoded[n][i]) for n in names}
        window.update(offsets=[tuple(o) for o in encoded["offset_mapping"][i]], context=in_context, cls=cls)
        windows.append(window)
    return windows


def collate_windows(windows: list[dict], tokenizer) -> dict:
    """Windows padded into tensors on the tokenizer's padding side: model ``inputs``, ``offsets``,
    ``context`` mask and ``cls`` positions."""
    import torch

    longest = max(len(w["input_ids"]) for w in windows)
    left = tokenizer.padding_side == "left"
    pads = {"input_ids": tokenizer.pad_token_id or 0, "attention_mask": 0,
            "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0), "offsets": (0, 0), "context": False}

    def padded(key):
        rows = []
        for w in windows:
            fill = [pads[key]] * (longest - len(w[key]))
            rows.append(fill + list(w[key]) if left else list(w[key]) + fill)
        return rows

    inputs = {k: torch.tensor(padded(k), dtype=torch.long) for k in ("input_ids", "attention_mask", "token_type_ids")
              if k in windows[0]}
    shift = [longest - len(w["input_ids"]) if left else 0 for w in windows]
    return {"inputs": inputs, "offsets": torch.tensor(padded("offsets"), dtype=torch.long),
            "context": torch.tensor(padded("context"), dtype=torch.bool),
            "cls": torch.tensor([w["cls"] + s for w, s in zip(windows, shift)], dtype=torch.long)}


# -- spans ------------------------------------------------------------------------------------------------------
def valid_spans(start, end, context, max_answer_len: int):
    """(window, start token, end token, start + end logit) of every valid span of the windows given."""
    import torch

    positions = torch.arange(start.shape[-1], device=start.device)
    length = positions[None, :] - positions[:, None]  # end - start
    allowed = (length >= 0) & (length < max_answer_len)
    valid = allowed[None] & context[:, :, None] & context[:, None, :]
    w, s, e = valid.nonzero(as_tuple=True)
    return w, s, e, start[w, s] + end[w, e]


def rank_spans(start, end, context, offsets, cls, max_answer_len: int, null: bool):
    """(spans, null logit) of one input's windows: spans as (character start, end, logit) best first, one per
    distinct character span (its best logit); the null logit (least CLS start + end) when ``null``."""
    import torch

    w, s, e, logits = valid_spans(start, end, context, max_answer_len)
    chars_start, chars_end = offsets[w, s, 0], offsets[w, e, 1]
    key = torch.stack([chars_start, chars_end], dim=1)
    unique, inverse = torch.unique(key, dim=0, return_inverse=True)
    best = torch.full((unique.shape[0],), float("-inf"), device=logits.device, dtype=logits.dtype)
    best = best.scatter_reduce(0, inverse, logits, reduce="amax")
    order = best.argsort(descending=True, stable=True)
    spans = [(int(a), int(b), float(v)) for (a, b), v in zip(unique[order].tolist(), best[order].tolist())]
    rows = torch.arange(start.shape[0], device=start.device)
    null_logit = float((start[rows, cls] + end[rows, cls]).min()) if null else None
    return spans, null_logit


def answers_from(spans, null_logit, context: str, top_k: int, null_threshold: float | None, warning=None):
    """The Answers result: the ``top_k`` best spans with their probabilities, and the no-answer verdict."""
    import math

    from hub.tasks.results_qa import Answer, Answers

    logits = [v for _, _, v in spans] + ([null_logit] if null_logit is not None else [])
    top = max(logits) if logits else 0.0
    total = sum(math.exp(v - top) for v in logits)
    answers = [Answer(context[a:b], a, b, math.exp(v - top) / total) for a, b, v in spans[:top_k]]
    if null_logit is None:
        return Answers(answers, False, None, warning)
    beaten = not spans or null_logit - spans[0][2] > (null_threshold or 0.0)
    return Answers(answers, beaten, math.exp(null_logit - top) / total, warning)


# -- the pipeline -----------------------------------------------------------------------------------------------
class QuestionAnsweringPipeline(HeadPipeline):
    """The best answer spans to a question in a context of any length (see the module's docstring)."""

    task = "question-answering"
    auto_class = "AutoModelForQuestionAnswering"
    call_options = (QUESTION, ANSWER_TOP_K, MAX_ANSWER_LEN, MAX_LENGTH, DOC_STRIDE, NULL_THRESHOLD)

    def __init__(self, spec, model, device_manager, **kwargs):
        super().__init__(spec, model, device_manager, **kwargs)
        if not getattr(self.tokenizer, "is_fast", False):
            raise HubError(f"{spec.id}: question-answering needs a fast tokenizer (tokenizer.json) for character "
                           "offsets; save the model with a PreTrainedTokenizerFast")

    def limits(self) -> dict:
        limit = self.model_limit()
        why = f"the longest input the model takes is {limit} tokens"
        return {"max_length": (limit, why), "max_answer_len": (limit, why), "doc_stride": (limit, why)}

    def check_options(self, options: dict) -> dict:
        window = options.get("max_length") or min(DEFAULT_WINDOW, self.model_limit())
        stride = options.get("doc_stride")
        if stride is not None and stride >= window:
            raise DOC_STRIDE.error(stride, self.options_owner(), f"must be below the window of {window} tokens "
                                                                  "(max_length)")
        question = options.get("question")
        if question is not None:
            try:
                _text(question, "question")
            except InputError as exc:
                raise OptionError(f"option 'question' of {self.options_owner()}: {exc}") from None
        return {**options, "max_length": window}

    def model_limit(self) -> int:
        return self.max_length()

    def prepare(self, item) -> QAInput:
        return qa_input(item)

    def length(self, item: QAInput) -> int:
        return len(item.context) + len(item.question or "")

    def run_batches(self, prepared: list, batch_size, progress: bool, **kwargs):
        """Every input paired with its question first, so that a missing question fails before any batch runs."""
        for item in prepared:
            pair(item, kwargs.get("question"))
        return super().run_batches(prepared, batch_size, progress, **kwargs)

    def preprocess(self, items, question=None, max_length=None, doc_stride=None, **kwargs):
        windows, owner = [], []
        for index, item in enumerate(items):
            asked, context = pair(item, question)
            found = encode_windows(self.tokenizer, asked, context, max_length, doc_stride, self.warn)
            windows += found
            owner += [index] * len(found)
        batch = collate_windows(windows, self.tokenizer)
        batch["owner"] = owner
        return batch

    def forward(self, batch, **kwargs):
        out = self.model(**batch["inputs"])
        return {**batch, "start": out.start_logits.float(), "end": out.end_logits.float()}

    def postprocess(self, outputs, items, top_k=1, max_answer_len=15, null_threshold=None, **kwargs):
        results = []
        for index, item in enumerate(items):
            rows = [w for w, o in enumerate(outputs["owner"]) if o == index]
            picked = {k: outputs[k][rows] for k in ("start", "end", "context", "offsets", "cls")}
            spans, null_logit = rank_spans(picked["start"], picked["end"], picked["context"], picked["offsets"],
                                           picked["cls"], max_answer_len, null_threshold is not None)
            results.append(answers_from(spans, null_logit, item.context, top_k, null_threshold, self.head_warning))
        return results
