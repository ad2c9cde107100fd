"""The nine GLUE tasks: text fields, labels, file layout, official metrics and baselines.

Metric definitions follow the GLUE benchmark (Wang et al., 2019, table 1): CoLA Matthews
correlation; SST-2, QNLI, RTE, WNLI accuracy; MRPC and QQP accuracy and F1 of the positive class;
STS-B Pearson and Spearman correlation; MNLI accuracy on the matched and mismatched dev sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from sklearn import metrics as sk_metrics

from engine.errors import ConfigError


@dataclass(frozen=True)
class DevSplit:
    """One validation split: its Hub split name, its glue_data file and the metric-name prefix."""

    hub_split: str
    tsv_file: str
    prefix: str


@dataclass(frozen=True)
class GlueTask:
    """Static description of one GLUE task."""

    name: str
    folder: str
    title: str
    description: str
    hub_fields: tuple[str, ...]
    tsv_fields: tuple[str | int, ...]
    tsv_label: str | int
    label_names: tuple[str, ...]
    tsv_label_values: dict[str, int] = field(default_factory=dict)
    # The scale of a regression task's scores; a score outside it in a TSV file is a malformed row.
    score_range: tuple[float, float] | None = None
    has_header: bool = True
    dev_splits: tuple[DevSplit, ...] = (DevSplit("validation", "dev.tsv", "dev"),)
    metrics: tuple[str, ...] = ("accuracy",)
    primary_metric: str = "accuracy"

    @property
    def is_regression(self) -> bool:
        return not self.label_names

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return len(self.hub_fields) == 2

    @property
    def primary_dev_metric(self) -> str:
        """Name under which the main dev metric is logged, e.g. ``dev/accuracy``."""
        return f"{self.dev_splits[0].prefix}/{self.primary_metric}"


_NLI = {"entailment": 0, "not_entailment": 1}

TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask(
            name="cola", folder="CoLA", title="CoLA",
            description="Corpus of Linguistic Acceptability: is the sentence grammatical?",
            hub_fields=("sentence",), tsv_fields=(3,), tsv_label=1, has_header=False,
            label_names=("unacceptable", "acceptable"),
            metrics=("mcc", "accuracy"), primary_metric="mcc",
        ),
        GlueTask(
            name="sst2", folder="SST-2", title="SST-2",
            description="Stanford Sentiment Treebank: is the movie-review sentence positive or negative?",
            hub_fields=("sentence",), tsv_fields=("sentence",), tsv_label="label",
            label_names=("negative", "positive"),
            metrics=("accuracy", "macro_f1"),
        ),
        GlueTask(
            name="mrpc", folder="MRPC", title="MRPC",
            description="Microsoft Research Paraphrase Corpus: are the two news sentences paraphrases?",
            hub_fields=("sentence1", "sentence2"), tsv_fields=("#1 String", "#2 String"), tsv_label="Quality",
            label_names=("not_equivalent", "equivalent"),
            metrics=("accuracy", "f1"),
        ),
        GlueTask(
            name="qqp", folder="QQP", title="QQP",
            description="Quora Question Pairs: do the two questions ask the same thing?",
            hub_fields=("question1", "question2"), tsv_fields=("question1", "question2"), tsv_label="is_duplicate",
            label_names=("not_duplicate", "duplicate"),
            metrics=("accuracy", "f1"),
        ),
        GlueTask(
            name="stsb", folder="STS-B", title="STS-B",
            description="Semantic Textual Similarity Benchmark: how similar are the two sentences, from 0 to 5?",
            hub_fields=("sentence1", "sentence2"), tsv_fields=("sentence1", "sentence2"), tsv_label="score",
            label_names=(), score_range=(0.0, 5.0),
            metrics=("pearson", "spearman"), primary_metric="pearson",
        ),
        GlueTask(
            name="mnli", folder="MNLI", title="MNLI",
            description="Multi-Genre NLI: does the premise entail, contradict or say nothing about the hypothesis?",
            hub_fields=("premise", "hypothesis"), tsv_fields=("sentence1", "sentence2"), tsv_label="gold_label",
            label_names=("entailment", "neutral", "contradiction"),
            tsv_label_values={"entailment": 0, "neutral": 1, "contradiction": 2},
            dev_splits=(
                DevSplit("validation_matched", "dev_matched.tsv", "dev_matched"),
                DevSplit("validation_mismatched", "dev_mismatched.tsv", "dev_mismatched"),
            ),
        ),
        GlueTask(
            name="qnli", folder="QNLI", title="QNLI",
            description="Question NLI: does the sentence contain the answer to the question?",
            hub_fields=("question", "sentence"), tsv_fields=("question", "sentence"), tsv_label="label",
            label_names=("entailment", "not_entailment"), tsv_label_values=_NLI,
            metrics=("accuracy", "macro_f1"),
        ),
        GlueTask(
            name="rte", folder="RTE", title="RTE",
            description="Recognizing Textual Entailment: does the first sentence entail the second?",
            hub_fields=("sentence1", "sentence2"), tsv_fields=("sentence1", "sentence2"), tsv_label="label",
            label_names=("entailment", "not_entailment"), tsv_label_values=_NLI,
        ),
        GlueTask(
            name="wnli", folder="WNLI", title="WNLI",
            description="Winograd NLI: with the pronoun resolved, is the second sentence entailed?",
            hub_fields=("sentence1", "sentence2"), tsv_fields=("sentence1", "sentence2"), tsv_label="label",
            label_names=("not_entailment", "entailment"),
        ),
    )
}

_ALIASES = {"sts": "stsb", "sst": "sst2", "mnli-m": "mnli", "mnli-mm": "mnli"}


def task_title(task_name: str) -> str:
    """Return a task's display title ("SST-2"), or the name itself for a task this version does not know."""
    task = TASKS.get(task_name)
    return task.title if task is not None else task_name


def baseline_name(task_name: str) -> str:
    """Return what a task's baseline is called: the training mean for STS-B (regression), else the majority class."""
    task = TASKS.get(task_name)
    return "training-mean baseline" if task is not None and task.is_regression else "majority baseline"


def normalize_task_name(name: str) -> str:
    """Map 'SST-2', 'sst_2' or 'STS-B' to the Hub config name; raise ConfigError for unknown tasks."""
    if not isinstance(name, str):
        raise ConfigError("task", f"{name!r} is not a task name.", f"Use one of {', '.join(TASKS)}.")
    key = name.strip().lower().replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in TASKS:
        raise ConfigError("task", f"{name!r} is not a GLUE task.", f"Use one of {', '.join(TASKS)}.")
    return key


def get_task(name: str) -> GlueTask:
    return TASKS[normalize_task_name(name)]


def compute_metrics(task: GlueTask, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Score predictions (class ids, or scores for STS-B) against gold labels.

    Rows whose label is -1 (GLUE test splits) are ignored. Returns the task's official metrics
    by name; a metric that is undefined on the input (a constant prediction for a correlation)
    is reported as 0.0, the value of a predictor that carries no information.
    """
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    scored = labels != -1
    predictions, labels = predictions[scored], labels[scored]
    if len(labels) == 0:
        return {}

    results: dict[str, float] = {}
    for name in task.metrics:
        results[name] = _metric(name, predictions, labels)
    return results


def _metric(name: str, predictions: np.ndarray, labels: np.ndarray) -> float:
    if name == "accuracy":
        return float(sk_metrics.accuracy_score(labels, predictions))
    if name == "f1":
        return float(sk_metrics.f1_score(labels, predictions, pos_label=1, average="binary", zero_division=0.0))
    if name == "macro_f1":
        return float(sk_metrics.f1_score(labels, predictions, average="macro", zero_division=0.0))
    if name == "mcc":
        if len(np.unique(np.concatenate([labels, predictions]))) < 2:
            return 0.0  # one class only: undefined, and scikit-learn would warn
        return float(sk_metrics.matthews_corrcoef(labels, predictions))
    if name in ("pearson", "spearman"):
        if np.ptp(predictions) == 0 or np.ptp(labels) == 0:
            return 0.0
        statistic = stats.pearsonr(predictions, labels)[0] if name == "pearson" else stats.spearmanr(predictions, labels)[0]
        return float(statistic) if math.isfinite(statistic) else 0.0
    raise ValueError(f"unknown metric {name!r}")


def majority_baseline(task: GlueTask, train_labels: np.ndarray, dev_labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Score the constant predictor on each dev split, keyed like the logged dev metrics.

    Classification: always the most frequent training label. Regression: always the training
    mean, whose correlations are 0 by the convention of ``compute_metrics``.
    """
    train_labels = np.asarray(train_labels)
    train_labels = train_labels[train_labels != -1]
    if task.is_regression:
        constant = float(np.mean(train_labels)) if len(train_labels) else 0.0
    else:
        values, counts = np.unique(train_labels.astype(int), return_counts=True)
        constant = int(values[np.argmax(counts)]) if len(values) else 0

    baseline: dict[str, float] = {}
    for prefix, labels in dev_labels.items():
        predictions = np.full(len(labels), constant)
        for name, value in compute_metrics(task, predictions, labels).items():
            baseline[f"{prefix}/{name}"] = value
    return baseline
