"""Frozen teachers: loading, validation and mean-pooled sentence embeddings.

Each teacher tokenizes the raw text with its own tokenizer (its own pair encoding, longest-first
truncation, its own pad token; GPT-2 gets pad = eos), runs in eval mode under
``torch.inference_mode()`` and returns the masked mean of ``last_hidden_state`` over real tokens.
Rows are batched by length so that little padding is computed, and results are returned in the
original row order.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.errors import HubUnreachableError, RemoteCodeRefusedError, TeacherLoadError
from engine.events import CancellationToken
from engine.model_sources import PACKAGED_ALIASES, ModelSource, check_cached_when_offline, check_local_folder, folder_fingerprint, resolve_model_source
from engine.transformers_imports import transformers_module, transformers_names

log = logging.getLogger(__name__)

# Model types whose position ids start after the padding index, so that the usable length is
# max_position_embeddings − (pad_token_id + 1): RoBERTa's config says 514 but allows 512 tokens.
_OFFSET_POSITION_TYPES = ("roberta", "xlm-roberta", "camembert", "longformer", "bart", "mbart", "data2vec-text", "xmod")

_WEIGHT_SUFFIXES = (".safetensors",)
# Files a teacher folder must hold: for each kind, the patterns of which one must match (check_cached_when_offline).
TEACHER_REQUIRED_FILES = (("config.json",), ("*.safetensors", "*/*.safetensors"))


@dataclass(frozen=True)
class TeacherInfo:
    """What is known about a teacher before its weights are loaded."""

    spec: str
    label: str
    folder: Path
    model_type: str
    hidden_size: int
    position_limit: int | None
    fingerprint: str
    hub_id: str | None


def inspect_teacher(spec: str, *, trust_remote_code: bool = False, cancel: CancellationToken | None = None) -> TeacherInfo:
    """Resolve and validate a teacher without loading its weights.

    Raises TeacherLoadError (with the value and the fix) when the folder has no config, no
    tokenizer or no safetensors weights, and RemoteCodeRefusedError when the model needs its own
    code while ``trust_remote_code`` is off. A Hub download stops soon after ``cancel`` is set.
    """
    source = resolve_model_source(spec, what="teacher", cancel=cancel)
    config = _read_config(source)

    if "auto_map" in config and not trust_remote_code:
        raise RemoteCodeRefusedError(
            f"The teacher {spec!r} ships its own Python code (auto_map in config.json), which is not run by default.",
            "If you trust its authors, tick 'Trust remote code' (config: distillation.trust_remote_code = true); that code then runs on this computer.",
        )
    if "auto_map" in config:
        log.warning("Teacher %s runs custom code from %s because trust_remote_code is on.", spec, source.folder)

    if not any(p.suffix in _WEIGHT_SUFFIXES for p in source.folder.rglob("*")):
        if source.hub_id is not None:
            # Without internet access the Hub library serves whatever the cache holds, which after
            # an interrupted download can be the config without the weights.
            raise TeacherLoadError(
                f"The teacher {source.hub_id!r} has no safetensors weights in its Hugging Face cache folder {source.folder}.",
                "If its download was cut short (for example on a machine without internet access), run once more with internet "
                "access to complete it. If the model publishes only pickled .bin weights, which are not loaded, use another model.",
            )
        raise _no_weights_error(source.folder)

    hidden_size = _hidden_size(config)
    if hidden_size is None:
        raise TeacherLoadError(
            f"Cannot tell the hidden size of teacher {spec!r} from its config.json (model_type {config.get('model_type')!r}).",
            "Use an encoder or decoder model whose config has hidden_size, d_model or n_embd.",
        )

    return TeacherInfo(
        spec=spec,
        label=source.label,
        folder=source.folder,
        model_type=str(config.get("model_type", "")),
        hidden_size=hidden_size,
        position_limit=_position_limit(config),
        fingerprint=folder_fingerprint(source.folder),
        hub_id=source.hub_id,
    )


def check_teacher_folder(spec: str) -> None:
    """Reject a teacher given as a path that is not a folder, or has no config.json or weights, before a run is recorded.

    Hub ids and aliases pass unchecked.
    """
    check_local_folder(spec, what="teacher")
    spec = spec.strip()
    path = Path(spec).expanduser()
    if spec.lower() in PACKAGED_ALIASES or not path.is_dir():
        return
    if not (path / "config.json").is_file():
        raise _no_config_error(path.resolve())
    if not any(p.suffix in _WEIGHT_SUFFIXES for p in path.rglob("*")):
        raise _no_weights_error(path.resolve())


def check_teacher_sources(specs: Sequence[str]) -> None:
    """Raise one error that names every teacher a run would reject before it is recorded.

    These are folders that ``check_teacher_folder`` rejects and, with an offline variable set, Hub
    ids missing from the local cache. One error for all, so that the paper preset's three Hub
    teachers offline are found in one try, not one per try.
    """
    failures: list[TeacherLoadError | HubUnreachableError] = []
    for spec in specs:
        try:
            check_teacher_folder(spec)
            check_cached_when_offline(spec, what="teacher", required=TEACHER_REQUIRED_FILES)
        except (TeacherLoadError, HubUnreachableError) as error:
            failures.append(error)
    if not failures:
        return
    if len(failures) == 1:
        raise failures[0]
    # The offline hint, shared by all missing Hub ids, is written for one model.
    plural = {"download it": "download them", "spelling of the id": "spelling of the ids"}
    hint_texts = []
    for hint in dict.fromkeys(error.hint for error in failures if error.hint):
        if sum(error.hint == hint for error in failures) > 1:
            for singular, several in plural.items():
                hint = hint.replace(singular, several)
        hint_texts.append(hint)
    hints = " ".join(hint_texts)
    messages = " ".join(error.message for error in failures)
    count = f"None of the {len(specs)} teachers" if len(failures) == len(specs) else f"{len(failures)} of the {len(specs)} teachers"
    verb = "can" if len(failures) == len(specs) else "cannot"
    raise type(failures[0])(f"{count} {verb} be used. {messages}", hints)


def _no_config_error(folder: Path) -> TeacherLoadError:
    return TeacherLoadError(
        f"The teacher folder {folder} has no config.json, so it is not a Hugging Face model folder.",
        "Choose the folder that contains config.json (the one written by save_pretrained).",
    )


def _no_weights_error(folder: Path) -> TeacherLoadError:
    return TeacherLoadError(
        f"The teacher folder {folder} has no safetensors weights (model.safetensors).",
        "Convert the weights to safetensors, or use a model that provides them; pickled .bin weights are not loaded.",
    )


def _read_config(source: ModelSource) -> dict:
    path = source.folder / "config.json"
    if not path.is_file():
        raise _no_config_error(source.folder)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TeacherLoadError(f"{path} cannot be read: {error}.", "Restore the file or download the model again.") from None


def _hidden_size(config: dict) -> int | None:
    for key in ("hidden_size", "d_model", "n_embd", "dim"):
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    text_config = config.get("text_config")
    return _hidden_size(text_config) if isinstance(text_config, dict) else None


def _position_limit(config: dict) -> int | None:
    limit = None
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            limit = value
            break
    if limit is not None and config.get("model_type") in _OFFSET_POSITION_TYPES:
        limit -= int(config.get("pad_token_id") or 0) + 1
    return limit


def check_sequence_length(info: TeacherInfo, max_seq_len: int) -> None:
    """Raise TeacherLoadError when ``max_seq_len`` exceeds the teacher's position limit."""
    if info.position_limit is not None and max_seq_len > info.position_limit:
        raise TeacherLoadError(
            f"student.max_seq_len = {max_seq_len} exceeds the position limit of teacher {info.label} ({info.position_limit} tokens).",
            f"Set the max sequence length to at most {info.position_limit}.",
        )


class TeacherEncoder:
    """A loaded, frozen teacher; ``forward_passes`` counts model calls (for cache tests)."""

    def __init__(self, info: TeacherInfo, device: torch.device, *, trust_remote_code: bool = False) -> None:
        AutoModel, AutoTokenizer = transformers_names("AutoModel", "AutoTokenizer")
        transformers_logging = transformers_module("transformers.utils.logging")

        # The per-tensor "Loading weights" bar would garble the CLI's progress line.
        transformers_logging.disable_progress_bar()
        self.info = info
        self.device = device
        self.forward_passes = 0
        folder = str(info.folder)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as error:
            raise TeacherLoadError(
                f"The tokenizer of teacher {info.label} could not be loaded from {folder}: {error}.",
                "The folder needs tokenizer files (tokenizer.json, or vocab.txt / vocab.json + merges.txt with tokenizer_config.json).",
            ) from None
        if self.tokenizer.pad_token is None:
            # Decoder-only models such as GPT-2 have no pad token; right padding with eos and an
            # attention mask leaves the real tokens' hidden states unchanged.
            if self.tokenizer.eos_token is None:
                raise TeacherLoadError(f"The tokenizer of teacher {info.label} has neither a pad nor an eos token.", "Use a tokenizer that defines one.")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"

        dtype = torch.float16 if device.type == "cuda" else torch.float32
        try:
            model = AutoModel.from_pretrained(folder, trust_remote_code=trust_remote_code, dtype=dtype, use_safetensors=True)
        except (OSError, ValueError, KeyError) as error:
            raise TeacherLoadError(
                f"The weights of teacher {info.label} could not be loaded from {folder}: {error}.",
                "Check that the folder holds a complete model saved with save_pretrained, or download it again.",
            ) from None
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        self.model = model.to(device).eval().requires_grad_(False)

    def embed(
        self,
        texts_a: tuple[str, ...],
        texts_b: tuple[str, ...] | None,
        max_seq_len: int,
        batch_size: int,
        on_progress: Callable[[int, int], None] | None = None,
        cancel: CancellationToken | None = None,
    ) -> np.ndarray:
        """Return the (N, hidden) float32 mean-pooled embeddings of the rows, in their order."""
        max_length = min(max_seq_len, self.info.position_limit or max_seq_len)
        encoded = self.tokenizer(
            list(texts_a),
            list(texts_b) if texts_b is not None else None,
            truncation="longest_first" if texts_b is not None else True,
            max_length=max_length,
        )
        _fill_empty_rows(encoded, self.tokenizer)
        lengths = np.fromiter((len(ids) for ids in encoded["input_ids"]), dtype=np.int64, count=len(texts_a))
        order = np.argsort(lengths, kind="stable")
        names = [name for name in self.tokenizer.model_input_names if name in encoded]
        output = np.zeros((len(texts_a), self.info.hidden_size), dtype=np.float32)

        for start in range(0, len(order), batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled()
            rows = order[start : start + batch_size]
            features = self.tokenizer.pad({name: [encoded[name][i] for i in rows] for name in names}, return_tensors="pt")
            output[rows] = self._pooled(features)
            if on_progress is not None:
                on_progress(min(start + batch_size, len(order)), len(order))
        return output

    def _pooled(self, features: dict[str, torch.Tensor]) -> np.ndarray:
        features = {name: tensor.to(self.device) for name, tensor in features.items()}
        with torch.inference_mode():
            hidden = self.model(**features).last_hidden_state.float()
        self.forward_passes += 1
        mask = features["attention_mask"].to(hidden.dtype)[:, :, None]
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return pooled.cpu().numpy()

    def release(self) -> None:
        """Free the weights now, so that the next teacher has the device memory to itself."""
        del self.model
        # Only the main thread collects: a collection on a worker thread of a GUI application can
        # destroy Qt widgets there and deadlock it. The GUI collects on its own thread instead.
        if threading.current_thread() is threading.main_thread():
            gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _fill_empty_rows(encoded: dict, tokenizer) -> None:
    """Give rows that tokenized to nothing (an empty sentence for GPT-2) one eos/pad token."""
    filler = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id
    for index, ids in enumerate(encoded["input_ids"]):
        if len(ids) == 0:
            encoded["input_ids"][index] = [filler]
            for name in ("attention_mask", "token_type_ids", "special_tokens_mask"):
                if name in encoded:
                    encoded[name][index] = [1 if name == "attention_mask" else 0]
