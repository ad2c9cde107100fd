"""Train variants of one preset over several seeds and print each variant's dev metric as mean ± sample standard deviation.

This is the script behind the ablation table in README.md. Every run goes through the real
command line into one run database, with one teacher-embedding cache, so the teacher's
embeddings are extracted once for all runs. The runs are interleaved (every variant with the
first seed, then every variant with the next), so that a machine that slows down during the
script slows all variants alike. Usage:

    python bench/ablation.py --data /path/to/glue_data [--task sst2] [--seeds 1,2,3]
        [--variant "softmax: --mixer softmax" ...] [--db FILE] [-- further lampreia run options]

Without --variant, the variants are the three token mixers. With --db, the runs stay in FILE, and
`lampreia compare --pool-seeds` can compare them again; otherwise they are in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import describe_environment, detail  # noqa: E402
from engine.run_comparison import pool, primary_dev_metric  # noqa: E402
from engine.run_store import RunRecord, RunStore  # noqa: E402

DEFAULT_VARIANTS = ("logphase: --mixer logphase", "softmax: --mixer softmax", "spectral: --mixer spectral")


def parse_variant(text: str) -> tuple[str, list[str]]:
    """Split "NAME: OPTIONS" into the name and the `lampreia run` options."""
    name, separator, options = text.partition(":")
    if not separator or not name.strip():
        raise SystemExit(f'The variant "{text}" has no name. Write it as "NAME: OPTIONS", for example "softmax: --mixer softmax".')
    return name.strip(), shlex.split(options)


def run_once(arguments: list[str], database: Path, scratch: Path) -> RunRecord:
    """Train one run through the command line and return its stored record."""
    env = dict(os.environ, LAMPREIA_DATA_DIR=str(scratch / "data"), LAMPREIA_CACHE_DIR=str(scratch / "cache"), HF_HUB_OFFLINE="1")
    with contextlib.closing(RunStore(database)) as store:
        known = {record.id for record in store.list_runs()}
    command = [sys.executable, "-m", "workbench.launcher", "run", *arguments, "--db", str(database), "--quiet"]
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"`lampreia run {shlex.join(arguments)}` exited with {completed.returncode}: {completed.stderr.strip()}")
    with contextlib.closing(RunStore(database)) as store:
        new = [record for record in store.list_runs() if record.id not in known]
        return store.get_run(new[0].id)


def preset_settings(arguments: list[str]) -> dict:
    """Return the settings that `lampreia run` would store for ``arguments``, without the run name."""
    from engine.cli import build_config, build_parser

    # Through JSON, as the run store keeps them, so that tuples compare equal to the stored lists.
    settings = json.loads(build_config(build_parser().parse_args(["run", *arguments]), None).to_json())
    settings.pop("name", None)
    return settings


def same_settings_notes(variants: list[tuple[str, list[str]]], records: dict[str, list[RunRecord]], preset: dict) -> tuple[set[str], list[str]]:
    """Return the variants that train the preset's own settings, and a note for each group of variants with equal settings.

    A variant whose options change nothing is a row of the preset itself, and two variants with
    equal settings are one variant twice: the table would show seed noise as a difference.
    """
    settings = {}
    for name, _options in variants:
        first = dict(records[name][0].config)
        first.pop("name", None)
        settings[name] = first
    as_preset = {name for name, value in settings.items() if value == preset}
    notes = []
    grouped: list[list[str]] = []
    for name, value in settings.items():
        for group in grouped:
            if settings[group[0]] == value:
                group.append(name)
                break
        else:
            grouped.append([name])
    for group in grouped:
        if len(group) > 1:
            notes.append(f"Note: the variants {', '.join(group)} train the same settings, so their rows differ by seed noise only.")
    return as_preset, notes


def median_speed(database: Path, run_ids: list[int]) -> float:
    """Return the median of the logged training speeds (rows per second) over the runs' step windows."""
    speeds: list[float] = []
    with contextlib.closing(RunStore(database)) as store:
        for run_id in run_ids:
            series = store.metric_series(run_id, ["train/samples_per_second"]).get("train/samples_per_second")
            if series is not None:
                speeds += [float(value) for value in series[1]]
    return statistics.median(speeds) if speeds else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("LAMPREIA_TEST_DATA") and Path(os.environ["LAMPREIA_TEST_DATA"]) / "glue",
                        help="glue_data folder (default: $LAMPREIA_TEST_DATA/glue)")
    parser.add_argument("--task", default="sst2", help="GLUE task (default sst2)")
    parser.add_argument("--preset", default="offline-demo", help="preset that every run starts from (default offline-demo)")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds; every variant runs once per seed")
    parser.add_argument("--variant", action="append", metavar='"NAME: OPTIONS"',
                        help="a variant: its name and its `lampreia run` options; repeat for more (default: the three token mixers)")
    parser.add_argument("--db", type=Path, help="keep the runs in this run database (default: a temporary one)")
    parser.add_argument("extra", nargs="*", help="further `lampreia run` options for every run, after --")
    args = parser.parse_args()
    if args.data is None or not Path(args.data).is_dir():
        raise SystemExit("Give the glue_data folder with --data, or set LAMPREIA_TEST_DATA to the folder that contains glue/.")
    variants = [parse_variant(text) for text in (args.variant or DEFAULT_VARIANTS)]
    seeds = [int(seed) for seed in args.seeds.split(",")]

    print(describe_environment())
    print(f"Preset {args.preset}, task {args.task}, seeds {', '.join(map(str, seeds))}; options for every run: {shlex.join(args.extra) or '(none)'}")
    print()
    records: dict[str, list[RunRecord]] = {name: [] for name, _options in variants}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lampreia-ablation-") as folder:
        scratch = Path(folder)
        database = args.db.resolve() if args.db else scratch / "runs.sqlite3"
        for seed in seeds:
            for name, options in variants:
                arguments = ["--preset", args.preset, "--task", args.task, "--data-dir", str(args.data), "--seed", str(seed),
                             "--name", f"{name} seed {seed}", *options, *args.extra]
                record = run_once(arguments, database, scratch)
                records[name].append(record)
                metric = primary_dev_metric(record)
                detail(f"{name}, seed {seed}: run {record.id}, {metric} {record.best_metrics.get(metric, float('nan')):.4f}")

        # Each variant's first run used the first seed, so the preset's settings take that seed too.
        preset = preset_settings(["--preset", args.preset, "--task", args.task, "--data-dir", str(args.data), "--seed", str(seeds[0]), *args.extra])
        as_preset, notes = same_settings_notes(variants, records, preset)

        print("| variant | options | dev metric (selected checkpoint), mean ± sample s.d. | per seed | majority baseline | training speed (median) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, options in variants:
            runs = records[name]
            metric = primary_dev_metric(runs[0])
            pooled = pool([record.best_metrics.get(metric) for record in runs])
            baseline = pool([record.baseline.get(metric) for record in runs])
            per_seed = ", ".join(f"{record.best_metrics.get(metric, float('nan')):.3f}" for record in runs)
            speed = median_speed(database, [record.id for record in runs])
            options_cell = f"`{shlex.join(options)}`" if options else "(none)"
            if name in as_preset:
                options_cell += " (the preset's own settings)"
            print(f"| {name} | {options_cell} | {metric.removeprefix('dev/')} {pooled.format(3) if pooled else '-'} | {per_seed} | "
                  f"{baseline.format_mean_if_equal(3) if baseline else '-'} | {speed:,.0f} rows/s |")
        for note in notes:
            print(note)
        ids = " ".join(str(record.id) for runs in records.values() for record in runs)
        minutes, seconds = divmod(int(time.perf_counter() - started), 60)
        print()
        print(f"{sum(len(runs) for runs in records.values())} runs in {minutes}:{seconds:02d}.")
        if args.db:
            print(f"Compare them again with: lampreia compare --pool-seeds {ids} --db {shlex.quote(str(database))}")


if __name__ == "__main__":
    main()
