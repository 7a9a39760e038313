"""Loading transformers models for the hub: weights directory, Auto classes, safe defaults.

Before transformers reads a directory, its weights are checked: present, safetensors headers whole,
pickles only as plain tensors. A config whose ``auto_map`` asks for code shipped with the weights is
refused unless trust-remote-code is on. Failures are :class:`hub.errors.WeightsError` naming the path.
Where transformers can load the directory without its shipped code (a built-in model type), that code
is not run, and a warning names it and the flag.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from hub.errors import WeightsError
from hub.plugin_kit import read_json_file
from hub.tasks.base import Pipeline

WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.py", "*/*.json", "merges.txt", "vocab.*"]
RESAVE = "save the model again with model.save_pretrained(directory)"
CONVERT = ("convert it to safetensors where you trust the file: load it with transformers and save it with "
           "model.save_pretrained(directory), which writes model.safetensors")
TRUST_FLAG = "--trust-remote-code (in Python: trust_remote_code=True)"
CODE_CONFIGS = ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json")


def weights_dir(spec) -> Path:
    """The checked weights directory; repos with no safetensors fall back to ``*.bin`` (read with weights_only)."""
    from hub import weights

    directory = weights.resolve(spec, allow_patterns=WEIGHT_PATTERNS)
    if not any(directory.glob("*.safetensors")) and not any(directory.glob("*.bin")):
        directory = weights.resolve(spec, allow_patterns=[*WEIGHT_PATTERNS, "*.bin"])
    check_weights(spec, directory)
    return directory


def check_weights(spec, directory: Path) -> None:
    """Weights present and every safetensors header whole; else WeightsError naming the path and the fix."""
    from hub import weights

    fix = weights.refetch_hint(spec, RESAVE)
    found = sorted(Path(directory).glob("*.safetensors"))
    if not found and not any(Path(directory).glob("*.bin")):
        raise WeightsError(f"model directory '{directory}' has a config.json but no weights (model.safetensors or "
                           f"pytorch_model.bin); {fix}")
    for path in found:
        weights.check_safetensors(path, fix)


def read_json(path: Path) -> dict:
    """A JSON file's content, or {} when it is missing or unreadable."""
    value = read_json_file(path)
    return {} if value is None else value


def load_auto(auto_name: str, directory: Path, trust_remote_code: bool = False, **kwargs):
    """``transformers.<auto_name>.from_pretrained`` with safetensors preferred and no remote code by default."""
    import transformers

    transformers.utils.logging.disable_progress_bar()  # the hub shows its own progress
    auto = getattr(transformers, auto_name)
    has_safetensors = any(Path(directory).glob("*.safetensors"))
    wants_info = kwargs.pop("output_loading_info", False)
    with translated_errors(directory, "model"):
        model, info = auto.from_pretrained(str(directory), trust_remote_code=trust_remote_code,
                                           use_safetensors=True if has_safetensors else None,
                                           output_loading_info=True, **kwargs)
    if not kwargs.get("ignore_mismatched_sizes"):  # a new head on purpose (fine-tuning) is not a bad checkpoint
        check_loaded_keys(model, info, Path(directory))
    if not trust_remote_code:
        _warn_if_shipped_code_skipped(directory, auto_name)
    return (model, info) if wants_info else model


def check_loaded_keys(model, info: dict, directory: Path) -> None:
    """A checkpoint that gave under 90% of the model's weights is a WeightsError listing those missing."""
    from hub.weights import check_coverage

    missing = list(info.get("missing_keys") or []) + [m[0] if isinstance(m, (list, tuple)) else m
                                                      for m in info.get("mismatched_keys") or []]
    check_coverage(directory.name, model.state_dict().keys(), missing, directory, RESAVE)


def load_tokenizer(directory: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    with translated_errors(directory, "tokenizer"):
        return AutoTokenizer.from_pretrained(str(directory), trust_remote_code=trust_remote_code)


@contextmanager
def translated_errors(directory, what: str):
    """Turn transformers' loading failures (missing files, unsafe pickles, remote code) into WeightsError."""
    from hub.weights import quiet_pickle_warnings

    try:
        with quiet_pickle_warnings():
            yield
    except WeightsError:
        raise
    except Exception as exc:
        error = loading_error(Path(directory), what, exc)
        if error is None:
            raise
        raise error from exc


def loading_error(directory: Path, what: str, exc: Exception) -> WeightsError | None:
    """The WeightsError for a failed ``from_pretrained``, or None when it is no problem with the files."""
    import re

    from hub.weights import is_pickle_failure, unsafe_pickle_error

    text = str(exc)
    if "trust_remote_code" in text:
        return WeightsError(f"model directory '{directory}' needs the Python code shipped with it "
                            f"({shipped_code(directory)}), which the hub does not run unless asked. If you trust "
                            f"its source, pass {TRUST_FLAG}.")
    if is_pickle_failure(exc):
        return unsafe_pickle_error(_pickle_in(directory), exc, CONVERT)
    missing = re.search(r"does not appear to have a file named ([^\s]+?)\.?\s", text + " ")
    if missing:
        return WeightsError(f"model directory '{directory}' has no file '{missing.group(1)}', which its {what} needs; "
                            f"copy it from where the model came from, or {RESAVE}")
    if "ignore_mismatched_sizes" in text:  # transformers 5: shapes that differ from the config's, listed in its report
        return WeightsError(f"the checkpoint in '{directory}' holds weights whose shapes differ from what its "
                            f"config.json describes (another model's weights, or an edited config); {RESAVE}")
    if isinstance(exc, (OSError, ValueError)) or type(exc).__name__ == "SafetensorError" or "size mismatch" in text:
        first = text.strip().splitlines()[0].rstrip(".") if text.strip() else type(exc).__name__
        return WeightsError(f"transformers cannot load the {what} in '{directory}': {first}; {RESAVE}")
    return None


def shipped_code(directory: Path) -> str:
    """The code files a directory's config.json / tokenizer_config.json name in ``auto_map``."""
    refs = []
    for name in CODE_CONFIGS:
        auto_map = read_json(Path(directory) / name).get("auto_map")
        if isinstance(auto_map, dict):
            for value in auto_map.values():
                refs += value if isinstance(value, (list, tuple)) else [value]
    files = sorted({str(r).split("--")[-1].rpartition(".")[0] + ".py" for r in refs if r})
    return f"{', '.join(files)}, named by 'auto_map'" if files else "named by 'auto_map'"


def _pickle_in(directory: Path) -> Path:
    found = sorted(Path(directory).glob("*.bin"))
    return found[0] if found else Path(directory)


def _warn_if_shipped_code_skipped(directory: Path, auto_name: str) -> None:
    """A directory that names code of its own in ``auto_map``, loaded with transformers' classes instead: say so.

    Any ``auto_map`` counts (the model's, its config's, its tokenizer's or its processor's), since any of
    them is code that would run with the flag and did not run without it.
    """
    import warnings

    from hub.tasks.base import HubWarning

    config = read_json(Path(directory) / "config.json")
    auto_map = config.get("auto_map")
    built_in = f"transformers' built-in '{config.get('model_type')}' classes were used instead"
    rerun = f"To run the shipped code instead, pass {TRUST_FLAG} if you trust its source."
    if isinstance(auto_map, dict) and auto_name in auto_map:
        warnings.warn(f"'{directory}' ships its own code for {auto_name} ({auto_map[auto_name]}), which was not "
                      f"run: {built_in}. {rerun}", HubWarning, stacklevel=3)
    elif _maps_code(directory):
        warnings.warn(f"'{directory}' ships its own code ({shipped_code(directory)}), which was not run: {built_in}. "
                      f"{rerun}", HubWarning, stacklevel=3)


def _maps_code(directory: Path) -> bool:
    """Whether any config of ``directory`` names code in a non-empty ``auto_map``."""
    return any(isinstance(m, dict) and any(m.values())
               for m in (read_json(Path(directory) / name).get("auto_map") for name in CODE_CONFIGS))


class TransformersPipeline(Pipeline):
    """Base of this plugin's pipelines: tokenizer + model from one directory."""

    auto_class = "AutoModel"
    plans_in_tokens = False  # True: inputs are plain texts, batched by their token counts (see ``lengths``)

    def __init__(self, spec, model, device_manager, tokenizer=None, directory=None, **options):
        super().__init__(spec, model, device_manager, **options)
        self.tokenizer = tokenizer
        self.directory = directory

    @classmethod
    def from_spec(cls, spec, device_manager, trust_remote_code: bool = False, **options):
        directory = weights_dir(spec)
        tokenizer = load_tokenizer(directory, trust_remote_code)
        model = load_auto(cls.auto_class, directory, trust_remote_code)
        model = device_manager.place(model)
        return cls(spec, model, device_manager, tokenizer=tokenizer, directory=directory, **options)

    # -- the runtime seam: forward goes through ``forward_fn``; an export replaces only that -------------
    export_output = "last_hidden_state"  # the output of the torch module that the pipeline's forward reads
    EXPORT_FILES = ("*.json", "*.txt", "*.model", "vocab.*", "merges.txt", "*/*.json")

    @property
    def forward_fn(self):
        """What runs the model: the torch module, or a runtime graph returning the same outputs."""
        return self.model

    def graph_inputs(self, name: str, items: list) -> dict:
        """The tensors graph ``name`` takes for raw inputs ``items`` (texts), as ``preprocess`` makes them."""
        return dict(self.tokenize(items))

    def export_graphs(self, texts: list[str], images=()) -> list:
        """The one graph to export: the Auto model from token tensors to ``export_output``."""
        from hub.export.onnx import GraphSpec

        batch = self.graph_inputs("model", texts)
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in batch]
        module = ModelOutput(self.model, self.export_output)
        return [GraphSpec("model", module, {n: batch[n] for n in names}, [self.export_output],
                          {n: {0: "batch", 1: "sequence"} for n in names}, kind="text")]

    def export_assets(self, directory: Path) -> None:
        """Copy the config, tokenizer and pooling files (never weights or code) into ``directory``."""
        from hub.export.assets import copy_matching

        copy_matching(Path(self.directory), Path(directory), self.EXPORT_FILES)

    @classmethod
    def from_runtime(cls, spec, device_manager, runtime, **options):
        """This pipeline around an exported graph: the same tokenizer, config, pooling and labels."""
        from transformers import AutoConfig

        directory = runtime.directory
        tokenizer = load_tokenizer(directory)
        with translated_errors(directory, "config"):
            config = AutoConfig.from_pretrained(str(directory))
        model = RuntimeModel(runtime.graph("model"), config, cls.export_output)
        return cls(spec, model, device_manager, tokenizer=tokenizer, directory=directory, **options)

    def max_length(self) -> int:
        """The longest input the model takes: the catalogue's setting, else tokenizer/config limits."""
        configured = self.spec.preprocess.get("max_length")
        if configured:
            return int(configured)
        limits = [getattr(self.tokenizer, "model_max_length", None),
                  getattr(self.model.config, "max_position_embeddings", None)]
        limits = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
        return min(limits) if limits else 512

    def tokenize(self, texts: list[str], max_length: int | None = None, **extra):
        """Pad to the longest in the batch, truncate to ``max_length`` with a warning.

        ``extra`` goes to the tokenizer (e.g. ``return_offsets_mapping=True``)."""
        limit = max_length or self.max_length()
        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=limit, return_tensors="pt",
                                 **extra)
        message = f"{self.spec.id}: an input longer than the model's maximum of {limit} tokens was truncated"
        if message not in self.warnings and self._any_truncated(texts, encoded, limit):
            self.warn(message)
        return encoded

    def _any_truncated(self, texts: list[str], encoded, limit: int) -> bool:
        """Re-tokenize, without truncation, only the texts that filled the whole window."""
        if encoded["input_ids"].shape[1] < limit:
            return False
        full = [t for t, n in zip(texts, encoded["attention_mask"].sum(dim=1).tolist()) if n >= limit]
        lengths = self.tokenizer(full, truncation=False, add_special_tokens=True)["input_ids"] if full else []
        return any(len(ids) > limit for ids in lengths)

    def prepare(self, item):
        from hub.errors import InputError
        from hub.inputs import check_text

        if not isinstance(item, str):
            raise InputError(f"{self.spec.id} takes text; got {type(item).__name__}")
        return check_text(item, f"the input to {self.spec.id}")

    def length(self, item) -> int:
        return len(item)

    def lengths(self, prepared: list) -> list:
        """Token counts (truncated as ``tokenize`` truncates) where ``plans_in_tokens`` and every input is a
        text, so batches are planned on the lengths they pad to; characters otherwise. On 512 mixed texts
        this pads 6% fewer tokens than planning by characters, for one tokenizer pass (~2% of MiniLM's time)."""
        if not (self.plans_in_tokens and self.tokenizer is not None and all(isinstance(x, str) for x in prepared)):
            return super().lengths(prepared)
        with self.preprocess_lock:
            ids = self.tokenizer(prepared, truncation=True, max_length=self.max_length())["input_ids"]
        return [len(x) for x in ids]


class RuntimeModel:
    """An exported graph in the shape of the transformers model it replaces: ``model(**batch).<output>``."""

    def __init__(self, graph, config, output: str):
        self.graph, self.config, self.output = graph, config, output

    def __call__(self, **batch):
        from types import SimpleNamespace

        return SimpleNamespace(**{self.output: self.graph(**batch)[self.output]})


def ModelOutput(model, output: str):  # noqa: N802  (builds a module class lazily: torch is imported here)
    """A torch module returning only ``model(**inputs).<output>`` (what the exporter traces)."""
    import torch

    class _Output(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, **inputs):
            return getattr(self.model(**inputs), output)

    return _Output().eval()
