"""GLUE task registry, official metrics against scikit-learn/SciPy, majority baselines."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics

from engine.tasks import TASKS, compute_metrics, get_task, majority_baseline


def test_all_nine_tasks_are_registered():
    assert set(TASKS) == {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"}
    assert all(task.description for task in TASKS.values())


def test_mnli_has_matched_and_mismatched_dev_splits():
    prefixes = [split.prefix for split in get_task("mnli").dev_splits]

    assert prefixes == ["dev_matched", "dev_mismatched"]


PREDICTIONS = np.array([1, 0, 1, 1, 0, 1, 0, 0, 1, 1])
LABELS = np.array([1, 0, 0, 1, 0, 1, 1, 0, 1, 0])


def test_cola_uses_matthews_correlation():
    result = compute_metrics(get_task("cola"), PREDICTIONS, LABELS)

    assert result["mcc"] == pytest.approx(metrics.matthews_corrcoef(LABELS, PREDICTIONS))
    assert get_task("cola").primary_metric == "mcc"


@pytest.mark.parametrize("name", ["mrpc", "qqp"])
def test_paraphrase_tasks_report_accuracy_and_positive_f1(name):
    result = compute_metrics(get_task(name), PREDICTIONS, LABELS)

    assert result["accuracy"] == pytest.approx(metrics.accuracy_score(LABELS, PREDICTIONS))
    assert result["f1"] == pytest.approx(metrics.f1_score(LABELS, PREDICTIONS, pos_label=1))


@pytest.mark.parametrize("name", ["sst2", "qnli"])
def test_macro_f1_is_labelled_as_such(name):
    result = compute_metrics(get_task(name), PREDICTIONS, LABELS)

    assert result["macro_f1"] == pytest.approx(metrics.f1_score(LABELS, PREDICTIONS, average="macro"))
    assert "f1" not in result


def test_stsb_reports_pearson_and_spearman():
    predictions = np.array([0.5, 2.0, 3.1, 4.9, 1.2, 3.3])
    labels = np.array([0.0, 2.5, 3.0, 5.0, 1.0, 2.0])

    result = compute_metrics(get_task("stsb"), predictions, labels)

    assert result["pearson"] == pytest.approx(stats.pearsonr(predictions, labels)[0])
    assert result["spearman"] == pytest.approx(stats.spearmanr(predictions, labels)[0])


def test_unlabelled_rows_are_not_scored():
    predictions = np.array([1, 1, 0, 0])
    labels = np.array([1, -1, 0, -1])

    assert compute_metrics(get_task("sst2"), predictions, labels)["accuracy"] == 1.0


def test_constant_regression_prediction_scores_zero():
    result = compute_metrics(get_task("stsb"), np.full(5, 2.5), np.array([1.0, 2.0, 3.0, 4.0, 5.0]))

    assert result == {"pearson": 0.0, "spearman": 0.0}


def test_majority_baseline_predicts_the_most_frequent_training_label():
    train = np.array([1, 1, 1, 0])
    dev = np.array([1, 0, 0, 0, 1])

    baseline = majority_baseline(get_task("mrpc"), train, {"dev": dev})

    assert baseline["dev/accuracy"] == pytest.approx(0.4)
    assert baseline["dev/f1"] == pytest.approx(metrics.f1_score(dev, np.ones(5, dtype=int)))


def test_majority_baseline_of_mcc_is_zero():
    baseline = majority_baseline(get_task("cola"), np.array([1, 1, 0]), {"dev": np.array([1, 0, 1])})

    assert baseline["dev/mcc"] == 0.0


def test_mcc_of_one_class_is_zero_without_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compute_metrics(get_task("cola"), np.array([1, 1, 1]), np.array([1, 1, 1]))

    assert result["mcc"] == 0.0
    assert result["accuracy"] == 1.0
