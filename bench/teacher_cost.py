"""Cost of the teachers: one extraction, then nothing per epoch and nothing on a re-run.

Teachers are random GPT-2, DistilBERT and RoBERTa models of width 768 (two layers, the real
tokenizer files), so that the student's projection heads have the width of the real teachers.

1. Teacher cache: ``engine.teacher_targets.extract_teacher_embeddings``, the trainer's extraction
   step, runs on the SST-2 training rows with an empty cache and then again with the same
   teachers and rows. The second call's time and forward-pass count are the figure.
2. Epoch time: the real trainer (``engine.trainer.run_distillation``) trains the paper-size
   student with one teacher and with all three, interleaved, from the cache filled in part 1. Epoch
   time is the wall time of the training phase, evaluation excluded, divided by the epochs. Every
   run's count of teacher forward passes is checked to be zero.

    python bench/teacher_cost.py [--quick] [--data DIR] [--rows N] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    add_common_arguments,
    add_data_argument,
    apply_threads,
    data_folder,
    describe_environment,
    detail,
    gpt2_tokenizer_folder,
    interleaved,
    isolated_user_folders,
    summary,
    timed_run,
    trainer_config,
    warn_if_busy,
)

KINDS = ("gpt2", "distilbert", "roberta")
EPOCH_GOAL = 1.1


def extract(teachers: list[Path], data: Path, rows: int, max_seq_len: int, scratch: Path) -> tuple[float, int]:
    """Run the trainer's extraction step for ``teachers``; return (seconds, teacher forward passes)."""
    import torch

    from engine.embedding_cache import EmbeddingCache
    from engine.events import CancellationToken, discard_events
    from engine.glue_data import load_split
    from engine.tasks import TASKS
    from engine.teacher_targets import extract_teacher_embeddings
    from engine.teachers import inspect_teacher

    split = load_split(TASKS["sst2"], "train", data / "glue", rows)
    infos = [inspect_teacher(str(folder)) for folder in teachers]
    start = time.perf_counter()
    extractions = extract_teacher_embeddings(
        infos,
        split,
        max_seq_len=max_seq_len,
        batch_size=64,
        device=torch.device("cpu"),
        cache=EmbeddingCache(scratch / "teacher-embeddings"),
        trust_remote_code=False,
        sink=discard_events,
        cancel=CancellationToken(),
    )
    return time.perf_counter() - start, sum(e.forward_passes for e in extractions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    add_data_argument(parser)
    parser.add_argument("--rows", type=int, default=None, help="SST-2 training rows (default 2000, as in the paper preset; quick: 160)")
    args = parser.parse_args()
    apply_threads(args.threads)
    data = data_folder(args.data)
    detail(describe_environment())
    warn_if_busy()

    rows = args.rows or (160 if args.quick else 2000)
    repeats = args.repeats or (1 if args.quick else 3)
    width = 32 if args.quick else 768

    from tests.tiny_models import build_tiny_teacher

    with isolated_user_folders() as scratch:
        teachers = [build_tiny_teacher(kind, data / "tokenizers", scratch / f"random-{kind}", hidden_size=width) for kind in KINDS]
        tokenizer = gpt2_tokenizer_folder(data, scratch)

        def config(chosen: list[Path]):
            return trainer_config(data, tokenizer, chosen, quick=args.quick, train_limit=rows, dev_limit=64 if args.quick else 200, epochs=1)

        max_seq_len = config(teachers).student.max_seq_len
        first_seconds, first_passes = extract(teachers, data, rows, max_seq_len, scratch)
        second_seconds, second_passes = extract(teachers, data, rows, max_seq_len, scratch)
        detail(f"  extraction of {rows} rows by 3 teachers: first {first_seconds:.2f} s ({first_passes} passes), again {second_seconds:.3f} s ({second_passes} passes)")

        def run(chosen: list[Path]):
            timed = timed_run(config(chosen), scratch)
            detail(f"  {len(chosen)} teacher(s): epoch {timed.epoch_seconds:.2f} s, teacher forward passes {timed.result.teacher_forward_passes}")
            return timed

        runs = interleaved({"one": lambda: run(teachers[:1]), "three": lambda: run(teachers)}, repeats=repeats)

    summary(
        f"teacher cache ({rows} SST-2 rows, 3 teachers of width {width}): re-run extraction {second_seconds:.3f} s with "
        f"{second_passes} forward passes, first run {first_seconds:.2f} s with {first_passes}; again/first = {second_seconds / first_seconds:.3f}x (goal ~0)"
    )
    passes = sum(r.result.teacher_forward_passes for results in runs.values() for r in results)
    epoch = {name: statistics.median(r.epoch_seconds for r in results) for name, results in runs.items()}
    summary(
        f"teacher cost per epoch (student {'quick' if args.quick else 'd_model 256 x 4 layers'}, {sum(len(r) for r in runs.values())} trainer runs, "
        f"{passes} teacher forward passes in all): epoch {epoch['three']:.2f} s with 3 teachers, {epoch['one']:.2f} s with 1; "
        f"3 teachers/1 teacher = {epoch['three'] / epoch['one']:.2f}x (goal <= {EPOCH_GOAL:g}x)"
    )


if __name__ == "__main__":
    main()
