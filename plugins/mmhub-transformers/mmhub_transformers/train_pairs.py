"""Fine-tuning pair classifiers through the hub's one loop: NLI models and cross-encoders.

Both tasks train a sequence-classification head on text pairs, as a :class:`hub.train.adapter.TrainKind`
of this plugin. Data is a CSV, TSV or JSONL file (or a folder holding ``data.jsonl``), one pair a row:

- ``zero-shot-classification`` (kind ``nli``): ``premise`` (or ``text`` / ``sentence1``), ``hypothesis``
  (or ``sentence2``) and ``label``, a class name such as entailment, neutral or contradiction. When every
  label of the data is one of the model's own, its head is kept; otherwise a new head is built for the
  data's labels (sorted). Loss: cross-entropy; metrics: accuracy and loss.
- ``text-ranking`` (kind ``ranking``): ``query``, ``passage`` (or ``document`` / ``text``) and ``label``
  (or ``relevance``), a number from 0 to 1: 0/1 for irrelevant/relevant, or a graded relevance scaled
  into [0, 1]. The head has one output (a new one when the checkpoint has none); loss: binary
  cross-entropy on the logit, as sentence-transformers trains cross-encoders. Metrics: ``mrr`` (mean
  reciprocal rank of the first relevant passage, per query with at least one relevant passage and one
  other; what checkpoints are chosen by), ``pair_accuracy`` (the sigmoid on the right side of 0.5) and loss.

The output is ``save_pretrained`` of the model and its tokenizer: ``hub run OUTDIR`` ranks or classifies.
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import HubError
from mmhub_transformers.loading import load_tokenizer, read_json, weights_dir
from mmhub_transformers.train_common import HEAD_ARCHITECTURES, blocks, collate_text, load_model, max_length

AUTO = "AutoModelForSequenceClassification"
COLUMNS = {
    "zero-shot-classification": (("premise", "text", "sentence1"), ("hypothesis", "sentence2"), ("label",)),
    "text-ranking": (("query",), ("passage", "document", "text"), ("label", "relevance")),
}
DATA_FILES = ("data.jsonl", "metadata.jsonl", "data.csv", "data.tsv")


# -- reading the data -------------------------------------------------------------------------------------------
def data_file(path: Path) -> Path:
    """The table to read: ``path`` itself, or the data file inside a folder."""
    if path.is_dir():
        for name in DATA_FILES:
            if (path / name).is_file():
                return path / name
        raise HubError(f"data folder '{path}' holds none of {', '.join(DATA_FILES)}; give a CSV, TSV or JSONL "
                       "file of text pairs with a label")
    return path


def reader(task: str):
    """The ``read(path, purpose)`` of ``task``'s kind: (records, problems) with ``file:line`` in each problem."""
    firsts, seconds, labels = COLUMNS[task]

    def read(path: Path, purpose: str):
        from hub.train.adapter import Record
        from hub.train.data import table_rows

        rows, problems = table_rows(data_file(Path(path)))
        records = []
        for where, row in rows:
            first, second, label = (_column(row, names) for names in (firsts, seconds, labels))
            problem = _pair_problem(first, second, firsts[0], seconds[0])
            target = None
            if problem is None:
                target, problem = _label(task, label, labels[0])
            if problem:
                problems.append(f"{where}: {problem}")
                continue
            records.append(Record(input=(first, second), label=str(label) if task != "text-ranking" else
                                  _grade_name(target), target=target, where=where))
        return records, problems

    return read


def _column(row: dict, names: tuple) -> object:
    return next((row[n] for n in names if row.get(n) not in (None, "")), None)


def _pair_problem(first, second, first_name: str, second_name: str) -> str | None:
    """What is wrong with a pair's two texts (missing, blank or not text), or None."""
    for value, name in ((first, first_name), (second, second_name)):
        if not isinstance(value, str) or not value.strip():
            return f"no text in '{name}'" if value is None or value == "" else f"'{name}' must be text, got {value!r}"
    return None


def _label(task: str, label, name: str) -> tuple[object, str | None]:
    """(target, problem): a class name for NLI, a relevance in [0, 1] for ranking."""
    if label is None:
        return None, f"no '{name}'"
    if task != "text-ranking":
        return (None, f"'{name}' must be a class name, got {label!r}") if isinstance(label, (list, dict)) \
            else (str(label), None)
    try:
        value = float(label) if not isinstance(label, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None or not 0.0 <= value <= 1.0:
        return None, (f"'{name}' must be a relevance from 0 to 1 (0/1, or a graded label scaled into [0, 1], "
                      f"e.g. 2 of 3 -> 0.667), got {label!r}")
    return value, None


def _grade_name(value: float) -> str:
    return f"{value:g}"


def nli_labels(saved: list[str] | None):
    """The classes NLI data declares: the model's own when they cover the data, else the data's, sorted."""

    def labels(path: Path, records: list) -> list[str]:
        found = {r.label for r in records}
        if saved and found <= set(saved):
            return list(saved)
        return sorted(found)

    return labels


# -- metrics ----------------------------------------------------------------------------------------------------
def nli_metrics(adapter, device: str):
    """A fresh accumulator of NLI accuracy and cross-entropy for one evaluation."""
    from hub.train.evaluation import SummedMetrics

    class NliMetrics(SummedMetrics):
        """Correct predictions, summed loss and rows."""

        def __init__(self):
            super().__init__(adapter, device)
            self.sums_ = self.counter("sums", (3,))

        def add(self, out, batch, records) -> None:
            import torch.nn.functional as F

            labels = batch["labels"]
            keep = labels != -100
            logits = out.float()[keep]
            correct = float((logits.argmax(dim=-1) == labels[keep]).sum())
            loss = float(F.cross_entropy(logits, labels[keep], reduction="sum")) if keep.any() else 0.0
            self.sums_ += self.sums_.new_tensor([correct, loss, float(keep.sum())])

        def compute(self, sums: dict) -> dict:
            correct, loss, n = (float(v) for v in sums["sums"])
            return {"accuracy": correct / n if n else 0.0, "loss": loss / n if n else 0.0, "count": int(n)}

    return NliMetrics()


def ranking_metrics(adapter, device: str):
    """A fresh accumulator of (query, logit, relevance) rows for one evaluation, reported by :func:`ranking_report`."""
    from hub.train.evaluation import SummedMetrics

    class RankingMetrics(SummedMetrics):
        """Each pair's (query, score, relevance), gathered over ranks; MRR per query, pair accuracy and loss."""

        def __init__(self):
            super().__init__(adapter, device)
            self.rows: list[tuple[str, float, float]] = []

        def add(self, out, batch, records) -> None:
            scores = out.float().reshape(-1).tolist()
            self.rows.extend((r.input[0], s, float(r.target)) for r, s in zip(records, scores))

        def result(self, ctx) -> dict:
            from hub.train.distributed import gather_lists

            return ranking_report(gather_lists(self.rows, ctx))

    return RankingMetrics()


def ranking_report(rows: list[tuple[str, float, float]]) -> dict:
    """MRR over queries, pair accuracy at 0.5 and the binary cross-entropy, from (query, logit, relevance) rows."""
    import math

    by_query: dict[str, list[tuple[float, float]]] = {}
    for query, score, relevance in rows:
        by_query.setdefault(query, []).append((score, relevance))
    reciprocal = []
    for pairs in by_query.values():
        if len(pairs) < 2 or not any(rel >= 0.5 for _, rel in pairs):
            continue
        ranked = sorted(pairs, key=lambda p: -p[0])
        reciprocal.append(1.0 / (1 + next(i for i, (_, rel) in enumerate(ranked) if rel >= 0.5)))
    correct = sum((score >= 0) == (rel >= 0.5) for _, score, rel in rows)
    loss = sum(max(s, 0) - s * rel + math.log1p(math.exp(-abs(s))) for _, s, rel in rows)
    n = len(rows)
    return {"mrr": sum(reciprocal) / len(reciprocal) if reciprocal else 0.0,
            "pair_accuracy": correct / n if n else 0.0,
            "loss": loss / n if n else 0.0, "count": n, "queries": len(reciprocal)}


def kind(task: str, saved: list[str] | None):
    """The TrainKind of ``task``: ``ranking`` (MRR chooses checkpoints) or ``nli`` (accuracy; ``saved`` labels kept)."""
    from hub.train.adapter import TrainKind

    if task == "text-ranking":
        return TrainKind(name="ranking", read=reader(task), metrics=ranking_metrics,
                         metric_names=("mrr", "pair_accuracy", "loss"), default_metric="mrr", default_lr=2e-5)
    return TrainKind(name="nli", read=reader(task), metrics=nli_metrics, metric_names=("accuracy", "loss"),
                     default_metric="accuracy", labels=nli_labels(saved), default_lr=2e-5)


# -- the model --------------------------------------------------------------------------------------------------
def trainable(spec, task: str, labels):
    """A TrainAdapter for a pair task; ``labels=None`` asks for the model as saved (its head, if it has one)."""
    from hub.train.adapter import TrainAdapter

    directory = weights_dir(spec)
    trust = bool((spec.options or {}).get("trust_remote_code"))
    saved = saved_head(directory)
    if task == "text-ranking":
        labels = saved if saved and len(saved) == 1 else ["LABEL_0"]
    elif labels is None:
        labels = saved or ["LABEL_0", "LABEL_1"]
    model, heads, new_head = load_model(AUTO, directory, list(labels), trust)
    if task == "text-ranking":
        model.config.problem_type = None  # one relevance logit, as cross-encoders save it
    tokenizer = load_tokenizer(directory, trust)
    limit = max_length(directory, tokenizer, model, spec)
    index = {name: i for i, name in enumerate(labels)}
    truncation = "only_first" if task == "zero-shot-classification" else True

    def load_example(record, train: bool) -> dict:
        first, second = record.input
        example = dict(tokenizer(first, second, truncation=truncation, max_length=limit))
        example["labels"] = float(record.target) if task == "text-ranking" else index.get(record.label, -100)
        return example

    return TrainAdapter(
        module=model, kind=kind(task, saved), load_example=load_example, collate=collator(tokenizer, task),
        loss=ranking_loss if task == "text-ranking" else nli_loss, predict=predict, save=saver(tokenizer),
        spec_fields={"task": task, "plugin": "transformers", "preprocess": {"max_length": limit},
                     "description": f"{spec.id} fine-tuned for {task}"},
        head_prefixes=heads, blocks=blocks, length=lambda ex: len(ex["input_ids"]), labels=list(labels),
        new_head=new_head)


def saved_head(directory: Path) -> list[str] | None:
    """The class names of the checkpoint's sequence-classification head, or None when it has none."""
    config = read_json(directory / "config.json")
    architectures = config.get("architectures") or []
    if not any(str(a).endswith(HEAD_ARCHITECTURES["text-classification"]) for a in architectures):
        return None
    id2label = config.get("id2label") or {}
    try:
        return [str(id2label[str(i)]) for i in range(len(id2label))] or None
    except KeyError:
        raise HubError(f"the config.json in '{directory}' has an id2label without consecutive ids 0..N-1; "
                       "fix its id2label") from None


def collator(tokenizer, task: str):
    """``collate(examples)``: the pairs padded by the tokenizer, labels as floats (ranking) or class ids (NLI)."""

    def collate(examples: list[dict]) -> dict:
        import torch

        batch = collate_text([{k: v for k, v in ex.items() if k != "labels"} for ex in examples], tokenizer)
        dtype = torch.float32 if task == "text-ranking" else torch.long
        batch["labels"] = torch.tensor([ex["labels"] for ex in examples], dtype=dtype)
        return batch

    return collate


def predict(module, batch: dict):
    return module(**{k: v for k, v in batch.items() if k != "labels"}).logits


def nli_loss(module, batch: dict):
    import torch.nn.functional as F

    return F.cross_entropy(predict(module, batch).float(), batch["labels"], ignore_index=-100)


def ranking_loss(module, batch: dict):
    import torch.nn.functional as F

    logits = predict(module, batch).float().reshape(-1)
    return F.binary_cross_entropy_with_logits(logits, batch["labels"].float())


def saver(*processors):
    """``save(module, out_dir)``: save_pretrained of the model and of each processor (its tokenizer), all
    appearing at once (hub.io.atomic_directory); a DistributedDataParallel wrapper is saved as its module."""

    def save(module, out_dir) -> None:
        from hub.io import atomic_directory

        with atomic_directory(out_dir, carry_over=True) as out:
            getattr(module, "module", module).save_pretrained(str(out))
            for processor in processors:
                processor.save_pretrained(str(out))

    return save

