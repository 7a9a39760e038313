"""Advice from the number of labelled examples a user has: zero-shot, a frozen backbone, or a full fine-tune.

The thresholds follow common practice for transfer learning: with a handful of examples per class a
linear head on frozen features (or a zero-shot model) generalises better than training the whole
network; with thousands, fine-tuning every layer pays off.
"""
from __future__ import annotations

FEW = 100
SOME = 2_000


def data_advice(task: str, examples: int | None) -> str | None:
    """One sentence of advice for ``examples`` labelled examples; None when the number was not given."""
    if examples is None:
        return None
    advice = _advice(task)  # the task's declaration says what labelled data buys (hub.tasks.TaskInfo.advice)
    zero_shot = _zero_shot_task(task)
    alternative = f", or no training at all: hub recommend --task {zero_shot}" if zero_shot else ""
    if advice == "no-training":
        return (f"{examples} examples: this task needs no training (labels or texts are given at run time); "
                "use the examples to compare models and prompts")
    if advice == "embedding":
        if examples < SOME:
            return (f"{examples} examples: use the embeddings as they are (nearest neighbours, or a linear "
                    "classifier on them); fine-tuning an embedder needs thousands of pairs")
        return f"{examples} examples: enough to fine-tune the embedder on your pairs, starting from the best model"
    if advice == "generator":
        return _generator_advice(examples)
    if examples == 0:
        return f"no labelled examples: use the models' own labels as they are{alternative}"
    if examples < FEW:
        return (f"few examples ({examples}): a frozen backbone with a linear head "
                f"(hub finetune MODEL --data FILE --freeze-backbone){alternative}")
    if examples < SOME:
        return (f"some examples ({examples}): train the head, then the last blocks with a low learning rate "
                "(hub finetune MODEL --data FILE --unfreeze-last 2)")
    return (f"many examples ({examples}): a full fine-tune (hub finetune MODEL --data FILE) pays off; "
            "larger backbones gain most from more data")


def _generator_advice(examples: int) -> str:
    """A generator has no head to train on frozen features: use it as it is until there are thousands of pairs."""
    if examples < SOME:
        return (f"{examples} examples: use the pretrained model as it is and compare the models on your examples; "
                "fine-tuning a generator on fewer than a few thousand pairs tends to overfit")
    return (f"many examples ({examples}): a full fine-tune (hub finetune MODEL --data FILE, where the model's "
            "plugin trains this task) pays off, starting from the best model that fits")


def _advice(task: str) -> str:
    from hub.tasks import TASKS

    info = TASKS.get(task)
    return info.advice if info is not None else "labels"


def _zero_shot_task(task: str) -> str | None:
    """The task that scores free-text labels instead of ``task`` (its declaration's ``zero_shot``), if declared."""
    from hub.tasks import TASKS

    info = TASKS.get(task)
    other = info.zero_shot if info is not None else None
    return other if other in TASKS else None
