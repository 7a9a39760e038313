"""Loading transformers models for the hub: weights directory, Auto classes, safe defaults."""
from __future__ import annotations

from pathlib import Path

from hub.plugin_kit import read_json_file
from hub.tasks.base import Pipeline

WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.py", "*/*.json", "merges.txt", "vocab.*"]


def weights_dir(spec) -> Path:
    """The weights directory; repos with no safetensors fall back to ``*.bin`` (read with weights_only)."""
    from hub import weights

    directory = weights.resolve(spec, allow_patterns=WEIGHT_PATTERNS)
    if not any(directory.glob("*.safetensors")) and not any(directory.glob("*.bin")):
        directory = weights.resolve(spec, allow_patterns=[*WEIGHT_PATTERNS, "*.bin"])
    return directory


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
    return auto.from_pretrained(str(directory), trust_remote_code=trust_remote_code,
                                use_safetensors=True if has_safetensors else None, **kwargs)


def load_tokenizer(directory: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(directory), trust_remote_code=trust_remote_code)


class TransformersPipeline(Pipeline):
    """Base of this plugin's pipelines: tokenizer + model from one directory."""

    auto_class = "AutoModel"

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

        if not isinstance(item, str):
            raise InputError(f"{self.spec.id} takes text; got {type(item).__name__}")
        return item

    def length(self, item) -> int:
        return len(item)
