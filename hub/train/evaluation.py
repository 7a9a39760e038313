"""Run a module over validation records and compute the metrics of its kind.

What ``adapter.predict(module, batch)`` returns, per kind:

- ``classification``: logits ``[B, C]`` (or ``[B, T, C]`` for tokens, where ``batch["labels"]``
  holds -100 at positions to ignore); references are ``batch["labels"]``;
- ``contrastive``: ``(image_embeddings [B, D], text_embeddings [B, D])`` of matching pairs;
- ``ctc``: a list of ``B`` decoded transcripts; references are the records' ``text``.

Under torch.distributed each rank evaluates every ``world_size``-th batch; counts (confusion
matrix, top-k hits, summed loss, word edits) are summed with ``all_reduce`` and embeddings are
gathered, so every rank gets the same metrics.
"""
from __future__ import annotations

from hub.errors import HubError
from hub.train import metrics as M
from hub.train.adapter import TrainKind, kind_name
from hub.train.distributed import DistContext, all_reduce_sum, gather_lists

METRICS = {
    "classification": ("accuracy", "top5_accuracy", "precision_macro", "recall_macro", "f1_macro", "loss"),
    "contrastive": ("recall@1", "recall@5", "i2t_recall@1", "t2i_recall@1", "i2t_recall@5", "t2i_recall@5"),
    "ctc": ("wer", "cer"),
}
DEFAULT_METRIC = {"classification": "accuracy", "contrastive": "recall@1", "ctc": "wer"}


def metric_names(kind) -> tuple[str, ...]:
    """The scalar metrics a kind reports: a built-in kind's, or those a TrainKind declares."""
    return tuple(kind.metric_names) if isinstance(kind, TrainKind) else METRICS[kind]


def resolve_metric(kind, metric: str | None) -> str:
    """The metric to select checkpoints by; ``accuracy`` (the default) means the kind's default."""
    names = metric_names(kind)
    default = kind.default_metric if isinstance(kind, TrainKind) else DEFAULT_METRIC[kind]
    if not metric or (metric == "accuracy" and "accuracy" not in names):
        return default
    if metric not in names:
        raise HubError(f"metric '{metric}' is not computed for {kind_name(kind)} training; choose one of: "
                       f"{', '.join(names)} (--metric)")
    return metric


def is_lower_better(kind, metric: str) -> bool:
    """Whether a smaller ``metric`` is better: loss, WER, CER, or a name the kind declares so."""
    return M.lower_is_better(metric) or (isinstance(kind, TrainKind) and metric in kind.lower_is_better)


class ExampleSet:
    """``records[i]`` loaded by the adapter on access (a map-style dataset for DataLoader)."""

    def __init__(self, adapter, records, train: bool):
        self.adapter, self.records, self.train = adapter, records, train

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        record = self.records[index]
        try:
            return self.adapter.load_example(record, self.train)
        except HubError:
            raise
        except Exception as exc:
            raise HubError(f"{record.where or record.input}: cannot load this example "
                           f"({type(exc).__name__}: {exc}); fix or remove the row") from exc


def example_lengths(adapter, records) -> list[int] | None:
    """Each record's length (tokens, samples) when the adapter can tell, else None."""
    if adapter.length is None:
        return None
    if all(r.length is not None for r in records):  # measured by screen_records
        return [int(r.length) for r in records]
    examples = ExampleSet(adapter, records, False)
    return [int(adapter.length(examples[i])) for i in range(len(records))]


def screen_records(adapter, records, on_bad: str = "skip", what: str = "training"):
    """(kept, problems): every record loaded once, before any training or evaluation starts.

    A record the adapter cannot load (a corrupt image or audio file, a transcript the vocabulary
    cannot spell, ...) becomes a problem ``where: why`` as a bad row does, so that no run stops
    halfway through an epoch. Lengths are kept on the records for length-grouped batching.
    ``on_bad="error"`` refuses the data when any record fails.
    """
    kept, problems = [], []
    for record in records:
        try:
            example = adapter.load_example(record, False)
            if adapter.length is not None:
                record.length = int(adapter.length(example))
        except Exception as exc:  # noqa: BLE001 - any failure of one item is that row's problem
            problems.append(_item_problem(record, exc))
        else:
            kept.append(record)
    if records and not kept:
        raise HubError(f"none of the {len(records)} {what} rows can be loaded, e.g. {problems[0]}")
    if problems and on_bad == "error":
        shown = "; ".join(problems[:10]) + (f"; ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise HubError(f"the {what} data has {len(problems)} rows that cannot be loaded: {shown}. Fix or remove "
                       "them, or pass on_bad='skip' (--on-bad-rows skip) to go on without them.")
    return kept, problems


def _item_problem(record, exc: Exception) -> str:
    """``where: message`` for a record that failed to load, without repeating its location."""
    where = record.where or str(record.input)
    message = str(exc) if isinstance(exc, HubError) else f"cannot be loaded ({type(exc).__name__}: {exc})"
    if message.startswith(where + ": "):
        message = message[len(where) + 2:]
    return f"{where}: {' '.join(message.split())}"


def evaluate_module(adapter, module, records, device_manager, batch_size: int = 32,
                    ctx: DistContext | None = None, lengths: list[int] | None = None) -> dict:
    """The metrics dict of ``module`` on ``records`` (identical on every rank)."""
    import torch

    from hub.train.batching import eval_batches

    ctx = ctx or DistContext()
    if not records:
        raise HubError("no validation rows to evaluate on")
    batches = eval_batches(lengths, len(records), batch_size)[ctx.rank::ctx.world_size]
    examples = ExampleSet(adapter, records, False)
    acc = new_accumulator(adapter, device_manager.device)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for indices in batches:
                batch = device_manager.to_device(adapter.collate([examples[i] for i in indices]))
                with device_manager.autocast():
                    out = adapter.predict(module, batch)
                acc.add(out, batch, [records[i] for i in indices])
    finally:
        module.train(was_training)
    return _checked_result(adapter, acc.result(ctx))


def new_accumulator(adapter, device: str):
    """What sums one evaluation: the built-in kinds' accumulator, or the TrainKind's own metrics."""
    if isinstance(adapter.kind, TrainKind):
        return adapter.kind.metrics(adapter, device)
    return _Accumulator(adapter, device)


def _checked_result(adapter, metrics) -> dict:
    """A TrainKind's metrics must be a dict holding every metric name it declares."""
    if not isinstance(adapter.kind, TrainKind):
        return metrics
    missing = [n for n in adapter.kind.metric_names if not isinstance(metrics, dict) or n not in metrics]
    if missing:
        raise HubError(f"the {adapter.kind.name} metrics did not report {', '.join(missing)}, which the training "
                       "kind declares in metric_names; the plugin is at fault")
    return metrics


class SummedMetrics:
    """Base class of a TrainKind's metrics: counts in named tensors, summed across ranks, then computed.

    Declare every count in ``__init__`` with :meth:`counter` (every rank must sum the same tensors,
    even one that saw no batch), add to them in :meth:`add`, and turn the summed counts (numpy
    arrays) into the metrics dict in :meth:`compute`.
    """

    def __init__(self, adapter, device: str):
        self.adapter, self.device = adapter, device
        self.sums: dict = {}

    def counter(self, name: str, shape=(), dtype: str = "float64"):
        """A zero tensor summed across ranks before :meth:`compute` (int64 or float64)."""
        import torch

        self.sums[name] = torch.zeros(tuple(shape), dtype=getattr(torch, dtype), device=self.device)
        return self.sums[name]

    def add(self, out, batch: dict, records: list) -> None:
        """Count what ``adapter.predict`` returned for one device batch of ``records``."""
        raise NotImplementedError

    def compute(self, sums: dict) -> dict:
        """The metrics dict (scalars, plus any per-class detail) from the counts of all ranks."""
        raise NotImplementedError

    def result(self, ctx: DistContext) -> dict:
        """Sum the counts over ranks, in name order, and compute the metrics (the same on every rank)."""
        for name in sorted(self.sums):
            all_reduce_sum(self.sums[name], ctx)
        return self.compute({name: tensor.cpu().numpy() for name, tensor in self.sums.items()})


class _Accumulator:
    """Sums (classification, ctc) or collects (contrastive) what one rank saw."""

    def __init__(self, adapter, device: str):
        import torch

        self.kind, self.labels, self.device = adapter.kind, adapter.labels, device
        n = len(adapter.labels or [])
        self.cm = torch.zeros((n, n), dtype=torch.int64, device=device) if self.kind == "classification" else None
        self.sums = torch.zeros(6, dtype=torch.float64, device=device)  # top5 hits, loss, wer/cer counts
        self.images, self.texts_emb, self.captions = [], [], []

    def add(self, out, batch, records) -> None:
        if self.kind == "classification":
            self._classification(out, batch)
        elif self.kind == "contrastive":
            image, text = out
            self.images.extend(image.float().cpu().numpy())
            self.texts_emb.extend(text.float().cpu().numpy())
            self.captions.extend(r.text for r in records)
        else:
            hyps = list(out)
            refs = [r.text or "" for r in records]
            we, ww = M.wer_counts(refs, hyps)
            ce, cw = M.cer_counts(refs, hyps)
            self.sums[2:6] += self.sums.new_tensor([we, ww, ce, cw])

    def _classification(self, logits, batch) -> None:
        import torch

        logits = logits.float()
        labels = batch["labels"].to(logits.device)
        if logits.ndim == 3:  # token classification
            logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
        keep = labels != -100
        logits, labels = logits[keep], labels[keep]
        c = self.cm.shape[0]
        preds = logits.argmax(dim=-1)
        self.cm += torch.bincount(labels * c + preds, minlength=c * c).reshape(c, c).to(self.cm.device)
        k = min(5, c)
        self.sums[0] += (logits.topk(k, dim=-1).indices == labels[:, None]).any(dim=-1).sum().double()
        self.sums[1] += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").double()

    def result(self, ctx: DistContext) -> dict:
        if self.kind == "classification":
            all_reduce_sum(self.cm, ctx)
            all_reduce_sum(self.sums, ctx)
            hits = {5: int(self.sums[0].item())} if self.cm.shape[0] > 5 else {}
            return M.classification_report(self.cm.cpu().numpy(), self.labels, hits, float(self.sums[1].item()))
        if self.kind == "contrastive":
            import numpy as np

            images, texts = gather_lists(self.images, ctx), gather_lists(self.texts_emb, ctx)
            captions = gather_lists(self.captions, ctx)
            return M.retrieval_report(np.stack(images), np.stack(texts), captions, ks=(1, 5))
        all_reduce_sum(self.sums, ctx)
        we, ww, ce, cw = (float(x) for x in self.sums[2:6].tolist())
        return {"wer": we / ww if ww else 0.0, "cer": ce / cw if cw else 0.0, "count_words": int(ww)}
