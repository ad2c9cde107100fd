"""Helpers shared by the benchmark scripts: data lookup, isolated user folders, interleaved timing.

The machines these benchmarks run on are shared and noisy, so absolute seconds from two runs are
not comparable. Every script therefore times the variants it compares in one process, interleaved
(A, B, A, B, ...), and reports the ratio of their medians. Summary lines go to stdout, one per
figure and ending in the ratio; details and progress go to stderr.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, TypeVar

REPOSITORY = Path(__file__).resolve().parent.parent
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

# Benchmarks never download: only local models and the tokenizer files of the data folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA_VARIABLE = "LAMPREIA_TEST_DATA"

T = TypeVar("T")


def data_folder(argument: Path | None) -> Path:
    """Return the data folder (with glue/ and tokenizers/) from ``--data`` or $LAMPREIA_TEST_DATA.

    Exits with a message naming the variable when neither is given or the folder lacks a part.
    """
    value = argument or (Path(os.environ[DATA_VARIABLE]) if os.environ.get(DATA_VARIABLE) else None)
    if value is None:
        raise SystemExit(
            f"No data folder: set {DATA_VARIABLE} to the folder that contains glue/<TASK>/{{train,dev}}.tsv "
            "and tokenizers/{gpt2,distilbert-base-uncased,roberta-base}/, or pass --data."
        )
    missing = [part for part in ("glue", "tokenizers") if not (value / part).is_dir()]
    if missing:
        raise SystemExit(f"The data folder {value} (from --data or {DATA_VARIABLE}) has no {' or '.join(missing)}/ folder.")
    return value


def detail(message: str) -> None:
    """Write a progress or detail line to stderr, so that stdout keeps only the summary lines."""
    print(message, file=sys.stderr, flush=True)


def summary(message: str) -> None:
    """Write one summary line (a figure ending in its ratio) to stdout."""
    print(message, flush=True)


@contextlib.contextmanager
def isolated_user_folders() -> Iterator[Path]:
    """Point LAMPREIA_DATA_DIR and LAMPREIA_CACHE_DIR at a temporary folder for the block.

    Runs started inside never touch the user's run database or teacher-embedding cache.
    """
    saved = {name: os.environ.get(name) for name in ("LAMPREIA_DATA_DIR", "LAMPREIA_CACHE_DIR")}
    with tempfile.TemporaryDirectory(prefix="lampreia-bench-") as scratch:
        root = Path(scratch)
        os.environ["LAMPREIA_DATA_DIR"] = str(root / "data")
        os.environ["LAMPREIA_CACHE_DIR"] = str(root / "cache")
        try:
            yield root
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def interleaved(variants: dict[str, Callable[[], T]], repeats: int, warmup: int = 0) -> dict[str, list[T]]:
    """Call each variant ``repeats`` times, interleaved, after ``warmup`` discarded calls each.

    The order of the variants rotates every round, so a slow spell of the machine is shared
    instead of landing on one variant. Returns the results of the counted calls per variant.
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    results: dict[str, list[T]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(variants[name]())
    return results


def interleaved_medians(variants: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time each variant ``repeats`` times with ``interleaved``; returns the seconds per variant."""

    def timed(call: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            start = time.perf_counter()
            call()
            return time.perf_counter() - start

        return run

    return interleaved({name: timed(call) for name, call in variants.items()}, repeats, warmup)


def median(values: list[float]) -> float:
    return statistics.median(values)


def median_interval(values: list[float], over: list[float] | None = None, level: float = 0.95, resamples: int = 4000, seed: int = 0) -> tuple[float, float]:
    """Return a bootstrap percentile interval of median(values), or of median(values) / median(over).

    Each resample draws ``values`` (and ``over``, independently) with replacement; the interval
    contains the central ``level`` of the resampled medians or ratios. The seed is fixed, so the same
    numbers give the same interval.
    """
    import random

    generator = random.Random(seed)
    estimates = []
    for _ in range(resamples):
        estimate = statistics.median(generator.choices(values, k=len(values)))
        if over is not None:
            estimate /= statistics.median(generator.choices(over, k=len(over)))
        estimates.append(estimate)
    estimates.sort()
    tail = (1.0 - level) / 2.0
    return estimates[int(tail * (resamples - 1))], estimates[int(round((1.0 - tail) * (resamples - 1)))]


def add_common_arguments(parser) -> None:
    """Add --quick, --threads and --repeats, which every benchmark script accepts."""
    parser.add_argument("--quick", action="store_true", help="smoke-test mode: tiny sizes, one repetition; the ratios are not meaningful")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice, one per core)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repetitions per variant (default: the script's own)")


def add_data_argument(parser) -> None:
    parser.add_argument("--data", type=Path, default=None, help=f"folder with glue/ and tokenizers/ (default: ${DATA_VARIABLE})")


def apply_threads(threads: int | None) -> None:
    import torch

    if threads is not None:
        torch.set_num_threads(threads)


def busy_cpus(seconds: float = 0.5) -> float | None:
    """Return how many CPUs other processes keep busy, measured from /proc/stat while this one sleeps.

    Returns None where /proc/stat cannot be read (not Linux).
    """

    def busy_and_total() -> tuple[int, int]:
        fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy_before, total_before = busy_and_total()
        time.sleep(seconds)
        busy_after, total_after = busy_and_total()
    except (OSError, ValueError, IndexError):
        return None
    elapsed = max(total_after - total_before, 1)
    return (os.cpu_count() or 1) * (busy_after - busy_before) / elapsed


def warn_if_busy() -> None:
    """Warn on stderr when other processes already use a CPU, which distorts multi-threaded timings.

    torch's OpenMP threads wait for each other at the end of every parallel operation, so when
    another process takes a core, small operations can become ten times slower or more.
    """
    busy = busy_cpus()
    if busy is not None and busy >= 0.5:
        detail(
            f"WARNING: other processes keep {busy:.1f} CPUs busy; timings with {_torch_threads()} torch threads are distorted. "
            "Rerun on an idle machine, or pass --threads 1 (or set OMP_WAIT_POLICY=PASSIVE) to limit the damage."
        )


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def describe_environment() -> str:
    """Return one line with the CPU, core count, memory, load, thread count, versions and date."""
    import torch
    import transformers

    memory = ""
    try:
        kilobytes = int(next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")).split()[1])
        memory = f", {kilobytes / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    load = ", load average {:.1f}".format(os.getloadavg()[0]) if hasattr(os, "getloadavg") else ""
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (
        f"{cpu_name()}, {os.cpu_count()} logical CPUs{memory}{gpu}{load}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), transformers {transformers.__version__}, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def matmul_peak_call(device: str = "cpu", size: int = 2048, repeats: int = 4, dtype: str = "float32") -> tuple[Callable[[], None], float]:
    """Return (call, FLOPs per call) for ``repeats`` products of two size × size matrices of ``dtype``.

    Timing this call interleaved with a workload gives the machine's matmul throughput in that
    precision under the same load as the workload.
    """
    import torch

    a = torch.randn(size, size, device=device).to(getattr(torch, dtype))
    b = torch.randn(size, size, device=device).to(getattr(torch, dtype))

    def call() -> None:
        for _ in range(repeats):
            torch.mm(a, b)
        if device != "cpu":
            torch.cuda.synchronize()

    return call, 2.0 * size**3 * repeats


def gpt2_tokenizer_folder(data: Path, scratch: Path) -> Path:
    """Save the real GPT-2 BPE files of the data folder as a loadable tokenizer folder."""
    from tests.tiny_models import save_tokenizer

    return save_tokenizer("gpt2", data / "tokenizers", scratch / "gpt2-tokenizer")


@dataclass
class PhaseClock:
    """Event sink that adds up the wall time a run spends in each trainer phase.

    The training phase is counted from each ``PhaseChanged("training")`` to the next phase change.
    The stretch after the last evaluation, which ends with ``RunFinished``, contains no training step
    (the last step of every run is an evaluation step) and is left out.
    """

    seconds: dict[str, float] = field(default_factory=dict)
    _phase: str | None = None
    _since: float = 0.0

    def __call__(self, event: object) -> None:
        from engine.events import PhaseChanged, RunFailed, RunFinished

        now = time.perf_counter()
        if isinstance(event, PhaseChanged):
            self._close(now)
            self._phase, self._since = event.phase, now
        elif isinstance(event, (RunFinished, RunFailed)):
            self._phase = None

    def _close(self, now: float) -> None:
        if self._phase is not None:
            self.seconds[self._phase] = self.seconds.get(self._phase, 0.0) + now - self._since


# The paper-size student (d_model 256, 4 layers, 8 heads, FFN 1024, max_seq_len 128) is the
# config default; quick runs use a small one so that a smoke test takes seconds.
QUICK_STUDENT = {"d_model": 64, "n_layers": 2, "n_heads": 4, "max_seq_len": 64}


def trainer_config(
    data: Path,
    tokenizer_folder: Path,
    teachers: list[Path | str],
    *,
    quick: bool,
    train_limit: int,
    dev_limit: int | None,
    epochs: int,
    padding: str = "bucketed",
    device: str = "cpu",
    seed: int = 42,
    name: str = "",
    amp: bool = True,
):
    """Return a RunConfig for a benchmark run on SST-2 with the given teachers.

    Teacher weighting is uniform: the per-row weights are a precomputed table either way, so the
    confidence probes would only add preparation time that no figure here measures.
    """
    from engine.config import RunConfig

    student = {"tokenizer": str(tokenizer_folder), **(QUICK_STUDENT if quick else {})}
    return RunConfig.from_dict(
        {
            "task": "sst2",
            "name": name,
            "data": {"glue_dir": str(data / "glue"), "train_limit": train_limit, "dev_limit": dev_limit},
            "student": student,
            "distillation": {"teachers": [str(t) for t in teachers], "weighting": "uniform"},
            "training": {"epochs": epochs, "batch_size": 32, "evals_per_epoch": 1, "padding": padding, "device": device, "seed": seed, "amp": amp},
        }
    )


@dataclass
class TimedRun:
    epoch_seconds: float
    result: object  # engine.trainer.RunResult
    phases: dict[str, float]


def timed_run(config, scratch: Path) -> TimedRun:
    """Run the real trainer on ``config`` with a run store and teacher cache under ``scratch``."""
    from engine.embedding_cache import EmbeddingCache
    from engine.run_store import RunStore
    from engine.trainer import run_distillation

    clock = PhaseClock()
    store = RunStore(scratch / "runs.sqlite3")
    try:
        result = run_distillation(config, store, clock, cache=EmbeddingCache(scratch / "teacher-embeddings"))
    finally:
        store.close()
    if result.status != "finished":
        raise SystemExit(f"The benchmark run failed: {result.error}")
    return TimedRun(clock.seconds.get("training", 0.0) / config.training.epochs, result, dict(clock.seconds))
