"""Run the offline demo (`lampreia run --preset offline-demo`) on SST-2, MRPC and STS-B and print the results.

This is the script behind the results table in README.md. Each task runs through the real
command line in a fresh run database and teacher cache, so the wall time includes the MiniLM
teacher's extraction; the training speed is the median over the run's logged step windows
(training steps only, without evaluations). Usage:

    python bench/offline_demo.py --data /path/to/glue_data [--tasks sst2,mrpc,stsb] [--seeds 42]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.glue_data import load_split  # noqa: E402
from engine.run_store import RunStore  # noqa: E402
from engine.tasks import TASKS  # noqa: E402


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_task(task: str, data: Path, seed: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, LAMPREIA_DATA_DIR=f"{scratch}/data", LAMPREIA_CACHE_DIR=f"{scratch}/cache", HF_HUB_OFFLINE="1")
        db = Path(scratch) / "runs.sqlite3"
        command = [sys.executable, "-m", "workbench.launcher", "run", "--preset", "offline-demo", "--task", task,
                   "--data-dir", str(data), "--seed", str(seed), "--db", str(db), "--quiet", *extra]
        start = time.perf_counter()
        completed = subprocess.run(command, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if completed.returncode != 0:
            raise SystemExit(f"{task}: lampreia exited with {completed.returncode}: {completed.stderr.strip()}")
        store = RunStore(db)
        try:
            record = store.get_run(1)
            speeds = store.metric_series(1, ["train/samples_per_second"]).get("train/samples_per_second")
        finally:
            store.close()
        speed = float(np.median(speeds[1])) if speeds is not None and len(speeds[1]) else float("nan")
        return {"task": task, "seed": seed, "seconds": seconds, "record": record, "samples_per_second": speed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("LAMPREIA_TEST_DATA") and Path(os.environ["LAMPREIA_TEST_DATA"]) / "glue",
                        help="glue_data folder (default: $LAMPREIA_TEST_DATA/glue)")
    parser.add_argument("--tasks", default="sst2,mrpc,stsb", help="comma-separated GLUE tasks")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds; each task runs once per seed")
    parser.add_argument("extra", nargs="*", help="further `lampreia run` options, after --")
    args = parser.parse_args()
    if args.data is None or not Path(args.data).is_dir():
        raise SystemExit("Give the glue_data folder with --data, or set LAMPREIA_TEST_DATA to the folder that contains glue/.")

    print(f"Hardware: {cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    print()
    print("| task | seed | precision | train rows | dev rows | selected step | dev metrics (selected checkpoint) | majority baseline | training speed | wall time |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for task in args.tasks.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            result = run_task(task, args.data, seed, args.extra)
            record = result["record"]
            prefix = TASKS[record.task].dev_splits[0].prefix + "/"
            metrics = ", ".join(f"{k.removeprefix(prefix)} {v:.3f}" for k, v in sorted(record.best_metrics.items())
                                if k.startswith(prefix) and not k.endswith("loss_task"))
            baseline = ", ".join(f"{k.removeprefix(prefix)} {v:.3f}" for k, v in sorted(record.baseline.items()))
            glue_task = TASKS[record.task]
            train_rows = len(load_split(glue_task, "train", args.data, limit=record.config["data"]["train_limit"]).labels)
            dev_rows = len(load_split(glue_task, glue_task.dev_splits[0].hub_split, args.data, limit=record.config["data"]["dev_limit"]).labels)
            precision = record.device.rsplit(", ", 1)[-1]
            minutes, seconds = divmod(int(result["seconds"]), 60)
            print(f"| {task} | {seed} | {precision} | {train_rows:,} | {dev_rows:,} | {record.best_step} | {metrics} | {baseline} | {result['samples_per_second']:,.0f} rows/s | {minutes}:{seconds:02d} |", flush=True)


if __name__ == "__main__":
    main()
