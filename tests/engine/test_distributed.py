"""Two CPU processes under torchrun (gloo) train one run; rank 0 alone records it."""

import os
import subprocess
import sys

import pytest

from engine.run_store import RunStore


@pytest.mark.slow
def test_torchrun_two_processes(glue_dir, tmp_path):
    db = tmp_path / "runs.sqlite3"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "engine.cli", "run", "--task", "sst2", "--data-dir", str(glue_dir), "--teachers", "minilm",
        "--tokenizer", "minilm", "--train-limit", "320", "--dev-limit", "100", "--epochs", "2", "--d-model", "32",
        "--layers", "1", "--heads", "4", "--max-seq-len", "48", "--db", str(db),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")

    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Run 1 (") == 1
    store = RunStore(db)
    runs = store.list_runs()
    assert [(r.id, r.status) for r in runs] == [(1, "finished")]
    assert runs[0].device.endswith("× 2 processes")
    steps = store.metric_series(1, ["train/loss_total"])["train/loss_total"][0]
    # 304 training rows in batches of 32 make 10 batches per epoch, 5 per process.
    assert steps.max() == 10
    assert "last" in store.artifacts(1)
