"""Parameter groups, freezing, schedules, clipping and accumulation."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _train_digits as D  # noqa: E402

from hub.errors import HubError  # noqa: E402
from hub.train import optim  # noqa: E402

LABELS = [str(i) for i in range(10)]


def test_param_groups_split_head_and_no_decay():
    module = D.build_module()
    groups = optim.param_groups(module, ("head",), lr=1e-3, head_lr_mult=10, weight_decay=0.05)
    by_name = {g["group"]: g for g in groups}
    assert set(by_name) == {"backbone", "backbone/no_decay", "head", "head/no_decay"}
    assert by_name["head"]["names"] == ["head.weight"] and by_name["head/no_decay"]["names"] == ["head.bias"]
    assert by_name["head"]["lr"] == pytest.approx(1e-2) and by_name["backbone"]["lr"] == pytest.approx(1e-3)
    assert all(n.endswith("bias") or ".norm." in n for n in by_name["backbone/no_decay"]["names"])
    assert "blocks.0.norm.weight" in by_name["backbone/no_decay"]["names"]
    assert by_name["backbone/no_decay"]["weight_decay"] == 0 and by_name["backbone"]["weight_decay"] == 0.05
    counted = sum(len(g["params"]) for g in groups)
    assert counted == len(list(module.parameters()))


def test_freeze_backbone_and_unfreeze_last():
    adapter = D.make_adapter(LABELS)
    counts = optim.apply_freezing(adapter, freeze_backbone=True)
    trainable = {n for n, p in adapter.module.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"} and counts["trainable"] == 64 * 10 + 10
    adapter = D.make_adapter(LABELS)
    optim.apply_freezing(adapter, unfreeze_last=1)
    trainable = {n for n, p in adapter.module.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"} | {n for n, _ in adapter.module.named_parameters()
                                                         if n.startswith("blocks.2.")}
    groups = optim.param_groups(adapter.module, adapter.head_prefixes)
    assert all(not n.startswith(("stem", "blocks.0", "blocks.1")) for g in groups for n in g["names"])
    with pytest.raises(HubError, match="only 3 blocks"):
        optim.apply_freezing(D.make_adapter(LABELS), unfreeze_last=5)


def test_prefix_match_is_by_module_boundary():
    assert optim.is_head("head.weight", ("head",)) and not optim.is_head("header.weight", ("head",))


def test_schedules():
    total, warm = 100, 10
    assert optim.lr_factor(0, total, "linear", warm) == pytest.approx(1 / 11)
    assert optim.lr_factor(9, total, "linear", warm) == pytest.approx(10 / 11)
    assert optim.lr_factor(10, total, "linear", warm) == pytest.approx(1.0)
    assert optim.lr_factor(55, total, "linear", warm) == pytest.approx(0.5)
    assert optim.lr_factor(55, total, "cosine", warm) == pytest.approx(0.5)
    assert optim.lr_factor(32.5, total, "cosine", warm) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert optim.lr_factor(99, total, "constant", warm) == 1.0
    assert optim.lr_factor(100, total, "linear", warm) == 0.0
    assert optim.warmup_steps(0.1, 250) == 25 and optim.warmup_steps(7, 250) == 7
    with pytest.raises(HubError, match="unknown schedule"):
        optim.lr_factor(0, 10, "exponential")


def test_scheduler_drives_every_group():
    module = D.build_module()
    opt = optim.make_optimizer(module, ("head",), lr=1e-3, head_lr_mult=10)
    sched = optim.make_scheduler(opt, total_steps=20, schedule="linear", warmup=0.0)
    for _ in range(10):
        opt.step()
        sched.step()
    lrs = {g["group"]: g["lr"] for g in opt.param_groups}
    assert lrs["backbone"] == pytest.approx(5e-4) and lrs["head"] == pytest.approx(5e-3)


def test_clip_gradients():
    module = torch.nn.Linear(4, 1)
    module(torch.ones(2, 4) * 100).sum().backward()
    before = optim.clip_gradients(module, 1.0)
    after = torch.norm(torch.stack([p.grad.norm() for p in module.parameters()]))
    assert before > 1.0 and after == pytest.approx(1.0, rel=1e-4)
    assert optim.clip_gradients(module, None) is None


def test_weight_decay_spares_biases():
    """One AdamW step on zero gradients: decayed weights shrink, biases and norms do not."""
    module = D.build_module()
    opt = optim.make_optimizer(module, ("head",), lr=0.1, weight_decay=0.5)
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    for p in module.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    after = dict(module.named_parameters())
    assert torch.allclose(after["stem.weight"], before["stem.weight"] * (1 - 0.1 * 0.5))
    assert torch.equal(after["stem.bias"], before["stem.bias"])
    assert torch.equal(after["blocks.0.norm.weight"], before["blocks.0.norm.weight"])
