"""Text-to-speech pipelines of the transformers plugin: SpeechT5 (+ HiFi-GAN vocoder) and VITS / MMS-TTS.

``TextToSpeechPipeline.from_spec`` picks the family from the model's config.json:

- SpeechT5 (``SpeechT5ForTextToSpeech``): ``generate_speech`` with a speaker embedding and the HiFi-GAN
  vocoder. The vocoder lives in its own repo: the catalogue names it as ``options.vocoder`` (a source such as
  ``hf-hub:microsoft/speecht5_hifigan``, with ``options.vocoder_revision``); a local model directory holds
  it in its ``vocoder/`` subdirectory. The speaker embedding comes from the ``speaker_embedding`` option
  (a ``.npy`` file of ``speaker_embedding_dim`` floats, e.g. a CMU ARCTIC x-vector); by default the model
  directory's ``speaker_embedding.npy``, else a zero vector (a neutral voice, plainer than a real x-vector).
- VITS / MMS-TTS (``VitsModel``): one forward pass; ``speaking_rate`` scales the durations.

Both sample noise (SpeechT5's decoder pre-net keeps its dropout on at inference; VITS samples its latent and
durations), so every input runs alone under the ``seed`` option (default 0) in a forked RNG: the same text
and seed give the same waveform in any batch, and the caller's random state is left alone.
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import InputError, OptionError, WeightsError
from hub.options import SEED, Option
from hub.tasks.results_audio import Speech
from mmhub_transformers.loading import TransformersPipeline, load_auto, load_tokenizer, read_json, weights_dir

TTS_SEED = SEED.but(default=0, help="random seed of the synthesis (both families sample noise): the same text "
                    "and seed give the same audio")
SPEAKER_EMBEDDING = Option("speaker_embedding", str, None, "a .npy file of the speaker's x-vector (SpeechT5; "
                           "default: the model directory's speaker_embedding.npy, else a neutral zero vector)")
SPEAKING_RATE = Option("speaking_rate", float, None, "speed of speech, 1.0 as trained; 2.0 is twice as fast "
                       "(VITS; default: the model's config)", minimum=0, exclusive_minimum=True, maximum=10)
VOCODER_DIR = "vocoder"
SPEAKER_FILE = "speaker_embedding.npy"


class TextToSpeechPipeline(TransformersPipeline):
    """Text to a waveform. ``from_spec`` returns the SpeechT5 or VITS variant the model's config calls for."""

    task = "text-to-speech"
    default_batch_size = 8
    # the options of both variants, for 'hub info' (which reads no config); each variant declares its own
    call_options = (TTS_SEED, SPEAKER_EMBEDDING.but(help=SPEAKER_EMBEDDING.help.replace("(SpeechT5; ", "(SpeechT5 "
                                                                                        "models only; ")),
                    SPEAKING_RATE.but(help=SPEAKING_RATE.help.replace("(VITS; ", "(VITS models only; ")))
    family = ""

    def __init__(self, spec, model, device_manager, sampling_rate: int = 16000, **kwargs):
        super().__init__(spec, model, device_manager, **kwargs)
        self.sampling_rate = int(sampling_rate)

    @classmethod
    def from_spec(cls, spec, device_manager, trust_remote_code: bool = False, **options):
        directory = weights_dir(spec)
        model_type = read_json(directory / "config.json").get("model_type")
        kind = FAMILIES.get(model_type)
        if kind is None:
            raise WeightsError(f"'{directory}' holds a {model_type or 'unknown'} model; text-to-speech takes SpeechT5 "
                               f"(SpeechT5ForTextToSpeech) or VITS / MMS-TTS (VitsModel) models")
        return kind.build(spec, device_manager, directory, trust_remote_code, **options)

    def options_owner(self) -> str:
        return f"{self.spec.id} (a {self.family} {self.task} model)" if self.family else super().options_owner()

    # -- inputs -----------------------------------------------------------------------------------
    def prepare(self, item):
        """The text, checked: not blank, with something the tokenizer can speak, not longer than the model takes."""
        text = super().prepare(item)
        shown = text if len(text) <= 60 else text[:57] + "..."
        if not text.strip():
            raise InputError(f"the text to speak is empty{'' if not text else ' (only whitespace)'}; "
                             f"pass some words for {self.spec.id} to say")
        if not self.speakable(text):
            raise InputError(f"the text {shown!r} has no characters that {self.spec.id} can speak (its tokenizer "
                             "knows none of them); write it in words of the model's language and script, numbers "
                             "spelled out")
        self.check_length(text, shown)
        return text

    def token_ids(self, text: str) -> list[int]:
        return self.tokenizer(text)["input_ids"]

    def speakable(self, text: str) -> bool:
        """Whether the tokenizer finds at least one token it can voice (not unknown, padding or special)."""
        special = set(self.tokenizer.all_special_ids)
        tokens = self.tokenizer.convert_ids_to_tokens([i for i in self.token_ids(text) if i not in special])
        return any(t and t.strip("▁ ") for t in tokens)

    def check_length(self, text: str, shown: str) -> None:
        """Refuse a text longer than the model's text positions (SpeechT5: 600 tokens)."""
        limit = getattr(self.model.config, "max_text_positions", None)
        n = len(self.token_ids(text))
        if isinstance(limit, int) and n > limit:
            raise InputError(f"the text {shown!r} is {n} tokens; {self.spec.id} takes at most {limit}: split it into "
                             "sentences and synthesise each")

    def preprocess(self, items, **kwargs):
        import torch

        return {"input_ids": [torch.tensor([self.token_ids(t)], dtype=torch.long) for t in items]}

    # -- running ----------------------------------------------------------------------------------
    def forward(self, batch, seed=0, **kwargs):
        """Each input alone, under ``seed`` in a forked RNG: the batch does not change anyone's audio."""
        import torch

        device = self.model.device
        waves = []
        for ids in batch["input_ids"]:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                waves.append(self.synthesise(ids, **kwargs).float().reshape(-1).cpu())
        return waves

    def synthesise(self, input_ids, **kwargs):
        """The waveform of one tokenised text (shape (1, n) ids on the device)."""
        raise NotImplementedError

    def postprocess(self, outputs, items, **kwargs):
        return [Speech(wave.numpy(), self.sampling_rate, text) for wave, text in zip(outputs, items)]


class SpeechT5Pipeline(TextToSpeechPipeline):
    """SpeechT5: ``generate_speech`` with a speaker embedding and the HiFi-GAN vocoder."""

    family = "SpeechT5"
    call_options = (TTS_SEED, SPEAKER_EMBEDDING)

    def __init__(self, spec, model, device_manager, vocoder=None, default_speaker=None, **kwargs):
        super().__init__(spec, model, device_manager, **kwargs)
        self.vocoder = vocoder
        self.default_speaker = default_speaker
        self._speakers: dict = {}

    @classmethod
    def build(cls, spec, device_manager, directory, trust_remote_code: bool = False, **options):
        tokenizer = load_tokenizer(directory, trust_remote_code)
        model = device_manager.place(load_auto("AutoModelForTextToSpectrogram", directory, trust_remote_code))
        vocoder_dir = find_vocoder(spec, directory)
        vocoder = device_manager.place(load_auto("SpeechT5HifiGan", vocoder_dir))
        default = directory / SPEAKER_FILE
        return cls(spec, model, device_manager, tokenizer=tokenizer, directory=directory, vocoder=vocoder,
                   sampling_rate=vocoder.config.sampling_rate, default_speaker=default if default.is_file() else None,
                   **options)

    def check_options(self, options: dict) -> dict:
        self.speaker(options["speaker_embedding"])  # a bad file fails before any input is read
        return options

    def speaker(self, path: str | None):
        """The (1, dim) speaker embedding from ``path`` (or the default), checked and cached by file."""
        import torch

        dim = int(self.model.config.speaker_embedding_dim)
        source = Path(path).expanduser() if path is not None else self.default_speaker
        if source is None:
            return torch.zeros(1, dim)
        key = _file_key(source)
        if key not in self._speakers:
            self._speakers[key] = torch.from_numpy(read_speaker_embedding(source, dim, self.spec.id)).reshape(1, dim)
        return self._speakers[key]

    def synthesise(self, input_ids, speaker_embedding=None, **kwargs):
        speaker = self.speaker(speaker_embedding).to(input_ids.device)
        return self.model.generate_speech(input_ids, speaker, vocoder=self.vocoder)


class VitsPipeline(TextToSpeechPipeline):
    """VITS / MMS-TTS: one forward pass of ``VitsModel``; ``speaking_rate`` as an option."""

    family = "VITS"
    call_options = (TTS_SEED, SPEAKING_RATE)

    @classmethod
    def build(cls, spec, device_manager, directory, trust_remote_code: bool = False, **options):
        tokenizer = load_tokenizer(directory, trust_remote_code)
        model = device_manager.place(load_auto("AutoModelForTextToWaveform", directory, trust_remote_code))
        return cls(spec, model, device_manager, tokenizer=tokenizer, directory=directory,
                   sampling_rate=model.config.sampling_rate, **options)

    def token_ids(self, text: str) -> list[int]:
        try:
            return super().token_ids(text)
        except ImportError as exc:  # tokenizers that phonemize (vits-ljs) need the phonemizer package
            from hub.errors import DependencyMissingError

            raise DependencyMissingError(f"the tokenizer of {self.spec.id} turns text into phonemes with the "
                                         f"'phonemizer' package, which is not installed ({exc}); install it with "
                                         "`pip install phonemizer` and the espeak-ng program") from None

    def speakable(self, text: str) -> bool:
        """VITS tokenizers drop what they cannot voice and put a blank between characters: any left?"""
        ids = self.token_ids(text)
        if getattr(self.tokenizer, "add_blank", False):
            ids = ids[1::2]
        special = set(self.tokenizer.all_special_ids)
        return any(i not in special for i in ids)

    def synthesise(self, input_ids, speaking_rate=None, **kwargs):
        return self.model(input_ids=input_ids, speaking_rate=speaking_rate).waveform


FAMILIES = {"speecht5": SpeechT5Pipeline, "vits": VitsPipeline}


def find_vocoder(spec, directory: Path) -> Path:
    """The vocoder's directory: the catalogue's ``options.vocoder`` source, else ``<model dir>/vocoder``."""
    from hub import weights
    from hub.registry import ModelSpec
    from mmhub_transformers.loading import WEIGHT_PATTERNS, check_weights

    source = (spec.options or {}).get("vocoder")
    if source:
        vocoder = ModelSpec(id=f"{spec.id} vocoder", task=spec.task, plugin=spec.plugin, source=str(source),
                            revision=(spec.options or {}).get("vocoder_revision"))
        found = weights.resolve(vocoder, allow_patterns=WEIGHT_PATTERNS)
        check_weights(vocoder, found)
        return found
    local = directory / VOCODER_DIR
    if (local / "config.json").is_file():
        check_weights(spec, local)
        return local
    raise WeightsError(f"SpeechT5 model '{spec.id}' needs its HiFi-GAN vocoder: save it in '{local}' "
                       "(SpeechT5HifiGan.save_pretrained), or name it in the catalogue entry as options: {vocoder: "
                       "hf-hub:microsoft/speecht5_hifigan}")


def read_speaker_embedding(path: Path, dim: int, model_id: str):
    """A float32 vector of ``dim`` values from a .npy file; OptionError naming the file and the fix otherwise."""
    import numpy as np

    wanted = f"{model_id} needs a .npy file of {dim} float values (shape ({dim},) or (1, {dim})), e.g. an x-vector"
    if not path.is_file():
        raise OptionError(f"option 'speaker_embedding': file '{path}' does not exist; {wanted}")
    try:
        array = np.load(str(path), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise OptionError(f"option 'speaker_embedding': '{path}' is not a .npy array file ({exc}); {wanted}, "
                          "saved with numpy.save") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu" or array.size != dim or \
            array.ndim > 2 or (array.ndim == 2 and array.shape[0] != 1):
        what = f"shape {getattr(array, 'shape', '?')}, dtype {getattr(array, 'dtype', type(array).__name__)}"
        raise OptionError(f"option 'speaker_embedding': '{path}' holds an array of {what}; {wanted}")
    vector = array.astype(np.float32).reshape(dim)
    if not np.isfinite(vector).all():
        raise OptionError(f"option 'speaker_embedding': '{path}' holds NaN or infinite values; {wanted}")
    return vector


def _file_key(path: Path) -> tuple:
    try:
        stat = path.stat()
    except OSError:
        return (str(path), None, None)
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
