"""Predictions of a trained student: GLUE labels for the rows of a split or a TSV file.

A run's checkpoint (``best`` by default) contains the student's weights and the run config. With
the run's tokenizer they rebuild the student as it was evaluated. Predictions are written in the
GLUE submission format (``index`` and ``prediction`` columns, labels spelled as in the task's
TSV files), optionally with the gold label, the class probabilities and the text of each row for
error analysis. Rows with gold labels are scored with the task's metrics, so a prediction on the
run's own dev rows repeats the metrics the run recorded.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.checkpoints import read_checkpoint
from engine.config import RunConfig
from engine.devices import autocast_dtype, describe_device, describe_precision, select_device
from engine.errors import CheckpointError, ConfigError, DataError, LampreiaError, MalformedRowsError
from engine.events import CancellationToken
from engine.evaluation import LabelScaling, predict
from engine.glue_data import MISSING_LABEL, GlueSplit, load_split, read_glue_tsv
from engine.paths import replaced_text_file
from engine.run_store import RunRecord, RunStore
from engine.student import Student
from engine.tasks import TASKS, GlueTask, compute_metrics
from engine.tokenization import StudentTokenizer

log = logging.getLogger(__name__)

CHECKPOINTS = ("best", "last")


@dataclass(frozen=True)
class TrainedStudent:
    """A run's student rebuilt from one of its checkpoints, in eval mode, with what scoring needs."""

    run: RunRecord
    checkpoint: str
    step: int
    config: RunConfig
    task: GlueTask
    model: Student
    tokenizer: StudentTokenizer
    scaling: LabelScaling
    device: torch.device
    amp_dtype: torch.dtype | None
    # The run's metrics and per-split row fingerprints at the time it wrote the checkpoint. A
    # prediction on the same rows is reported beside these metrics.
    checkpoint_metrics: dict[str, float]
    split_fingerprints: dict[str, str]

    @property
    def batch_size(self) -> int:
        # The trainer's evaluation batch size: the same batches give the same rounding, so the
        # run's own dev rows get exactly the metrics it recorded.
        return min(2 * self.config.training.batch_size, 256)


@dataclass(frozen=True)
class Predictions:
    """The student's outputs for the rows of ``split``, in row order."""

    split: GlueSplit
    task: GlueTask
    predicted: np.ndarray  # class ids, or scores on the task's scale for STS-B
    probabilities: np.ndarray | None  # (rows, classes); None for STS-B
    metrics: dict[str, float]  # the task's metrics on the rows with gold labels; empty without

    @property
    def scored_rows(self) -> int:
        return int(np.sum(self.split.labels != MISSING_LABEL))


def load_trained_student(store: RunStore, run_id: int, checkpoint: str = "best", device: str = "auto") -> TrainedStudent:
    """Rebuild run ``run_id``'s student from its ``best`` or ``last`` checkpoint on ``device``.

    Raises CheckpointError when the run has no such checkpoint yet or it does not fit the student
    its config describes; LampreiaError for an unknown or unusable device.
    """
    record, path = find_checkpoint(store, run_id, checkpoint)
    return rebuild_student(record, path, checkpoint, device)


def find_checkpoint(store: RunStore, run_id: int, checkpoint: str = "best") -> tuple[RunRecord, Path]:
    """Return the run and the path of its ``best`` or ``last`` checkpoint (reads the store only).

    Raises CheckpointError naming the reason when the run has none yet.
    """
    if checkpoint not in CHECKPOINTS:
        raise LampreiaError(f"There is no checkpoint kind {checkpoint!r}.", f"Use one of: {', '.join(CHECKPOINTS)}.")
    record = store.get_run(run_id)
    recorded = store.artifacts(record.id)
    if checkpoint not in recorded:
        if record.status in ("queued", "running"):
            raise CheckpointError(f"Run {record.id} has no {checkpoint} checkpoint yet: it has not finished its first evaluation.", "Wait for it, or choose another run.")
        stopped = "failed" if record.status == "failed" else f"was {record.status}"
        raise CheckpointError(
            f"Run {record.id} has no {checkpoint} checkpoint: it {stopped} before its first evaluation.",
            f"Train it again (Run again in the history panel; CLI: lampreia run --from-run {record.id}), or choose a run that has evaluated once.",
        )
    path = recorded[checkpoint][0]
    if not path.is_file():
        other = next((kind for kind in CHECKPOINTS if kind != checkpoint and kind in recorded and recorded[kind][0].is_file()), None)
        instead = f"predict with the {other} checkpoint (CLI: --checkpoint {other}; in the window: Checkpoint), " if other else ""
        raise CheckpointError(
            f"The {checkpoint} checkpoint of run {record.id} is missing: {path} was deleted or moved.",
            f"Put the file back, {instead}or train the run again (Run again in the history panel; CLI: lampreia run --from-run {record.id}).",
        )
    return record, path


def rebuild_student(record: RunRecord, path: Path, checkpoint: str = "best", device: str = "auto") -> TrainedStudent:
    """Rebuild ``record``'s student from the checkpoint file at ``path``; needs no store, so any thread may call it."""
    target = _prediction_device(device)
    try:
        loaded = read_checkpoint(path, record.id)
    except CheckpointError as error:
        # Its hint is about resuming; a prediction can use the other checkpoint instead.
        other = "last" if checkpoint == "best" else "best"
        raise CheckpointError(
            error.message,
            f"Predict with the {other} checkpoint (CLI: --checkpoint {other}; in the window: Checkpoint), or train the run again "
            f"(Run again in the history panel; CLI: lampreia run --from-run {record.id}).",
        ) from None
    state = loaded.state

    try:
        config = RunConfig.from_dict(state["config"])
        vocab_size, num_labels, teacher_dims = int(state["vocab_size"]), int(state["num_labels"]), list(state["teacher_dims"])
    except (KeyError, TypeError, ValueError, ConfigError) as error:
        raise CheckpointError(f"The checkpoint {path} lacks the settings that rebuild its student ({error}).", "Train the run again.") from None
    task = TASKS[config.task]
    tokenizer = StudentTokenizer(config.student.tokenizer, config.student.max_seq_len, config.student.pair_separator)
    if tokenizer.vocab_size != vocab_size:
        raise CheckpointError(
            f"The student tokenizer {config.student.tokenizer!r} now has {tokenizer.vocab_size} tokens, "
            f"but run {record.id} trained with {vocab_size}: its files changed since the run.",
            f"Put back the tokenizer files that run {record.id} used ({tokenizer.source.folder}).",
        )

    model = Student(config.student, vocab_size, num_labels, teacher_dims)
    weights = {name.removeprefix("model."): tensor for name, tensor in loaded.tensors.items() if name.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(f"The checkpoint {path} does not fit the student of run {record.id}: {error}.", "Train the run again.") from None
    model.to(target).eval()

    mean, std = state.get("label_scaling", (0.0, 1.0))
    return TrainedStudent(
        run=record,
        checkpoint=checkpoint,
        step=int(state.get("step", 0)),
        config=config,
        task=task,
        model=model,
        tokenizer=tokenizer,
        scaling=LabelScaling(float(mean), float(std)),
        device=target,
        amp_dtype=autocast_dtype(target, config.training.amp),
        # The resume checkpoint can be written between evaluations (on a cancel), so only the best
        # checkpoint's metrics belong to its weights.
        checkpoint_metrics=dict(state.get("best_metrics") or {}) if checkpoint == "best" else {},
        split_fingerprints=dict(state.get("split_fingerprints") or {}),
    )


def _prediction_device(requested: str) -> torch.device:
    """Return the torch device for ``requested``, with messages that name the device option instead of the training config key."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", requested):
        raise LampreiaError(f"The device {requested!r} is not a device name.", "Use auto, cpu, cuda or cuda:N.")
    try:
        return select_device(requested)
    except ConfigError as error:
        raise LampreiaError(f"The device {error.reason}", error.hint) from None


def count(number: int, noun: str) -> str:
    """Return "1 row" or "872 rows"."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _rows_hint(task: GlueTask, file_name: str = "dev.tsv") -> str:
    return (
        f"Give the glue_data folder that contains {task.folder}/{file_name} (CLI: --data-dir DIR; in the window: the folder field), "
        "or the file itself (CLI: --input FILE; in the window: TSV file)."
    )


def _layout_words(task: GlueTask) -> str:
    return f"{task.title} rows under a header" if task.has_header else f"{task.title} rows (without a header, as in {task.title}'s train and dev files)"


def split_names(task: GlueTask) -> list[str]:
    """Return the split names a prediction accepts: the dev splits by their metric prefix, then train and test."""
    return [dev.prefix for dev in task.dev_splits] + ["train", "test"]


def load_prediction_rows(
    task: GlueTask,
    glue_dir: str | Path | None,
    *,
    split: str | None = None,
    input_file: Path | None = None,
    limit: int | None = None,
    skip_malformed_rows: bool = False,
) -> GlueSplit:
    """Load the rows to predict: a TSV file in the task's glue_data layout, or a split of ``glue_dir`` (the Hub for None).

    ``split`` is a dev split's metric prefix (``dev``, ``dev_matched``, …), ``train`` or ``test``.
    Without a file or a split, the rows are the task's first dev split.
    """
    if input_file is not None:
        rows = _read_input_file(task, Path(input_file).expanduser(), limit, skip_malformed_rows)
    else:
        name = split or task.dev_splits[0].prefix
        hub_names = {dev.prefix: dev.hub_split for dev in task.dev_splits} | {"train": "train", "test": "test"}
        if name not in hub_names:
            raise DataError(f"Task {task.title} has no split {name!r}.", f"Use one of: {', '.join(split_names(task))}.")
        file_name = {dev.prefix: dev.tsv_file for dev in task.dev_splits}.get(name, f"{name}.tsv")
        if glue_dir is not None and not Path(glue_dir).expanduser().is_dir():
            raise DataError(f"The glue_data folder {str(glue_dir)!r} does not exist or is not a folder.", _rows_hint(task, file_name))
        try:
            rows = load_split(task, hub_names[name], glue_dir, limit, skip_malformed_rows)
        except MalformedRowsError:
            raise
        except DataError as error:
            if glue_dir is None:
                raise
            # The loader's hint offers the Hub, which a prediction does not read from a local run.
            raise DataError(error.message, _rows_hint(task, file_name)) from None
    if len(rows) == 0:
        raise DataError(f"{rows.source} has no data rows to predict.", f"Give a file with {_layout_words(task)}.")
    return rows


def _read_input_file(task: GlueTask, path: Path, limit: int | None, skip_malformed_rows: bool) -> GlueSplit:
    if not path.is_file():
        raise DataError(f"The input file {path} does not exist or is not a file.", f"Give a TSV file in the {task.title} glue_data layout.")
    content = path.read_bytes()
    if not content.strip():
        raise DataError(f"The input file {path} is empty.", f"Give a TSV file with {_layout_words(task)}.")
    try:
        # Read as a test file: the label column is optional, and rows that have one are scored.
        return read_glue_tsv(task, path, "test", limit)
    except MalformedRowsError as error:
        # Another task's file fails on every line, so skipping its rows would leave none.
        lines = sum(1 for line in content.splitlines() if line.strip())
        if len(error.rows) >= lines:
            line, reason = error.rows[0]
            raise DataError(
                f"{path} is not a {task.title} file: none of its {count(lines, 'line')} parses as a {task.title} row (line {line}: {reason}).",
                f"Give a file with {_layout_words(task)}, or check that run and file belong to the same task.",
            ) from None
        if not skip_malformed_rows:
            raise
    return read_glue_tsv(task, path, "test", limit, skip_malformed_rows=True)


def predict_rows(trained: TrainedStudent, rows: GlueSplit) -> Predictions:
    """Run the student over ``rows`` and score the rows that have gold labels."""
    encoded = trained.tokenizer.encode(rows.texts_a, rows.texts_b)
    outputs = predict(
        trained.model,
        encoded,
        batch_size=trained.batch_size,
        device=trained.device,
        pad_id=trained.tokenizer.pad_id,
        amp_dtype=trained.amp_dtype,
    )
    task = trained.task
    if task.is_regression:
        predicted = outputs[:, 0] * trained.scaling.std + trained.scaling.mean
        probabilities = None
    else:
        predicted = outputs.argmax(axis=1)
        probabilities = torch.softmax(torch.from_numpy(outputs), dim=1).numpy()
    metrics = compute_metrics(task, predicted, rows.labels) if rows.has_labels else {}
    return Predictions(split=rows, task=task, predicted=predicted, probabilities=probabilities, metrics=metrics)


def label_text(task: GlueTask, value: float) -> str:
    """Spell a label or a prediction as the task's TSV files (and GLUE submissions) do."""
    if task.is_regression:
        return f"{value:.3f}"
    names = {index: name for name, index in task.tsv_label_values.items()}
    return names.get(int(value), str(int(value)))


def submission_table(predictions: Predictions, details: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Return the header and rows of a GLUE submission file: ``index`` and ``prediction``.

    ``details`` adds the gold label (empty where the row has none), one probability column per
    class (``p_<label name>``) and the text fields, named as on the Hub.
    """
    task, rows = predictions.task, predictions.split
    row_ids = rows.row_ids or tuple(str(position) for position in range(len(rows)))
    header = ["index", "prediction"]
    if details:
        header.append("label")
        if predictions.probabilities is not None:
            header += [f"p_{name}" for name in task.label_names]
        header += list(task.hub_fields)

    table: list[list[Any]] = []
    for position, row_id in enumerate(row_ids):
        line: list[Any] = [row_id, label_text(task, predictions.predicted[position])]
        if details:
            gold = rows.labels[position]
            line.append("" if gold == MISSING_LABEL else label_text(task, gold))
            if predictions.probabilities is not None:
                line += [f"{p:.4f}" for p in predictions.probabilities[position]]
            line.append(rows.texts_a[position])
            if rows.texts_b is not None:
                line.append(rows.texts_b[position])
        table.append(line)
    return header, table


def predict_to_file(
    record: RunRecord,
    checkpoint_path: Path,
    output: Path,
    *,
    checkpoint: str = "best",
    glue_dir: str | Path | None = None,
    split: str | None = None,
    input_file: Path | None = None,
    limit: int | None = None,
    details: bool = False,
    skip_malformed_rows: bool = False,
    cancel: CancellationToken | None = None,
) -> list[str]:
    """Predict the rows of a split of ``glue_dir`` (the Hub for None) or a file and write them to ``output``; return the report lines.

    It reads no store, so the window's Predictions dialog calls it on a worker thread. ``cancel``
    is checked between the steps, and a call cancelled before the write writes nothing.
    """
    cancel = cancel or CancellationToken()
    reject_output_over_input(input_file, output)
    trained = rebuild_student(record, checkpoint_path, checkpoint)
    cancel.raise_if_cancelled()
    rows = load_prediction_rows(trained.task, glue_dir, split=split, input_file=input_file, limit=limit, skip_malformed_rows=skip_malformed_rows)
    cancel.raise_if_cancelled()
    predictions = predict_rows(trained, rows)
    cancel.raise_if_cancelled()
    header, table = submission_table(predictions, details)
    try:
        with replaced_text_file(output) as handle:
            handle.writelines(tsv_line(cells) for cells in [header, *table])
    except OSError as error:
        raise LampreiaError(f"Cannot write {output}: {error.strerror}.", "Choose a writable folder with free space.") from None
    return report_lines(trained, predictions) + [f"Wrote {count(len(table), 'prediction')} to {output}."]


def reject_output_over_input(input_file: Path | None, output: Path) -> None:
    """Raise LampreiaError when ``output`` is the input file, which the predictions would replace."""
    if input_file is None or str(output) == "-":
        return
    if Path(output).expanduser().resolve() == Path(input_file).expanduser().resolve():
        raise LampreiaError(f"The output file {output} is the input file: its rows would be replaced by their predictions.", "Choose another output file.")


def tsv_line(cells: list[Any]) -> str:
    """Format ``cells`` as one line of GLUE's unquoted TSV, with tabs and line breaks inside a cell turned into spaces."""
    return "\t".join(" ".join(str(cell).replace("\r", " ").replace("\n", " ").split("\t")) for cell in cells) + "\n"


def report_lines(trained: TrainedStudent, predictions: Predictions) -> list[str]:
    """Describe what was predicted, its scores on the rows with gold labels, and the run's own scores on the same rows."""
    run, rows = trained.run, predictions.split
    state = "" if run.status == "finished" else f" ({run.status})"
    lines = [
        f"Run {run.id}{state}, {trained.checkpoint} checkpoint of step {trained.step}, on {describe_device(trained.device)} "
        f"with {describe_precision(trained.amp_dtype)}: {count(len(rows), 'row')} of {trained.task.title} from {rows.source}."
    ]
    scores = ", ".join(f"{name} {value:.4f}" for name, value in predictions.metrics.items())
    if scores:
        lines.append(f"Scored on {count(predictions.scored_rows, 'row')} with a gold label: {scores}.")
    else:
        lines.append("No row has a gold label, so nothing was scored (GLUE test files have none).")
    recorded = recorded_metrics(trained, rows)
    if recorded is not None:
        split, values = recorded
        same = all(math.isclose(predictions.metrics.get(name, math.nan), value, abs_tol=1e-9) for name, value in values.items())
        listed = ", ".join(f"{name} {value:.4f}" for name, value in values.items())
        lines.append(f"Run {run.id} scored these rows as its {split} split when it wrote this checkpoint: {listed} ({'the same' if same else 'other values'}).")
    else:
        lines += _other_rows_notes(trained, rows)
    return lines


def _other_rows_notes(trained: TrainedStudent, rows: GlueSplit) -> list[str]:
    """Say when the rows extend a dev split that the run scored only in part, or are its training rows."""
    notes = []
    dev_limit = trained.config.data.dev_limit
    if dev_limit is not None and len(rows) > dev_limit:
        first = rows.select(range(dev_limit)).rows_fingerprint()
        for dev in trained.task.dev_splits:
            if trained.split_fingerprints.get(dev.prefix) == first:
                notes.append(
                    f"Run {trained.run.id} scored only the first {dev_limit} of these rows (its dev row limit), "
                    f"so its recorded {dev.prefix} metrics are not these. Predict those {dev_limit} rows alone "
                    f"(CLI: --limit {dev_limit}; in the window: First rows only) to repeat them."
                )
    train_limit = trained.config.data.train_limit
    trained_rows = train_limit or len(rows)
    # A split named train counts as the run's training rows, even when read from another folder.
    # A file counts when the fingerprint of its first rows matches the run's.
    if rows.split == "train" or (len(rows) >= trained_rows and rows.select(range(trained_rows)).rows_fingerprint() == trained.split_fingerprints.get("train")):
        trained_on = f"the first {train_limit} rows of this split" if train_limit else "this split's rows"
        notes.append(
            f"The student trained on {trained_on} (all but its held-out slice), "
            "so their scores show how well it fits its training data, not how well it generalises."
        )
    return notes


def recorded_metrics(trained: TrainedStudent, rows: GlueSplit) -> tuple[str, dict[str, float]] | None:
    """Return (split, metrics) that the run recorded for this checkpoint on exactly these rows, or None.

    Only the best checkpoint has metrics of its own, and only rows with the texts and labels of a
    split the run evaluated (the dev splits, within the run's ``data.dev_limit``) match.
    """
    fingerprint = rows.rows_fingerprint()
    for dev in trained.task.dev_splits:
        if trained.split_fingerprints.get(dev.prefix) != fingerprint:
            continue
        metrics = {
            name.removeprefix(f"{dev.prefix}/"): value
            for name, value in trained.checkpoint_metrics.items()
            if name.startswith(f"{dev.prefix}/") and name.removeprefix(f"{dev.prefix}/") in trained.task.metrics
        }
        return (dev.prefix, metrics) if metrics else None
    return None
