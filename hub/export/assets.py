"""Files an export carries beside its graphs: configs, tokenizers and preprocessing, never weights or code."""
from __future__ import annotations

import shutil
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".py", ".pkl")


def copy_matching(source: Path, target: Path, patterns) -> list[str]:
    """Copy the files of ``source`` matching ``patterns`` (globs, relative) into ``target``; returns their names."""
    copied = []
    for pattern in patterns:
        for path in sorted(Path(source).glob(pattern)):
            relative = path.relative_to(source)
            if not path.is_file() or path.suffix in WEIGHT_SUFFIXES or str(relative) in copied:
                continue
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / relative)  # follows the hub cache's symlinks
            copied.append(str(relative))
    return copied


def write_json(target: Path, data) -> None:
    import json

    Path(target).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
