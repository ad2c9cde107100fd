"""Paired tests of two runs on the same dev rows: is their difference larger than the rows' sampling noise?

Both students predict the same rows. The paired bootstrap draws rows with replacement and scores
both runs on each draw, so the interval of the difference (b − a) shows how much it depends on
which rows the dev split happens to contain. Seed noise is not in it: runs over several seeds are
compared with ``lampreia compare --pool-seeds``. For accuracy, McNemar's exact test counts
the rows where exactly one run is right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from engine.errors import DataError, LampreiaError, MalformedRowsError
from engine.tasks import GlueTask, compute_metrics

if TYPE_CHECKING:
    from engine.glue_data import GlueSplit
    from engine.prediction import TrainedStudent
    from engine.run_store import RunRecord, RunStore

DEFAULT_RESAMPLES = 10_000
CONFIDENCE = 0.95
BOOTSTRAP_SEED = 0
# Resamples drawn at once: 1,000 draws of a 10,000-row split are 80 MB of indices.
CHUNK_RESAMPLES = 1_000


@dataclass(frozen=True)
class PairedTest:
    """One metric of two runs on the same rows, with the bootstrap interval of their difference (b − a)."""

    metric: str
    rows: int
    value_a: float
    value_b: float
    low: float
    high: float
    resamples: int
    # McNemar's test, for accuracy only: rows where only run a, or only run b, is right.
    only_a_right: int | None = None
    only_b_right: int | None = None
    mcnemar_p: float | None = None

    @property
    def difference(self) -> float:
        return self.value_b - self.value_a

    @property
    def interval_excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_tests(
    task: GlueTask,
    labels: np.ndarray,
    predicted_a: np.ndarray,
    predicted_b: np.ndarray,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> list[PairedTest]:
    """Return a paired test for each of the task's metrics over the rows with gold labels.

    The interval is the percentile interval of the resampled differences. All metrics use the same
    resampled rows, drawn from ``seed``.
    """
    scored = labels != -1
    labels, predicted_a, predicted_b = labels[scored], predicted_a[scored], predicted_b[scored]
    rows = len(labels)
    if rows < 2:
        raise ValueError(f"a paired test needs at least 2 rows with gold labels, got {rows}")

    values_a = compute_metrics(task, predicted_a, labels)
    values_b = compute_metrics(task, predicted_b, labels)
    differences: dict[str, list[np.ndarray]] = {name: [] for name in task.metrics}
    generator = np.random.default_rng(seed)
    for start in range(0, resamples, CHUNK_RESAMPLES):
        draws = generator.integers(0, rows, size=(min(CHUNK_RESAMPLES, resamples - start), rows))
        for name in task.metrics:
            differences[name].append(resampled_metric(name, predicted_b, labels, draws) - resampled_metric(name, predicted_a, labels, draws))

    tail = (1 - confidence) / 2 * 100
    tests = []
    for name in task.metrics:
        spread = np.concatenate(differences[name])
        low, high = np.percentile(spread, [tail, 100 - tail])
        extra = {}
        if name == "accuracy":
            right_a, right_b = predicted_a == labels, predicted_b == labels
            only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
            extra = {"only_a_right": only_a, "only_b_right": only_b, "mcnemar_p": mcnemar_p(only_a, only_b)}
        tests.append(PairedTest(name, rows, values_a[name], values_b[name], float(low), float(high), resamples, **extra))
    return tests


def mcnemar_p(only_a_right: int, only_b_right: int) -> float:
    """Return the two-sided p-value of McNemar's exact test: a binomial test of the discordant rows at 1/2."""
    discordant = only_a_right + only_b_right
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(only_b_right, discordant, 0.5).pvalue)


def resampled_metric(name: str, predicted: np.ndarray, labels: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Return the metric on each row of ``draws`` (row indices, one resample per row), as ``compute_metrics`` scores it.

    Accuracy, F1, macro F1, MCC and Pearson's r come from counts and sums over each resample at
    once. Spearman's rho ranks each resample, one at a time.
    """
    if name == "spearman":
        return np.array([_spearman(predicted[rows], labels[rows]) for rows in draws])
    if name == "pearson":
        return _resampled_pearson(predicted[draws].astype(np.float64), labels[draws].astype(np.float64))

    gold, guess = labels[draws].astype(np.int64), predicted[draws].astype(np.int64)
    if name == "accuracy":
        return np.mean(gold == guess, axis=1)
    classes = int(max(labels.max(), predicted.max())) + 1
    true_counts = np.stack([np.sum(gold == k, axis=1) for k in range(classes)], axis=1).astype(np.float64)
    predicted_counts = np.stack([np.sum(guess == k, axis=1) for k in range(classes)], axis=1).astype(np.float64)
    hits = np.stack([np.sum((gold == k) & (guess == k), axis=1) for k in range(classes)], axis=1).astype(np.float64)
    if name == "f1":
        return _f1(hits[:, 1], predicted_counts[:, 1], true_counts[:, 1])
    if name == "macro_f1":
        # scikit-learn averages over the classes present in the gold labels or the predictions.
        present = (true_counts + predicted_counts) > 0
        per_class = _f1(hits, predicted_counts, true_counts)
        return np.sum(np.where(present, per_class, 0.0), axis=1) / np.maximum(np.sum(present, axis=1), 1)
    if name == "mcc":
        total = draws.shape[1]
        correct = np.sum(hits, axis=1)
        numerator = correct * total - np.sum(predicted_counts * true_counts, axis=1)
        denominator = np.sqrt((total**2 - np.sum(predicted_counts**2, axis=1)) * (total**2 - np.sum(true_counts**2, axis=1)))
        return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
    raise ValueError(f"unknown metric {name!r}")


def _f1(hits: np.ndarray, predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    # F1 = 2·tp / (predicted positives + true positives); 0 where both are 0, as zero_division=0.0 gives.
    total = predicted + true
    return np.divide(2 * hits, total, out=np.zeros_like(hits), where=total > 0)


def _resampled_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt(np.sum(x * x, axis=1) * np.sum(y * y, axis=1))
    numerator = np.sum(x * y, axis=1)
    # A constant resample has no correlation: 0, as compute_metrics reports it.
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def _spearman(predicted: np.ndarray, labels: np.ndarray) -> float:
    # A constant resample has no correlation: 0, as compute_metrics reports it (and scipy would warn).
    if np.ptp(predicted) == 0 or np.ptp(labels) == 0:
        return 0.0
    value = stats.spearmanr(predicted, labels)[0]
    return float(value) if math.isfinite(value) else 0.0


@dataclass(frozen=True)
class PairedSplit:
    """The paired tests of two runs on one dev split: its metric prefix, where its rows came from, and the tests."""

    split: str
    source: str
    tests: list[PairedTest]
    note: str = ""  # set when the runs were scored on different numbers of rows


def paired_dev_tests(
    store: "RunStore",
    run_a: int,
    run_b: int,
    *,
    glue_dir: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    device: str = "auto",
) -> list[PairedSplit]:
    """Predict the dev rows that both runs were scored on with their best checkpoints, and test each metric.

    ``glue_dir`` replaces the runs' glue_data folders (a moved folder). Runs with different dev
    limits are tested on the rows they share. Raises LampreiaError for runs of different tasks, and
    DataError when the rows read are not those a run was scored on.
    """
    from engine.prediction import find_checkpoint

    record_a, path_a = find_checkpoint(store, run_a, "best")
    record_b, path_b = find_checkpoint(store, run_b, "best")
    return paired_checkpoint_tests(record_a, path_a, record_b, path_b, glue_dir=glue_dir, resamples=resamples, seed=seed, device=device)


def paired_checkpoint_tests(
    record_a: "RunRecord",
    path_a: Path,
    record_b: "RunRecord",
    path_b: Path,
    *,
    glue_dir: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    device: str = "auto",
) -> list[PairedSplit]:
    """Run ``paired_dev_tests`` on checkpoints already found; reads no store, so a worker thread may call it."""
    # Imported here: they load torch and transformers, which the command line's other commands do not need.
    from engine.prediction import predict_rows, rebuild_student

    run_a, run_b = record_a.id, record_b.id
    trained_a = rebuild_student(record_a, path_a, "best", device)
    trained_b = rebuild_student(record_b, path_b, "best", device)
    task = trained_a.task
    if trained_b.task != task:
        raise LampreiaError(
            f"Runs {run_a} and {run_b} are of different tasks ({task.title}, {trained_b.task.title}), so no row pairs up.",
            "Give two runs of one task.",
        )

    results = []
    for dev in task.dev_splits:
        rows, note = _common_rows(task, dev.prefix, trained_a, trained_b, glue_dir)
        predicted_a = predict_rows(trained_a, rows).predicted
        predicted_b = predict_rows(trained_b, rows).predicted
        tests = paired_tests(task, rows.labels, predicted_a, predicted_b, resamples, seed)
        results.append(PairedSplit(dev.prefix, rows.source, tests, note))
    return results


def _common_rows(task: GlueTask, split: str, trained_a: "TrainedStudent", trained_b: "TrainedStudent", glue_dir: str | None) -> tuple["GlueSplit", str]:
    """Load the dev rows that both runs were scored on, checked against both checkpoints' fingerprints, and a note.

    A dev limit keeps a split's first rows, so runs with different limits share the rows of the
    smaller one. ``glue_dir`` replaces the runs' own folders; without it, the first of the two that
    exists is read.
    """
    from engine.prediction import load_prediction_rows

    run_a, run_b = trained_a.run.id, trained_b.run.id
    for trained in (trained_a, trained_b):
        if trained.split_fingerprints.get(split) is None:
            raise LampreiaError(
                f"The checkpoint of run {trained.run.id} does not record which {split} rows it was scored on (an earlier version wrote it).",
                "Predict both runs on one file (lampreia predict RUN_ID --details) and compare the files, or train the run again.",
            )

    limits = [trained_a.config.data.dev_limit, trained_b.config.data.dev_limit]
    longest = None if None in limits else max(limits)
    if glue_dir is None:
        folders = [trained.config.data.glue_dir for trained in (trained_a, trained_b)]
        existing = [folder for folder in folders if folder is not None and Path(folder).is_dir()]
        if folders[0] is not None and not existing:
            tried = " and ".join(dict.fromkeys(repr(folder) for folder in folders if folder is not None))
            raise DataError(
                f"The runs' glue_data folder does not exist any more ({tried}), so their {split} rows cannot be read.",
                "Give the folder where it is now (CLI: --data-dir DIR; in the window: the folder you are asked for).",
            )
        glue_dir = existing[0] if existing else None
    skip = trained_a.config.data.skip_malformed_rows
    try:
        rows = load_prediction_rows(task, glue_dir, split=split, limit=longest, skip_malformed_rows=skip)
    except MalformedRowsError:
        raise
    except DataError as error:
        # The loader's hint offers a file instead, which a paired test does not take.
        raise DataError(
            error.message, f"Give the glue_data folder that contains {task.folder}/ (CLI: --data-dir DIR; in the window: the folder you are asked for)."
        ) from None

    for trained in (trained_a, trained_b):
        # A dev limit above the split's size scored every row.
        scored = min(trained.config.data.dev_limit or len(rows), len(rows))
        if rows.select(range(scored)).rows_fingerprint() != trained.split_fingerprints[split]:
            raise DataError(
                f"The {split} rows in {rows.source} are not those run {trained.run.id} was scored on: the file changed since, "
                "or the runs read other files.",
                "Put the original file back, or give the folder that has it (CLI: --data-dir DIR; in the window: the folder you are asked for).",
            )

    common = min([len(rows), *(limit for limit in limits if limit is not None)])
    if common == len(rows):
        return rows, ""
    longer = run_a if min(limits[0] or len(rows), len(rows)) > common else run_b
    note = (
        f"Run {longer} was scored on more {split} rows; the test uses the first {common}, which both runs were scored on, "
        f"so run {longer}'s values here are not its recorded ones."
    )
    return rows.select(range(common)), note


def paired_verdict(tests: list[PairedTest]) -> str:
    """Say which metrics' intervals exclude 0, and what the intervals measure."""
    excluded = [test.metric for test in tests if test.interval_excludes_zero]
    if excluded:
        verdict = f"The intervals of {', '.join(excluded)} exclude 0: on these rows, that difference is larger than their sampling noise."
    else:
        verdict = "Every interval contains 0: on these rows, the runs differ by no more than the rows' sampling noise."
    return (
        f"{verdict} The intervals show how much the difference depends on which rows the split contains, not on the seed; "
        "compare runs over several seeds by pooling seeds."
    )


def paired_heading(result: PairedSplit, task_title: str, label_a: str, label_b: str) -> str:
    """Return the line that introduces one split's paired tests: the runs, the rows and the resamples."""
    test = result.tests[0]
    return (
        f"Paired test of {label_a} and {label_b} on the same {test.rows} rows of {task_title} {result.split} "
        f"(best checkpoints; {test.resamples:,} bootstrap resamples of the rows, seed {BOOTSTRAP_SEED}):"
    )


def paired_conclusion(result: PairedSplit, label_a: str, label_b: str) -> list[str]:
    """Return the lines that follow the metrics: McNemar's test of accuracy, then the verdict."""
    # The tests came from predictions, so engine.prediction (and torch) is loaded already.
    from engine.prediction import count

    lines = []
    for test in result.tests:
        if test.mcnemar_p is not None:
            lines.append(
                f"McNemar's exact test of accuracy: only {label_a} is right on {count(test.only_a_right, 'row')}, "
                f"only {label_b} on {test.only_b_right}; p = {test.mcnemar_p:.3g}."
            )
    if result.note:
        lines.append(result.note)
    lines.append(paired_verdict(result.tests))
    return lines


def describe_paired(result: PairedSplit, task_title: str, label_a: str, label_b: str) -> list[str]:
    """Return the lines that report one split's paired tests: the heading, one line per metric, and the conclusion."""
    metric_lines = [
        f"{test.metric}: {label_a} {test.value_a:.4f}, {label_b} {test.value_b:.4f}, {label_b} − {label_a} {test.difference:+.4f} "
        f"(95% interval {test.low:+.4f} to {test.high:+.4f})."
        for test in result.tests
    ]
    return [paired_heading(result, task_title, label_a, label_b), *metric_lines, *paired_conclusion(result, label_a, label_b)]
