"""Fine-tuning extractive question answering (``AutoModelForQuestionAnswering``) through the hub's one loop.

Question answering is a kind of training the hub does not have, so this module brings it as a
:class:`hub.train.adapter.TrainKind`: how its data is read and how a model is measured.

Data: SQuAD-style JSONL (or JSON / CSV) rows ``{"question": ..., "context": ..., "answers": {"text": [...],
"answer_start": [...]}}`` (the ``answers`` may also be a list of ``{"text", "answer_start"}``), or a folder
holding ``data.jsonl`` or ``metadata.jsonl``. Each answer must stand in the context at its ``answer_start``.
Empty ``answers`` mark an unanswerable question (SQuAD v2). Bad rows follow the data readers' rule
(``--on-bad-rows``), named ``file:line: problem``.

Examples are the pipeline's own windows (:func:`mmhub_transformers.qa.encode_windows`, the same ``max_length``
and ``doc_stride``), each labelled with the first answer's start and end tokens, or the CLS token when the
window does not hold the whole answer (SQuAD's recipe). The loss is the model's own (the mean of the start and
end cross-entropies). Evaluation answers as the pipeline does (every window, spans ranked by start + end logit,
the model's ``null_threshold``), so ``hub eval`` measures what ``hub run`` answers; its metrics are SQuAD's
exact match and F1 (:mod:`hub.train.qa_metrics`), on a 0-1 scale.
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import HubError, InputError
from mmhub_transformers.loading import load_auto, load_tokenizer
from mmhub_transformers.qa import (DEFAULT_WINDOW, MAX_ANSWER_LEN, answers_from, collate_windows, encode_windows,
                                   rank_spans)

TASK = "question-answering"
TABLES = ("data.jsonl", "metadata.jsonl")


# -- the data --------------------------------------------------------------------------------------------------
def read(path: Path, purpose: str):
    """(records, problems) of SQuAD-style rows; a record's input is (question, context), its target the answers."""
    from hub.train.adapter import Record
    from hub.train.data import table_rows

    if path.is_dir():
        found = [path / name for name in TABLES if (path / name).is_file()]
        if not found:
            raise HubError(f"{purpose} data '{path}' is a folder without {' or '.join(TABLES)}; question answering "
                           "reads JSONL rows of {\"question\", \"context\", \"answers\": {\"text\", \"answer_start\"}}")
        path = found[0]
    rows, problems = table_rows(path)
    records = []
    for where, row in rows:
        try:
            question, context, answers = checked_row(row)
        except InputError as exc:
            problems.append(f"{where}: {exc}")
        else:
            records.append(Record(input=(question, context), target=answers, where=where))
    return records, problems


def checked_row(row: dict) -> tuple[str, str, list[tuple[str, int]]]:
    """(question, context, [(answer, start), ...]) of one row; InputError naming what is wrong."""
    fields = {}
    for name in ("question", "context"):
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            got = "missing" if value is None else f"{type(value).__name__} {value!r:.40}"
            raise InputError(f"'{name}' must be a non-empty text, got {got}")
        fields[name] = value
    answers = answer_list(row.get("answers"))
    context = fields["context"]
    for text, start in answers:
        if context[start:start + len(text)] != text:
            raise InputError(f"the answer {text!r:.40} is not at answer_start {start} of the context (found "
                             f"{context[start:start + len(text)]!r:.40}); fix answer_start")
    return fields["question"], context, answers


def answer_list(answers) -> list[tuple[str, int]]:
    """The answers of a row as (text, start) pairs: {"text": [...], "answer_start": [...]} or a list of dicts."""
    if isinstance(answers, dict):
        texts, starts = answers.get("text"), answers.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise InputError("'answers' must hold lists 'text' and 'answer_start' of the same length, e.g. "
                             "{\"text\": [\"Paris\"], \"answer_start\": [12]} ({\"text\": [], ...} if unanswerable)")
        pairs = list(zip(texts, starts))
    elif isinstance(answers, list) and all(isinstance(a, dict) for a in answers):
        pairs = [(a.get("text"), a.get("answer_start")) for a in answers]
    else:
        raise InputError("'answers' is missing or not {\"text\": [...], \"answer_start\": [...]}")
    for text, start in pairs:
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"an answer text must be a non-empty text, got {text!r:.40}")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise InputError(f"answer_start must be a whole number >= 0, got {start!r:.40}")
    return pairs


# -- examples ---------------------------------------------------------------------------------------------------
def label_window(window: dict, answer: tuple[str, int] | None) -> tuple[int, int]:
    """(start token, end token) of ``answer`` in ``window``; the CLS token when the window lacks it (or no answer)."""
    cls = window["cls"]
    tokens = [i for i, inside in enumerate(window["context"]) if inside]
    if answer is None or not tokens:
        return cls, cls
    offsets, (text, begin) = window["offsets"], answer
    end = begin + len(text)
    first, last = tokens[0], tokens[-1]
    if not (offsets[first][0] <= begin and offsets[last][1] >= end):
        return cls, cls
    start_token = first
    while start_token <= last and offsets[start_token][0] <= begin:
        start_token += 1
    end_token = last
    while end_token >= first and offsets[end_token][1] >= end:
        end_token -= 1
    return start_token - 1, end_token + 1


def example_loader(tokenizer, window: int, stride: int | None):
    """``load_example(record, train)``: the record's windows, each labelled (:func:`label_window`), and its context."""

    def load_example(record, train: bool) -> dict:
        question, context = record.input
        try:
            windows = encode_windows(tokenizer, question, context, window, stride)
        except InputError as exc:
            raise InputError(f"{record.where}: {exc}") from None
        answer = record.target[0] if record.target else None
        for w in windows:
            w["start_position"], w["end_position"] = label_window(w, answer)
        return {"windows": windows, "context": context}

    return load_example


def collate(examples: list[dict], tokenizer) -> dict:
    """Every window of the examples, padded; labels shifted with left padding; which example owns each window."""
    import torch

    windows = [w for ex in examples for w in ex["windows"]]
    batch = collate_windows(windows, tokenizer)
    longest = batch["inputs"]["input_ids"].shape[1]
    shift = [longest - len(w["input_ids"]) if tokenizer.padding_side == "left" else 0 for w in windows]
    for key in ("start_position", "end_position"):
        batch[key + "s"] = torch.tensor([w[key] + s for w, s in zip(windows, shift)], dtype=torch.long)
    batch["owner"] = [i for i, ex in enumerate(examples) for _ in ex["windows"]]
    batch["contexts"] = [ex["context"] for ex in examples]
    return batch


def loss(module, batch: dict):
    """The model's own loss: the mean of its start and end cross-entropies."""
    return module(**batch["inputs"], start_positions=batch["start_positions"],
                  end_positions=batch["end_positions"]).loss


def predictor(max_answer_len: int, null_threshold: float | None):
    """``predict(module, batch)``: each example's answer text ('' for no answer), chosen as the pipeline does."""

    def predict(module, batch: dict) -> list[str]:
        out = module(**batch["inputs"])
        start, end = out.start_logits.float(), out.end_logits.float()
        texts = []
        for index, context in enumerate(batch["contexts"]):
            rows = [w for w, o in enumerate(batch["owner"]) if o == index]
            spans, null_logit = rank_spans(start[rows], end[rows], batch["context"][rows], batch["offsets"][rows],
                                           batch["cls"][rows], max_answer_len, null_threshold is not None)
            texts.append(answers_from(spans, null_logit, context, 1, null_threshold).answer)
        return texts

    return predict


# -- metrics ----------------------------------------------------------------------------------------------------
def qa_metrics(adapter, device: str):
    """A fresh accumulator of exact-match and F1 sums for one evaluation."""
    from hub.train.evaluation import SummedMetrics
    from hub.train.qa_metrics import score

    class QAMetrics(SummedMetrics):
        def __init__(self):
            super().__init__(adapter, device)
            self.totals = self.counter("totals", (3,))  # exact match, F1, questions

        def add(self, out, batch, records) -> None:
            for predicted, record in zip(out, records):
                exact, f1 = score(predicted, [text for text, _ in record.target])
                self.totals += self.totals.new_tensor([exact, f1, 1.0])

        def compute(self, sums: dict) -> dict:
            exact, f1, n = (float(v) for v in sums["totals"])
            return {"f1": f1 / n if n else 0.0, "exact_match": exact / n if n else 0.0, "count": int(n)}

    return QAMetrics()


def kind():
    """The question-answering TrainKind: SQuAD-style rows, exact match and F1 (F1 chooses checkpoints)."""
    from hub.train.adapter import TrainKind

    return TrainKind(name=TASK, read=read, metrics=qa_metrics, metric_names=("f1", "exact_match"),
                     default_metric="f1", default_lr=5e-5)


# -- the model --------------------------------------------------------------------------------------------------
def trainable(spec, directory: Path, trust: bool):
    """The TrainAdapter of a question-answering model directory (a body without a QA head gets a new one)."""
    from hub.train.adapter import TrainAdapter
    from mmhub_transformers.train_pairs import saver

    tokenizer = load_tokenizer(directory, trust)
    if not getattr(tokenizer, "is_fast", False):
        raise HubError(f"question answering needs a fast tokenizer (character offsets); '{spec.id}' has a slow one")
    model, new_head = load_model(directory, trust)
    preprocess = dict(spec.preprocess or {})
    window = int(preprocess.get("max_length") or min(DEFAULT_WINDOW, model_limit(tokenizer, model)))
    stride = preprocess.get("doc_stride")
    predict = predictor(int(preprocess.get("max_answer_len") or MAX_ANSWER_LEN.default),
                        preprocess.get("null_threshold"))

    return TrainAdapter(
        module=model, kind=kind(), load_example=example_loader(tokenizer, window, stride),
        collate=lambda examples: collate(examples, tokenizer), loss=loss, predict=predict, save=saver(tokenizer),
        spec_fields={"task": TASK, "plugin": "transformers", "preprocess": {**preprocess, "max_length": window},
                     "description": f"{spec.id} fine-tuned for {TASK}"},
        head_prefixes=("qa_outputs",), blocks=blocks, new_head=new_head,
        length=lambda ex: sum(len(w["input_ids"]) for w in ex["windows"]))


def model_limit(tokenizer, model) -> int:
    limits = [getattr(tokenizer, "model_max_length", None), getattr(model.config, "max_position_embeddings", None)]
    limits = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
    return min(limits) if limits else 512


def load_model(directory: Path, trust: bool):
    """(model, new_head): AutoModelForQuestionAnswering in fp32; ``new_head`` when ``qa_outputs`` was not saved."""
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # a new head is expected for a body without one; new_head says so
    try:
        model, info = load_auto("AutoModelForQuestionAnswering", directory, trust, output_loading_info=True)
    finally:
        logging.set_verbosity(verbosity)
    fresh = list(info.get("missing_keys") or []) + list(info.get("mismatched_keys") or [])
    return model.float().train(), bool(fresh)


def blocks(model) -> list:
    """The body's transformer layers in order: its longest ModuleList (BERT/RoBERTa ``encoder.layer``,
    DistilBERT ``transformer.layer``)."""
    import torch

    body = getattr(model, getattr(model, "base_model_prefix", ""), None) or model
    lists = [m for m in body.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0]
    return list(max(lists, key=len)) if lists else list(body.children())
