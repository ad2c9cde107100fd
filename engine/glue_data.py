"""GLUE rows from the Hugging Face Hub (``nyu-mll/glue``) or a local glue_data folder.

The local reader follows the files written by the usual ``download_glue_data.py``: tab-separated,
UTF-8 with or without a byte-order mark, no quoting (quotes are part of the text), a header row
except for CoLA. Every row that cannot be parsed is reported with its file and line number.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine.errors import DataError, HubUnreachableError, MalformedRowsError, RunCancelled
from engine.events import CancellationToken
from engine.model_sources import offline_variable
from engine.tasks import GlueTask

log = logging.getLogger(__name__)

HUB_DATASET = "nyu-mll/glue"
# How often a run waiting for a Hub download looks at its cancellation token.
CANCEL_POLL_S = 0.2
MISSING_LABEL = -1


@dataclass(frozen=True)
class GlueSplit:
    """The rows of one split: text fields, labels (-1 where the split has none) and their origin.

    ``row_ids`` name each row as GLUE submissions do: the file's ``index`` column (the Hub's
    ``idx``), or else the row's position among the file's data rows, counted from 0.
    """

    task: str
    split: str
    texts_a: tuple[str, ...]
    texts_b: tuple[str, ...] | None
    labels: np.ndarray
    source: str
    row_ids: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.texts_a)

    def select(self, indices: np.ndarray | list[int], split: str | None = None) -> "GlueSplit":
        """Return the rows at ``indices`` as a new split (used for the held-out slice)."""
        indices = [int(i) for i in indices]
        return GlueSplit(
            task=self.task,
            split=split or self.split,
            texts_a=tuple(self.texts_a[i] for i in indices),
            texts_b=tuple(self.texts_b[i] for i in indices) if self.texts_b is not None else None,
            labels=self.labels[indices],
            source=self.source,
            row_ids=tuple(self.row_ids[i] for i in indices) if self.row_ids is not None else None,
        )

    def fingerprint(self) -> str:
        """SHA-256 of the exact texts, in order; it keys the teacher-embedding cache."""
        digest = hashlib.sha256()
        for index, text in enumerate(self.texts_a):
            digest.update(text.encode("utf-8"))
            digest.update(b"\x1f")
            if self.texts_b is not None:
                digest.update(self.texts_b[index].encode("utf-8"))
            digest.update(b"\x1e")
        return digest.hexdigest()

    def rows_fingerprint(self) -> str:
        """SHA-256 of the texts and the labels; a checkpoint keeps it per split to recognise its rows."""
        return hashlib.sha256(self.fingerprint().encode() + np.ascontiguousarray(self.labels).tobytes()).hexdigest()

    @property
    def has_labels(self) -> bool:
        return bool(np.any(self.labels != MISSING_LABEL))


def load_split(
    task: GlueTask,
    split: str,
    glue_dir: str | Path | None = None,
    limit: int | None = None,
    skip_malformed_rows: bool = False,
    cancel: CancellationToken | None = None,
) -> GlueSplit:
    """Load one split ("train", a dev split's Hub name, or "test") from the Hub or a local folder.

    Waiting for a Hub download stops soon after ``cancel`` is set (see ``_wait_cancellable``).
    """
    if glue_dir is None:
        return _load_from_hub(task, split, limit, cancel)
    return read_glue_tsv(task, _tsv_path(task, split, Path(glue_dir)), split, limit, skip_malformed_rows)


def validate_glue_dir(task: GlueTask, glue_dir: str | Path) -> list[Path]:
    """Check that ``glue_dir`` has the task's train and dev files; return their paths.

    Raises DataError naming the missing folder or file. The rows are parsed later, by the run.
    """
    folder = Path(glue_dir).expanduser()
    paths = [_tsv_path(task, "train", folder)]
    paths += [_tsv_path(task, dev.hub_split, folder) for dev in task.dev_splits]
    return paths


def _tsv_path(task: GlueTask, split: str, glue_dir: Path) -> Path:
    if not glue_dir.is_dir():
        raise DataError(
            f"The glue_data folder {str(glue_dir)!r} does not exist or is not a folder.",
            "Choose the folder that contains SST-2/, MRPC/, ... (the output of download_glue_data.py).",
        )

    file_names = {"train": "train.tsv", "test": "test.tsv"}
    file_names.update({dev.hub_split: dev.tsv_file for dev in task.dev_splits})
    if split not in file_names:
        raise DataError(f"Task {task.title} has no split {split!r}.", f"Use one of {', '.join(file_names)}.")

    task_dir = glue_dir / task.folder
    if not task_dir.is_dir():
        present = sorted(p.name for p in glue_dir.iterdir() if p.is_dir())
        raise DataError(
            f"The glue_data folder {str(glue_dir)!r} has no {task.folder}/ folder for task {task.title}"
            f" (it has: {', '.join(present) or 'no task folders'}).",
            f"Download {task.title} into {task_dir} or choose another task.",
        )
    path = task_dir / file_names[split]
    if not path.is_file():
        raise DataError(
            f"{path} is missing, so the {split} split of {task.title} cannot be loaded.",
            f"Put {file_names[split]} into {task_dir} (the glue_data layout) or load the task from the Hub.",
        )
    return path


def read_glue_tsv(
    task: GlueTask,
    path: Path,
    split: str = "train",
    limit: int | None = None,
    skip_malformed_rows: bool = False,
) -> GlueSplit:
    """Parse one glue_data TSV file with quoting off, collecting every malformed row."""
    lines = _decode_lines(path)
    header: list[str] | None = None
    text_fields = task.tsv_fields
    if task.has_header:
        if not lines:
            raise DataError(f"{path} is empty.", "Restore the file from the GLUE download.")
        header = lines[0][1].split("\t")
        lines = lines[1:]
    elif lines and lines[0][1].startswith("index\t"):
        # CoLA's test file has a header (index, sentence); its train and dev files have none.
        header = lines[0][1].split("\t")
        lines = lines[1:]
        text_fields = task.hub_fields

    text_columns, label_column = _resolve_columns(task, path, header, labelled=split != "test", text_fields=text_fields)
    width = len(header) if header is not None else None
    index_column = header.index("index") if header is not None and "index" in header else None

    texts_a: list[str] = []
    texts_b: list[str] = []
    labels: list[float] = []
    row_ids: list[str] = []
    malformed: list[tuple[int, str]] = []
    position = -1
    for line_number, line in lines:
        if limit is not None and len(texts_a) >= limit:
            break
        if line == "":
            continue
        position += 1
        cells = line.split("\t")
        problem = _row_problem(cells, width, text_columns, label_column)
        label = MISSING_LABEL
        # A file read as a test split may leave some labels empty: those rows are not scored.
        unlabelled = split == "test" and label_column is not None and problem is None and cells[label_column].strip() == ""
        if problem is None and label_column is not None and not unlabelled:
            label, problem = _parse_label(task, cells[label_column])
        if problem is not None:
            malformed.append((line_number, problem))
            continue
        texts_a.append(cells[text_columns[0]])
        if len(text_columns) == 2:
            texts_b.append(cells[text_columns[1]])
        labels.append(label)
        row_ids.append(cells[index_column] if index_column is not None else str(position))

    if malformed:
        if not skip_malformed_rows:
            raise MalformedRowsError(
                str(path), malformed,
                "Fix or delete these lines, or skip them with --skip-malformed-rows (GUI: 'Skip malformed rows'; config: data.skip_malformed_rows).",
            )
        for line_number, problem in malformed:
            log.warning("Skipped %s line %d: %s", path, line_number, problem)
    if not texts_a and split != "test":
        # A split without rows would train on nothing or leave the run without dev metrics.
        skipped = f" All {len(malformed)} rows were malformed and skipped." if malformed else ""
        raise DataError(f"{path} has no data rows.{skipped}", f"Restore the file from the GLUE download of {task.title}.")

    label_dtype = np.float32 if task.is_regression else np.int64
    return GlueSplit(
        task=task.name,
        split=split,
        texts_a=tuple(texts_a),
        texts_b=tuple(texts_b) if len(text_columns) == 2 else None,
        labels=np.asarray(labels, dtype=label_dtype),
        source=str(path),
        row_ids=tuple(row_ids),
    )


def _decode_lines(path: Path) -> list[tuple[int, str]]:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"Cannot read {path}: {error.strerror}.", "Check that the file exists and is readable.") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]

    lines: list[tuple[int, str]] = []
    bad: list[tuple[int, str]] = []
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        try:
            lines.append((number, chunk.decode("utf-8").removesuffix("\r")))
        except UnicodeDecodeError as error:
            bad.append((number, f"invalid UTF-8 at byte {error.start} of the line"))
    if bad:
        raise MalformedRowsError(str(path), bad, "Re-save the file as UTF-8.")

    if lines and lines[-1][1] == "":
        lines.pop()
    return lines


def _resolve_columns(
    task: GlueTask, path: Path, header: list[str] | None, labelled: bool, text_fields: tuple[str | int, ...]
) -> tuple[list[int], int | None]:
    """Return the text columns and the label column; a test file (``labelled`` False) may lack the label."""
    if header is None:
        text_columns = [int(c) for c in text_fields]
        return text_columns, int(task.tsv_label)

    needed = list(text_fields) + ([task.tsv_label] if labelled else [])
    missing = [str(name) for name in needed if name not in header]
    if missing:
        raise DataError(
            f"{path} has no column {missing[0]!r} in its header (found: {', '.join(header)}).",
            f"Check that the file belongs to {task.title} and is in the glue_data layout.",
        )
    text_columns = [header.index(str(name)) for name in text_fields]
    # Test files carry no label column; their rows get the label -1.
    label_column = header.index(str(task.tsv_label)) if task.tsv_label in header else None
    return text_columns, label_column


def _row_problem(cells: list[str], width: int | None, text_columns: list[int], label_column: int | None) -> str | None:
    needed = max(text_columns + ([label_column] if label_column is not None else [])) + 1
    if width is not None and len(cells) != width:
        return f"expected {width} tab-separated fields, found {len(cells)}"
    if len(cells) < needed:
        return f"expected at least {needed} tab-separated fields, found {len(cells)}"
    return None


def _parse_label(task: GlueTask, cell: str) -> tuple[float, str | None]:
    value = cell.strip()
    if task.is_regression:
        try:
            score = float(value)
        except ValueError:
            return MISSING_LABEL, f"label {cell!r} is not a number"
        if not math.isfinite(score):
            return MISSING_LABEL, f"label {cell!r} is not a finite number"
        if task.score_range is not None and not task.score_range[0] <= score <= task.score_range[1]:
            low, high = task.score_range
            return MISSING_LABEL, f"score {score:g} is outside the task's scale {low:g}..{high:g}"
        return score, None

    if task.tsv_label_values:
        if value not in task.tsv_label_values:
            return MISSING_LABEL, f"label {cell!r} is not one of {', '.join(task.tsv_label_values)}"
        return task.tsv_label_values[value], None

    if not value.lstrip("-").isdigit():
        return MISSING_LABEL, f"label {cell!r} is not a whole number"
    label = int(value)
    if not 0 <= label < task.num_labels:
        return MISSING_LABEL, f"label {label} is outside 0..{task.num_labels - 1}"
    return label, None


def hub_rows_offline() -> bool:
    """Return whether the datasets library reads GLUE rows from its local cache only (an offline variable is set)."""
    return rows_offline_variable() is not None


def rows_offline_variable() -> str | None:
    """Return the offline variable that keeps the datasets library from downloading GLUE rows, or None."""
    return offline_variable() or offline_variable(("HF_DATASETS_OFFLINE",))


def _load_from_hub(task: GlueTask, split: str, limit: int | None, cancel: CancellationToken | None = None) -> GlueSplit:
    import datasets  # imported here because it is slow to import and only this path needs it

    split_spec = f"{split}[:{limit}]" if limit is not None else split
    try:
        rows = _wait_cancellable(lambda: datasets.load_dataset(HUB_DATASET, task.name, split=split_spec), cancel, f"{task.title} {split}")
    except RunCancelled:
        raise
    except ValueError as error:
        if "split" in str(error).lower():
            raise DataError(f"{HUB_DATASET}/{task.name} has no split {split!r}.", "Choose another split.") from error
        raise _hub_error(task, error) from error
    except Exception as error:  # datasets raises many connection and cache error types
        raise _hub_error(task, error) from error

    texts = [list(map(str, rows[name])) for name in task.hub_fields]
    label_dtype = np.float32 if task.is_regression else np.int64
    return GlueSplit(
        task=task.name,
        split=split,
        texts_a=tuple(texts[0]),
        texts_b=tuple(texts[1]) if len(texts) == 2 else None,
        labels=np.asarray(rows["label"], dtype=label_dtype),
        source=f"hf://{HUB_DATASET}/{task.name}",
        row_ids=tuple(str(index) for index in rows["idx"]) if "idx" in rows.column_names else None,
    )


def _wait_cancellable(load: Callable[[], Any], cancel: CancellationToken | None, download: str) -> Any:
    """Return ``load()``, run on a helper thread so that a cancellation need not wait for it.

    datasets offers no way to stop a download. On cancellation the helper thread is left to
    finish or fail in the background (a daemon, so it does not hold the process at exit), and
    RunCancelled is raised at once.
    """
    if cancel is None:
        return load()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = load()
        except BaseException as error:  # handed to the waiting thread, which raises it
            outcome["error"] = error

    helper = threading.Thread(target=run, name=f"glue-download {download}", daemon=True)
    helper.start()
    while helper.is_alive():
        if cancel.cancelled:
            log.info("Stopped waiting for the GLUE download of %s; it finishes in the background", download)
            cancel.raise_if_cancelled()
        helper.join(timeout=CANCEL_POLL_S)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _hub_error(task: GlueTask, error: Exception) -> HubUnreachableError:
    log.debug("Hub load of %s failed", task.name, exc_info=error)
    return HubUnreachableError(
        f"Could not load GLUE task {task.title} from the Hugging Face Hub ({HUB_DATASET}): {type(error).__name__}: {error}.",
        "Connect to the internet (and unset HF_HUB_OFFLINE / HF_DATASETS_OFFLINE), "
        "or download glue_data and choose its folder (CLI: --data-dir).",
    )
