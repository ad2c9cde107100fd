"""A run killed with SIGKILL mid-training leaves a whole store and resumes to the same end state."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from engine.cli import main
from engine.run_store import RunStore


def _args(glue_dir, db):
    return [
        "run", "--task", "sst2", "--data-dir", str(glue_dir), "--teachers", "minilm", "--tokenizer", "minilm",
        "--train-limit", "320", "--dev-limit", "100", "--epochs", "6", "--batch-size", "32", "--d-model", "128",
        "--layers", "2", "--heads", "4", "--max-seq-len", "64", "--evals-per-epoch", "1", "--db", str(db), "--quiet",
    ]


def _checkpoint_step(db) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as connection:
            row = connection.execute("SELECT checkpoint_step, status FROM runs WHERE id = 1").fetchone()
    except sqlite3.Error:
        return 0
    if row is None:
        return 0
    assert row[1] == "running", f"the run ended ({row[1]}) before it could be killed"
    return row[0] or 0


@pytest.mark.slow
def test_sigkill_mid_training_then_resume(glue_dir, tmp_path, capsys):
    # Reference: the same run, never interrupted.
    reference_db = tmp_path / "reference.sqlite3"
    assert main(_args(glue_dir, reference_db)) == 0
    reference = RunStore(reference_db).get_run(1)

    db = tmp_path / "killed.sqlite3"
    script = f"import sys; from engine.cli import main; sys.exit(main({_args(glue_dir, db)!r}))"
    process = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 240
        while _checkpoint_step(db) < 20:
            assert process.poll() is None, "the training process ended before it was killed"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows_before = connection.execute("SELECT count(*) FROM metrics WHERE run_id = 1").fetchone()[0]
    store = RunStore(db)
    interrupted = store.get_run(1)
    assert interrupted.status == "interrupted"
    assert rows_before > 0
    assert store.count_metrics(1) == rows_before
    assert interrupted.checkpoint_step >= 20

    capsys.readouterr()
    assert main(["run", "--resume", "1", "--db", str(db), "--quiet"]) == 0
    assert "Run 1 (" in capsys.readouterr().out

    resumed = RunStore(db).get_run(1)
    assert resumed.status == "finished"
    assert resumed.best_step == reference.best_step
    for name, value in reference.final_metrics.items():
        assert resumed.final_metrics[name] == pytest.approx(value, abs=1e-4), name
    reference_losses = RunStore(reference_db).metric_series(1, ["train/loss_total"])["train/loss_total"]
    resumed_losses = RunStore(db).metric_series(1, ["train/loss_total"])["train/loss_total"]
    assert reference_losses[0].tolist() == resumed_losses[0].tolist()
    assert resumed_losses[1] == pytest.approx(reference_losses[1], abs=1e-4)
