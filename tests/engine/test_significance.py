"""Paired tests of two runs: resampled metrics as compute_metrics scores them, intervals, McNemar, and `compare --paired`."""

import shutil

import numpy as np
import pytest
from scipy import stats

from engine.cli import main
from engine.significance import mcnemar_p, paired_tests, resampled_metric
from engine.tasks import TASKS, compute_metrics


@pytest.mark.parametrize("task_name", ["sst2", "mrpc", "cola", "mnli", "stsb"])
def test_resampled_metrics_match_compute_metrics(task_name):
    task = TASKS[task_name]
    generator = np.random.default_rng(3)
    rows = 200
    if task.is_regression:
        labels = generator.uniform(0, 5, rows)
        predicted = labels + generator.normal(0, 1.5, rows)
    else:
        labels = generator.integers(0, task.num_labels, rows)
        predicted = np.where(generator.random(rows) < 0.7, labels, generator.integers(0, task.num_labels, rows))
    draws = generator.integers(0, rows, size=(5, rows))

    for name in task.metrics:
        resampled = resampled_metric(name, predicted, labels, draws)
        for index, rows_drawn in enumerate(draws):
            expected = compute_metrics(task, predicted[rows_drawn], labels[rows_drawn])[name]
            assert resampled[index] == pytest.approx(expected, abs=1e-9), name


def test_degenerate_resamples_score_zero():
    labels = np.array([1, 1, 1, 1])
    predicted = np.array([1, 1, 1, 1])
    draws = np.array([[0, 1, 2, 3]])

    assert resampled_metric("mcc", predicted, labels, draws)[0] == 0.0
    assert resampled_metric("pearson", predicted.astype(float), labels.astype(float), draws)[0] == 0.0
    assert resampled_metric("spearman", predicted.astype(float), labels.astype(float), draws)[0] == 0.0


def test_mcnemar_is_a_binomial_test_of_discordant_rows():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(10, 10) == pytest.approx(1.0)
    assert mcnemar_p(2, 18) == pytest.approx(stats.binomtest(18, 20, 0.5).pvalue)
    assert mcnemar_p(2, 18) < 0.001


def test_clear_difference_excludes_zero():
    task = TASKS["sst2"]
    generator = np.random.default_rng(0)
    labels = generator.integers(0, 2, 500)
    weak = np.where(generator.random(500) < 0.55, labels, 1 - labels)
    strong = np.where(generator.random(500) < 0.9, labels, 1 - labels)

    tests = {test.metric: test for test in paired_tests(task, labels, weak, strong, resamples=2000)}

    accuracy = tests["accuracy"]
    assert accuracy.rows == 500
    assert accuracy.value_a == pytest.approx(np.mean(weak == labels))
    assert accuracy.value_b == pytest.approx(np.mean(strong == labels))
    assert accuracy.low < accuracy.difference < accuracy.high
    assert accuracy.interval_excludes_zero
    assert accuracy.only_a_right == int(np.sum((weak == labels) & (strong != labels)))
    assert accuracy.mcnemar_p < 1e-6
    assert tests["macro_f1"].mcnemar_p is None


def test_same_predictions_give_zero_interval():
    task = TASKS["sst2"]
    labels = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    predicted = np.array([0, 1, 0, 0, 1, 1, 1, 1])

    tests = paired_tests(task, labels, predicted, predicted.copy(), resamples=200)

    for test in tests:
        assert test.difference == 0.0
        assert (test.low, test.high) == (0.0, 0.0)
        assert not test.interval_excludes_zero


def test_unlabelled_rows_are_left_out():
    task = TASKS["sst2"]
    labels = np.array([0, 1, -1, 1])
    tests = paired_tests(task, labels, np.array([0, 1, 1, 0]), np.array([0, 1, 0, 1]), resamples=100)

    assert tests[0].rows == 3


def _run_args(glue_dir, db, seed):
    return [
        "run", "--task", "sst2", "--data-dir", str(glue_dir), "--teachers", "minilm", "--tokenizer", "minilm",
        "--train-limit", "160", "--dev-limit", "80", "--epochs", "1", "--d-model", "32", "--layers", "1",
        "--heads", "4", "--max-seq-len", "48", "--db", str(db), "--quiet", "--seed", str(seed),
    ]


def test_compare_paired_tests_two_runs(glue_dir, tmp_path, capsys):
    import json

    db = tmp_path / "runs.sqlite3"
    assert main(_run_args(glue_dir, db, 1)) == 0
    assert main(_run_args(glue_dir, db, 2)) == 0
    capsys.readouterr()

    assert main(["compare", "1", "2", "--paired", "--resamples", "500", "--db", str(db)]) == 0

    output = capsys.readouterr().out
    assert "Paired test of #1 and #2 on the same 80 rows of SST-2 dev (best checkpoints; 500 bootstrap resamples of the rows, seed 0):" in output
    assert "95% interval" in output
    assert "McNemar's exact test of accuracy: only #1 is right on " in output
    assert "not on the seed; compare runs over several seeds by pooling seeds." in output

    assert main(["compare", "1", "2", "--paired", "--resamples", "500", "--json", "--db", str(db)]) == 0
    document = json.loads(capsys.readouterr().out)
    (split,) = document["paired"]
    tests = {test["metric"]: test for test in split["tests"]}
    # The students' predictions repeat the metrics the runs recorded on these rows.
    recorded = document["metrics"]["dev/accuracy"]
    assert tests["accuracy"]["value_a"] == pytest.approx(recorded["1"]["best"])
    assert tests["accuracy"]["value_b"] == pytest.approx(recorded["2"]["best"])
    assert tests["accuracy"]["low"] <= tests["accuracy"]["difference"] <= tests["accuracy"]["high"]


def test_compare_paired_uses_common_rows(glue_dir, tmp_path, capsys):
    import json

    db = tmp_path / "runs.sqlite3"
    assert main(_run_args(glue_dir, db, 1)) == 0
    arguments = _run_args(glue_dir, db, 2)
    arguments[arguments.index("--dev-limit") + 1] = "60"
    assert main(arguments) == 0
    capsys.readouterr()

    assert main(["compare", "1", "2", "--paired", "--resamples", "200", "--json", "--db", str(db)]) == 0

    (split,) = json.loads(capsys.readouterr().out)["paired"]
    assert (split["run_a"], split["run_b"], split["checkpoint"], split["confidence"], split["bootstrap_seed"]) == (1, 2, "best", 0.95, 0)
    assert split["tests"][0]["rows"] == 60
    assert split["note"] == (
        "Run 1 was scored on more dev rows; the test uses the first 60, which both runs were scored on, "
        "so run 1's values here are not its recorded ones."
    )


def test_compare_paired_reads_either_folder(glue_dir, tmp_path, capsys):
    copy = tmp_path / "glue"
    shutil.copytree(glue_dir / "SST-2", copy / "SST-2")
    db = tmp_path / "runs.sqlite3"
    assert main(_run_args(copy, db, 1)) == 0
    assert main(_run_args(glue_dir, db, 2)) == 0
    shutil.rmtree(copy)
    capsys.readouterr()

    # Run 1's folder is gone; run 2's has the same rows.
    assert main(["compare", "1", "2", "--paired", "--resamples", "200", "--db", str(db)]) == 0
    assert "Paired test of #1 and #2 on the same 80 rows" in capsys.readouterr().out


def test_compare_paired_rejects_changed_rows(glue_dir, tmp_path, capsys):
    copy = tmp_path / "glue"
    shutil.copytree(glue_dir / "SST-2", copy / "SST-2")
    db = tmp_path / "runs.sqlite3"
    assert main(_run_args(copy, db, 1)) == 0
    assert main(_run_args(copy, db, 2)) == 0
    dev = copy / "SST-2" / "dev.tsv"
    lines = dev.read_text(encoding="utf-8").splitlines()
    sentence, label = lines[1].rsplit("\t", 1)
    lines[1] = f"{sentence}\t{1 - int(label)}"
    dev.write_text("\n".join(lines) + "\n", encoding="utf-8")
    capsys.readouterr()

    assert main(["compare", "1", "2", "--paired", "--db", str(db)]) == 2
    assert "are not those run 1 was scored on: the file changed since" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["1", "2", "3", "--paired"], "--paired tests two runs against each other, and got 3."),
        (["1", "2", "--paired", "--pool-seeds"], "--paired cannot be combined with --pool-seeds."),
        (["1", "2", "--resamples", "500"], "--resamples is only used with --paired."),
        (["1", "2", "--resamples", "10000"], "--resamples is only used with --paired."),
        (["1", "2", "--paired", "--resamples", "10"], "--resamples 10: a 95% interval needs at least 100 resamples."),
    ],
)
def test_compare_paired_options_checked(arguments, expected, tmp_path, capsys):
    assert main(["compare", *arguments, "--db", str(tmp_path / "none.sqlite3")]) == 2

    assert expected in capsys.readouterr().err


def test_compare_paired_without_dev_limits(glue_dir, tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    for seed in (1, 2):
        arguments = _run_args(glue_dir, db, seed)
        del arguments[arguments.index("--dev-limit") : arguments.index("--dev-limit") + 2]
        assert main(arguments) == 0
    capsys.readouterr()

    assert main(["compare", "1", "2", "--paired", "--resamples", "200", "--db", str(db)]) == 0

    output = capsys.readouterr().out
    assert "Paired test of #1 and #2 on the same 872 rows of SST-2 dev" in output
    assert "scored on more dev rows" not in output


def test_dev_limit_above_split_size(glue_dir, tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    for seed in (1, 2):
        arguments = _run_args(glue_dir, db, seed)
        arguments[arguments.index("--task") + 1] = "rte"
        # RTE's dev split has 277 rows, so a limit of 400 scores all of them.
        arguments[arguments.index("--dev-limit") + 1] = "400"
        assert main(arguments) == 0
    capsys.readouterr()

    assert main(["compare", "1", "2", "--paired", "--resamples", "200", "--db", str(db)]) == 0

    output = capsys.readouterr().out
    assert "Paired test of #1 and #2 on the same 277 rows of RTE dev" in output
    assert "scored on more dev rows" not in output


def test_missing_folders_both_named(glue_dir, tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    folders = [tmp_path / "first", tmp_path / "second"]
    for seed, folder in enumerate(folders, start=1):
        shutil.copytree(glue_dir / "SST-2", folder / "SST-2")
        assert main(_run_args(folder, db, seed)) == 0
        shutil.rmtree(folder)
    capsys.readouterr()

    assert main(["compare", "1", "2", "--paired", "--db", str(db)]) == 2

    error = capsys.readouterr().err
    assert f"The runs' glue_data folder does not exist any more ({str(folders[0])!r} and {str(folders[1])!r})" in error
    assert "--data-dir DIR" in error
    assert "--input" not in error

    # A folder without the task: the hint names what it must contain, and no --input.
    assert main(["compare", "1", "2", "--paired", "--data-dir", str(tmp_path), "--db", str(db)]) == 2
    error = capsys.readouterr().err
    assert "Give the glue_data folder that contains SST-2/ (CLI: --data-dir DIR" in error
    assert "--input" not in error
