"""Run configuration: a frozen dataclass tree, validated on construction, stored as JSON.

Each field carries metadata (label, help text, allowed values, bounds) that both the validation
below and the GUI's configuration form read, so the two cannot disagree. A stored config can be
turned back into a ``RunConfig`` with ``RunConfig.from_dict`` to re-run or resume a run.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Iterator

from engine.errors import ConfigError
from engine.model_sources import model_identity, short_model_name
from resources import resource_path
from engine.tasks import normalize_task_name

SCHEMA_VERSION = 1

EMBEDDINGS = ("prime-harmonic", "learned", "prime-harmonic+learned")
MIXERS = ("logphase", "softmax", "spectral")
SPECTRAL_FILTERS = ("logphase", "learned")
WEIGHTINGS = ("confidence", "uniform", "fixed")
DISTILL_LOSSES = ("mse", "cosine")
DEVICES = ("auto", "cpu", "cuda")
PADDING_MODES = ("bucketed", "longest", "max_length")

# Largest FFN width accepted, so that a typo such as d_ff=1000000 fails early with a message.
_MAX_WIDTH = 16384


def option(
    default: Any,
    *,
    label: str,
    help: str,
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    optional: bool = False,
    unit: str = "",
) -> Any:
    """Declare a config field with the metadata that validation and the GUI form read."""
    metadata = {
        "label": label,
        "help": help,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "exclusive_minimum": exclusive_minimum,
        "optional": optional,
        "unit": unit,
    }
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _describe_allowed(meta: dict[str, Any]) -> str:
    if meta["choices"]:
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    low, high = meta["minimum"], meta["maximum"]
    low_op = ">" if meta["exclusive_minimum"] else ">="
    if low is not None and high is not None:
        return f"a number {low_op} {low} and <= {high}"
    if low is not None:
        return f"a number {low_op} {low}"
    if high is not None:
        return f"a number <= {high}"
    return "a valid value"


class _Section:
    """Shared validation for config sections; subclasses are frozen dataclasses."""

    SECTION: ClassVar[str] = ""

    @classmethod
    def _path(cls, name: str) -> str:
        return f"{cls.SECTION}.{name}" if cls.SECTION else name

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _validate_fields(self) -> None:
        for spec in fields(self):
            if not spec.metadata:
                continue
            value = getattr(self, spec.name)
            self._set(spec.name, self._check_value(spec, value))

    @classmethod
    def _check_value(cls, spec: dataclasses.Field, value: Any) -> Any:
        """Check one value against its field's type, choices and bounds; return it normalised."""
        meta = spec.metadata
        path = cls._path(spec.name)
        kind = str(spec.type).split("|")[0].strip()

        if value is None:
            if meta["optional"]:
                return None
            raise ConfigError(path, "is missing.", f"Set it to {_describe_allowed(meta)}.")

        if kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(path, f"{value!r} is not true or false.", "Use true or false.")
            return value

        if kind.startswith("tuple"):
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise ConfigError(path, f"{value!r} is not a list.", "Give a list of values.")
            return tuple(value)

        if kind in ("int", "float"):
            return cls._check_number(path, meta, value, integer=kind == "int")

        if not isinstance(value, str):
            raise ConfigError(path, f"{value!r} is not text.", "Give a string.")
        if meta["choices"] is not None and value not in meta["choices"]:
            raise ConfigError(path, f"{value!r} is not allowed.", f"Use {_describe_allowed(meta)}.")
        return value

    @staticmethod
    def _check_number(path: str, meta: dict[str, Any], value: Any, *, integer: bool) -> float | int:
        if isinstance(value, bool):
            raise ConfigError(path, f"{value!r} is not a number.", f"Use {_describe_allowed(meta)}.")
        if not isinstance(value, (int, float)):
            try:
                value = float(value) if not integer else int(str(value))
            except (TypeError, ValueError):
                kind = "a whole number" if integer else "a number"
                raise ConfigError(path, f"{value!r} is not {kind}.", f"Use {_describe_allowed(meta)}.") from None
        if integer:
            if isinstance(value, float) and not value.is_integer():
                raise ConfigError(path, f"{value!r} is not a whole number.", f"Use {_describe_allowed(meta)}.")
            value = int(value)
        elif not math.isfinite(value):
            raise ConfigError(path, f"{value!r} is not a finite number.", f"Use {_describe_allowed(meta)}.")

        low, high = meta["minimum"], meta["maximum"]
        too_low = low is not None and (value <= low if meta["exclusive_minimum"] else value < low)
        too_high = high is not None and value > high
        if too_low or too_high:
            raise ConfigError(path, f"{value!r} is out of range.", f"Use {_describe_allowed(meta)}.")
        return value


@dataclass(frozen=True)
class DataConfig(_Section):
    """Source of the GLUE rows and the number of rows used."""

    SECTION: ClassVar[str] = "data"

    glue_dir: str | None = option(
        None,
        optional=True,
        label="glue_data folder",
        help="Folder in the glue_data TSV layout (SST-2/train.tsv, ...). Empty: load nyu-mll/glue from the Hugging Face Hub.",
    )
    train_limit: int | None = option(
        None, optional=True, minimum=1, maximum=10**8, label="Train rows",
        help="Use only the first N training rows (empty: all).",
    )
    dev_limit: int | None = option(
        None, optional=True, minimum=1, maximum=10**8, label="Dev rows",
        help="Evaluate on only the first N validation rows (empty: all).",
    )
    heldout_fraction: float = option(
        0.05, minimum=0.0, maximum=0.5, exclusive_minimum=True, label="Held-out fraction",
        help="Fraction of the training rows held out for model selection; never trained on.",
    )
    skip_malformed_rows: bool = option(
        False, label="Skip malformed rows",
        help="Skip TSV rows that cannot be parsed (each is logged with its line) instead of failing.",
    )

    def __post_init__(self) -> None:
        if self.glue_dir == "":
            self._set("glue_dir", None)
        self._validate_fields()


@dataclass(frozen=True)
class StudentConfig(_Section):
    """Shape and method switches of the ΨQRH student."""

    SECTION: ClassVar[str] = "student"

    tokenizer: str = option(
        "gpt2", label="Student tokenizer",
        help="Hugging Face tokenizer id, alias (gpt2, distilbert, roberta, minilm) or local folder.",
    )
    pair_separator: str = option(
        "\n", label="Pair separator",
        help="Text placed between the two sentences of a pair when the tokenizer has no pair encoding (GPT-2).",
    )
    max_seq_len: int = option(128, minimum=4, maximum=8192, label="Max sequence length", help="Tokens per input after truncation.", unit="tokens")
    d_model: int = option(256, minimum=8, maximum=_MAX_WIDTH, label="d_model", help="Width of the student's hidden states.")
    n_layers: int = option(4, minimum=1, maximum=96, label="Layers", help="Number of residual blocks.")
    n_heads: int = option(8, minimum=1, maximum=256, label="Heads", help="Heads per token mixer; must divide d_model.")
    d_ff: int | None = option(
        None, optional=True, minimum=1, maximum=4 * _MAX_WIDTH, label="FFN size",
        help="Hidden width of the feed-forward layer (empty: 4 × d_model).",
    )
    dropout: float = option(0.1, minimum=0.0, maximum=0.9, label="Dropout", help="Dropout probability in every block.")
    embedding: str = option(
        "prime-harmonic", choices=EMBEDDINGS, label="Token embedding",
        help="prime-harmonic: fixed sin+cos features of the token id; learned: an ordinary embedding table; or their sum.",
    )
    n_primes: int = option(100, minimum=1, maximum=10000, label="Primes", help="Number of prime-harmonic features per token.")
    mixer: str = option(
        "logphase", choices=MIXERS, label="Token mixer",
        help="logphase: softmax attention on log-phase filtered Q and K; softmax: plain attention; spectral: FFT token mixing.",
    )
    n_fft: int | None = option(
        None, optional=True, minimum=8, maximum=65536, label="FFT length",
        help="Fixed FFT length of the spectral mixers; at least 2 × max_seq_len (empty: the next power of two).",
    )
    spectral_filter: str = option(
        "logphase", choices=SPECTRAL_FILTERS, label="Spectral filter",
        help="Filter of the spectral mixer: the fixed-shape log-phase all-pass filter or a learned complex filter per channel.",
    )
    quaternion_rotation: bool = option(
        True, label="Quaternion rotation",
        help="Rotate groups of 4 channels by learnable unit quaternions after spectral mixing.",
    )
    phase_alpha_init: float = option(
        1.0, minimum=0.1, maximum=3.0, label="Initial α (phase)",
        help="Initial strength of the log-phase filter; learned per layer and clamped to [0.1, 3].",
    )

    def __post_init__(self) -> None:
        self._validate_fields()

        if self.d_model % self.n_heads:
            divisors = [h for h in range(1, min(self.d_model, 64) + 1) if self.d_model % h == 0]
            raise ConfigError(
                self._path("n_heads"),
                f"{self.n_heads} does not divide d_model = {self.d_model}.",
                f"Use a divisor of d_model, e.g. {', '.join(map(str, divisors[-6:]))}.",
            )
        if self.mixer == "spectral" and self.quaternion_rotation and self.d_model % 4:
            raise ConfigError(
                self._path("d_model"),
                f"{self.d_model} is not a multiple of 4, which the quaternion rotation needs.",
                "Use a multiple of 4 or set student.quaternion_rotation to false.",
            )
        if self.n_fft is not None and self.n_fft < 2 * self.max_seq_len:
            raise ConfigError(
                self._path("n_fft"),
                f"{self.n_fft} is shorter than 2 × max_seq_len = {2 * self.max_seq_len}, so the FFT would wrap around.",
                "Leave it empty or set it to at least twice max_seq_len.",
            )

    @property
    def ffn_size(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    @property
    def fft_length(self) -> int:
        """FFT length of the spectral mixers: zero-padding to it makes the filtering a linear convolution."""
        if self.n_fft is not None:
            return self.n_fft
        return 1 << (2 * self.max_seq_len - 1).bit_length()


@dataclass(frozen=True)
class DistillationConfig(_Section):
    """Teachers, the loss mix and the per-teacher weighting."""

    SECTION: ClassVar[str] = "distillation"

    teachers: tuple[str, ...] = option(
        ("gpt2", "distilbert", "roberta"), label="Teachers",
        help="Teacher models: aliases (gpt2, distilbert, roberta, minilm), Hugging Face ids or local folders.",
    )
    alpha: float = option(0.7, minimum=0.0, maximum=1.0, label="α", help="Weight of the task loss; 1 − α goes to distillation.")
    distill_loss: str = option(
        "mse", choices=DISTILL_LOSSES, label="Distillation loss",
        help="Distance between a projected student embedding and a standardized teacher embedding.",
    )
    weighting: str = option(
        "confidence", choices=WEIGHTINGS, label="Teacher weighting",
        help="confidence: per example, from cross-validated probes of each teacher; uniform: 1/K; fixed: the weights below. "
        "With one teacher, its weight is 1 in every mode.",
    )
    fixed_weights: tuple[float, ...] = option(
        (), label="Fixed weights", help="One non-negative weight per teacher, used with weighting = fixed; normalised to sum 1.",
    )
    temperature: float = option(
        1.0, minimum=0.0, maximum=100.0, exclusive_minimum=True, label="Temperature τ",
        help="Softmax temperature that turns teacher confidences into weights.",
    )
    probe_folds: int = option(5, minimum=2, maximum=20, label="Probe folds", help="Cross-validation folds of the confidence probes.")
    mask_fraction: float = option(0.10, minimum=0.0, maximum=0.9, label="Mask fraction", help="Fraction of the student's real tokens replaced by the mask (or unknown) token.")
    replace_fraction: float = option(0.05, minimum=0.0, maximum=0.9, label="Replace fraction", help="Fraction of the student's real tokens replaced by a random token.")
    trust_remote_code: bool = option(
        False, label="Trust remote code",
        help="Allow teachers whose repository ships its own Python code; that code then runs on this computer.",
    )
    extraction_batch_size: int = option(64, minimum=1, maximum=4096, label="Teacher batch size", help="Sentences per teacher forward pass.")

    def __post_init__(self) -> None:
        self._validate_fields()

        teachers = tuple(str(t).strip() for t in self.teachers)
        if not teachers:
            raise ConfigError(self._path("teachers"), "No teacher is chosen.", "Choose at least one teacher, such as minilm.")
        blank = [str(index) for index, teacher in enumerate(teachers, start=1) if not teacher]
        if blank:
            raise ConfigError(
                self._path("teachers"),
                f"Teacher {', '.join(blank)} of {len(teachers)} is empty.",
                "Give each teacher an alias, a Hugging Face id or a folder, or remove the empty entries.",
            )
        first_spelling: dict[str, str] = {}
        for teacher in teachers:
            earlier = first_spelling.setdefault(model_identity(teacher), teacher)
            if earlier == teacher and teachers.count(teacher) > 1:
                raise ConfigError(self._path("teachers"), f"{list(teachers)!r} lists a teacher twice.", "Remove the duplicate.")
            if earlier != teacher:
                raise ConfigError(
                    self._path("teachers"), f"{earlier!r} and {teacher!r} name the same teacher, which would count it twice.", "Remove one of them."
                )
        self._set("teachers", teachers)

        weights = self._check_weights()
        self._set("fixed_weights", weights)

        if self.mask_fraction + self.replace_fraction >= 1.0:
            raise ConfigError(
                self._path("replace_fraction"),
                f"mask_fraction + replace_fraction = {self.mask_fraction + self.replace_fraction} must be below 1.",
                "Lower one of them.",
            )

    def _check_weights(self) -> tuple[float, ...]:
        path = self._path("fixed_weights")
        try:
            weights = tuple(float(w) for w in self.fixed_weights)
        except (TypeError, ValueError):
            raise ConfigError(path, f"{list(self.fixed_weights)!r} contains a value that is not a number.", "Give one number per teacher.") from None
        if self.weighting != "fixed":
            return weights
        if len(weights) != len(self.teachers):
            raise ConfigError(
                path,
                f"{len(weights)} weight{'s' if len(weights) != 1 else ''} given for {len(self.teachers)} "
                f"teacher{'s' if len(self.teachers) != 1 else ''} ({', '.join(short_model_name(spec) for spec in self.teachers)}).",
                "Give exactly one weight per teacher, in the teachers' order.",
            )
        if any(not math.isfinite(w) or w < 0 for w in weights):
            raise ConfigError(path, f"{list(weights)!r} contains a negative or non-finite weight.", "Use weights >= 0.")
        if sum(weights) <= 0:
            raise ConfigError(path, f"{list(weights)!r} are all zero.", "Give at least one teacher a positive weight.")
        return weights

    @property
    def normalized_fixed_weights(self) -> tuple[float, ...]:
        total = sum(self.fixed_weights)
        return tuple(w / total for w in self.fixed_weights)


@dataclass(frozen=True)
class TrainingConfig(_Section):
    """Optimiser, schedule, evaluation cadence and device."""

    SECTION: ClassVar[str] = "training"

    epochs: int = option(5, minimum=1, maximum=10000, label="Epochs", help="Passes over the training rows.")
    batch_size: int = option(32, minimum=1, maximum=65536, label="Batch size", help="Examples per optimiser step.")
    learning_rate: float = option(
        5e-4, minimum=0.0, maximum=10.0, exclusive_minimum=True, label="Learning rate", help="Peak AdamW learning rate.",
    )
    weight_decay: float = option(0.01, minimum=0.0, maximum=10.0, label="Weight decay", help="AdamW decoupled weight decay.")
    warmup_fraction: float = option(0.06, minimum=0.0, maximum=0.9, label="Warmup fraction", help="Fraction of all steps spent in linear warmup before the cosine decay.")
    grad_clip: float = option(1.0, minimum=0.0, maximum=1e6, label="Gradient clipping", help="Maximum global gradient norm (0: no clipping).")
    seed: int = option(
        42, minimum=0, maximum=2**31 - 1, label="Seed",
        help="Seed for Python, NumPy and torch: the initial weights, the batch order, dropout, augmentation and which training rows are held out.",
    )
    device: str = option("auto", label="Device", help="auto (CUDA when available), cpu, cuda or cuda:N.")
    evals_per_epoch: int = option(2, minimum=1, maximum=1000, label="Evaluations per epoch", help="How often per epoch the held-out slice and the dev split are scored.")
    padding: str = option(
        "bucketed", choices=PADDING_MODES, label="Padding",
        help="bucketed: batches of similar-length rows padded to their longest row; longest: random batches padded "
        "to their longest row; max_length: every batch padded to max_seq_len. The padded length changes the random "
        "draws of dropout and augmentation, so compare padding modes over several seeds.",
    )
    amp: bool = option(
        True, label="Mixed precision",
        help="Autocast: bf16 on CUDA (fp16 with a gradient scaler where bf16 is missing) and on CPUs with native bf16; "
        "other CPUs train in fp32.",
    )
    compile: bool = option(False, label="torch.compile", help="Compile the student with torch.compile (slow start, faster steps on large runs).")
    checkpoint_every_steps: int = option(
        200, minimum=1, maximum=10**9, label="Checkpoint interval", help="Save a resumable checkpoint at every evaluation and at least every N steps.", unit="steps",
    )
    attention_probe: str = option(
        "The film was a delight from start to finish.", label="Probe sentence",
        help="Sentence whose token-mixing matrices are recorded at every evaluation.",
    )

    def __post_init__(self) -> None:
        self._validate_fields()
        device = self.device.strip().lower()
        if device not in DEVICES and not (device.startswith("cuda:") and device[5:].isdigit()):
            raise ConfigError(self._path("device"), f"{self.device!r} is not a device.", "Use auto, cpu, cuda or cuda:N.")
        self._set("device", device)
        if not self.attention_probe.strip():
            # Without words, the recorded map would be that of the special tokens alone.
            raise ConfigError(self._path("attention_probe"), "The probe sentence is empty.", f"Enter a sentence. The default is {TrainingConfig.attention_probe!r}")


@dataclass(frozen=True)
class RunConfig(_Section):
    """A complete, validated description of one distillation run."""

    SECTION: ClassVar[str] = ""

    task: str = option("sst2", label="GLUE task", help="One of the nine GLUE tasks.")
    name: str = option("", label="Run name", help="Free text shown in the history (empty: generated).")
    data: DataConfig = field(default_factory=DataConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    distillation: DistillationConfig = field(default_factory=DistillationConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        self._validate_fields()
        self._set("task", normalize_task_name(self.task))

        for spec, cls in _SECTIONS.items():
            value = getattr(self, spec)
            if isinstance(value, dict):
                self._set(spec, _section_from_dict(cls, value))
            elif not isinstance(value, cls):
                raise ConfigError(spec, f"expected a {cls.__name__}, got {type(value).__name__}.")

        if self.schema_version != SCHEMA_VERSION:
            raise ConfigError(
                "schema_version",
                f"{self.schema_version} is not supported by this version of Lampreia (schema {SCHEMA_VERSION}).",
                _schema_hint(self.schema_version),
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Build a config from a (possibly partial) dict; missing keys take their defaults."""
        if not isinstance(data, dict):
            raise ConfigError("config", f"expected a JSON object, got {type(data).__name__}.")
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ConfigError(
                "schema_version",
                f"{version!r} is not supported by this version of Lampreia (schema {SCHEMA_VERSION}).",
                _schema_hint(version),
            )
        _reject_unknown_keys("", data, {f.name for f in fields(cls)})
        kwargs = dict(data)
        for name, section_cls in _SECTIONS.items():
            kwargs[name] = _section_from_dict(section_cls, data.get(name, {}))
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError("config", f"The text is not valid JSON ({error}).", "Check it for a syntax error.") from None
        return cls.from_dict(data)

    def with_overrides(self, overrides: dict[str, Any]) -> "RunConfig":
        """Return a copy with dotted-path overrides applied, e.g. {"training.epochs": 3}."""
        data = self.to_dict()
        for path, value in overrides.items():
            target = data
            *parents, leaf = path.split(".")
            for part in parents:
                if part not in target or not isinstance(target[part], dict):
                    raise ConfigError(path, "is not a config field.")
                target = target[part]
            if leaf not in target:
                raise ConfigError(path, "is not a config field.")
            target[leaf] = value
        return RunConfig.from_dict(data)

    def flatten(self) -> dict[str, Any]:
        """Return the config as {dotted path: value}, for diffs and tables."""
        return flatten_dict(self.to_dict())


def flatten_dict(data: dict[str, Any]) -> dict[str, Any]:
    """Return nested dicts as {dotted path: value}, with lists as tuples so that values compare alike."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        else:
            flat[prefix] = tuple(value) if isinstance(value, list) else value

    walk("", data)
    return flat


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "student": StudentConfig,
    "distillation": DistillationConfig,
    "training": TrainingConfig,
}


def _schema_hint(version: Any) -> str:
    if isinstance(version, int) and version > SCHEMA_VERSION:
        return "The config was written by a newer Lampreia Workbench; upgrade lampreia-workbench to read it."
    return f"Set schema_version to {SCHEMA_VERSION}."


def _reject_unknown_keys(section: str, data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        where = f"section '{section}'" if section else "the config"
        raise ConfigError(
            f"{section}.{unknown[0]}" if section else unknown[0],
            f"{unknown[0]!r} is not a field of {where}.",
            _unknown_key_hint(unknown[0], allowed),
        )


def _unknown_key_hint(key: str, allowed: set[str]) -> str:
    """Return the allowed fields, led by the closest one to a misspelt ``key``."""
    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    guess = f"Did you mean {close[0]!r}? " if close else ""
    return f"{guess}Allowed fields: {', '.join(sorted(allowed))}."


def _json_type(value: Any) -> str:
    """Return the JSON name of a decoded value's type: array, string, boolean, number or null."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else type(value).__name__


def _section_from_dict(cls: type, data: Any) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(cls.SECTION, f"The section is a JSON {_json_type(data)}, not an object.", "Write it as {\"key\": value, ...}.")
    _reject_unknown_keys(cls.SECTION, data, {f.name for f in fields(cls)})
    return cls(**data)


def config_errors(data: dict[str, Any]) -> list[ConfigError]:
    """Return every invalid field of a config dict, not only the first one.

    Each field is first checked on its own (type, allowed values, bounds). The rules that relate
    several fields (heads dividing d_model, one weight per teacher) run on a section only once
    its fields are valid one by one, so one mistake is not reported twice.
    """
    errors: list[ConfigError] = []
    try:
        normalize_task_name(data.get("task", "sst2"))
    except ConfigError as error:
        errors.append(error)
    for section, cls in _SECTIONS.items():
        values = data.get(section, {})
        specs = {spec.name: spec for spec in fields(cls) if spec.metadata}
        section_errors = []
        for name, value in values.items():
            if name not in specs:
                section_errors.append(ConfigError(cls._path(name), f"{name!r} is not a field of section '{section}'.", _unknown_key_hint(name, set(specs))))
                continue
            try:
                cls._check_value(specs[name], value)
            except ConfigError as error:
                section_errors.append(error)
        if not section_errors:
            try:
                cls(**values)
            except ConfigError as error:
                section_errors.append(error)
        errors.extend(section_errors)

    if not errors:
        try:
            RunConfig.from_dict(data)
        except ConfigError as error:
            errors.append(error)
    return errors


def iter_field_specs(cls: type) -> Iterator[tuple[str, dataclasses.Field]]:
    """Yield (name, dataclass field) for each user-facing field of a config section."""
    for spec in fields(cls):
        if spec.metadata:
            yield spec.name, spec


def list_presets() -> list[str]:
    folder = resource_path("presets")
    return sorted(item.name.removesuffix(".json") for item in folder.iterdir() if item.name.endswith(".json"))


def load_preset(name: str) -> RunConfig:
    """Load a preset from ``resources/presets``; presets hold only what differs from the defaults."""
    key = name.strip().lower().replace(" ", "-").replace("_", "-")
    available = list_presets()
    if key not in available:
        raise ConfigError("preset", f"{name!r} is not a preset.", f"Use one of {', '.join(available)}.")
    text = resource_path("presets", f"{key}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    data.pop("description", None)
    return RunConfig.from_dict(data)


def preset_description(name: str) -> str:
    text = resource_path("presets", f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text).get("description", "")


def config_warnings(config: RunConfig) -> list[str]:
    """Return notes on valid settings that do less than they seem to, one sentence each."""
    warnings = []
    alpha = alpha_warning(config.distillation.alpha)
    if alpha:
        warnings.append(alpha)
    if config.distillation.weighting == "fixed" and len(config.distillation.teachers) == 1:
        warnings.append("With one teacher, its weight is 1 whatever the fixed weight, so the fixed weighting changes nothing.")
    return warnings


def alpha_warning(alpha: float) -> str | None:
    """Return a note when α leaves one of the two losses without weight, else None."""
    if alpha == 0.0:
        return (
            "With alpha 0 the task loss has no weight, so the classifier head is not trained and the dev metrics are those "
            "of an untrained head. Raise alpha above 0 to score the distilled student."
        )
    if alpha == 1.0:
        return (
            "With alpha 1 the distillation loss has no weight, so the teachers change nothing, although their embeddings "
            "are still extracted. Lower alpha below 1 to distil."
        )
    return None
